import t from 'tap'
import { formatReport, plainWords, table } from '../../../scripts/compare/report-text.ts'
import type { CompareReport, ModeResult } from '../../../scripts/compare/run-compare.ts'
import { differences } from '../../../scripts/compare/significance.ts'
import { fakeReport } from '../../helpers/compare-report.ts'

t.test('table: left-aligned names, right-aligned numbers, a rule under the header', async (t) => {
  t.equal(table(['mode', 'req/s'], [['memory', '1,000'], ['jwt', '5']]), 'mode    req/s\n------  -----\nmemory  1,000\njwt         5')
})

t.test('the report names every mode in every table, and explains itself', async (t) => {
  const text = formatReport(fakeReport())
  for (const heading of ['Throughput and failures', 'Cost of the auth step', 'Per server', 'Balancer check', 'In plain words']) t.match(text, heading)
  t.match(text, 'Cost of the auth step, measured on the app servers under the load above (10 connections, after the warm-up): the mean from their /metrics, p50/p99 from every response\'s Server-Timing:', 'the auth step\'s figures say they were taken under load')
  t.match(text, /^memory +1,300 .* 66\.7% +66\.7%$/m, 'memory: measured and expected refusal side by side')
  t.match(text, /^redis .* 1\.00 /m, 'one Redis command per request in redis mode')
  t.match(text, /^memory +289 \/ 578 +289 \/ 578 +289 \/ 577 +867 \/ 1,733 +867 \/ 1,733$/m, 'per server, and the sums')
  t.notMatch(text, 'Sweep', 'no sweep table without a sweep')
})

t.test('the plain words say what the numbers mean', async (t) => {
  const words = plainWords(fakeReport()).join('\n')
  t.match(words, 'memory: 66.7% of logged-in requests were refused')
  t.match(words, '(N-1)/N with N = 3')
  t.match(words, 'redis: no request was refused')
  t.match(words, 'jwt: no request was refused')
  t.match(words, '1.00 Redis commands per request')
  t.match(words, '249 B token on every request instead of a 43 B session id')
})

t.test('a sweep adds a table by cluster size with (N-1)/N beside memory\'s refusals', async (t) => {
  const text = formatReport(fakeReport({ sweep: true }))
  t.match(text, 'Sweep over cluster sizes')
  t.match(text, /^1 +1,100 +0\.0% .* 0\.0%$/m)
  t.match(text, /^2 +1,200 +50\.0% .* 50\.0%$/m)
})

t.test('revocation and key rotation: what they cost, in plain words from the numbers', async (t) => {
  const report = fakeReport()
  const words = plainWords(report).join('\n')
  t.match(words, 'jwt-revocation: with JWT_REVOCATION=redis every request also asks Redis whether its token was revoked: 1.00 Redis commands per request, and the auth step took 76.0 µs (median under load; vs 12.0 µs in jwt, 72.0 µs in redis)')
  t.match(words, 'the state is back')
  t.notMatch(words, 'revocation: not measured')
  t.match(words, 'key rotation (jwt): with two keys in JWT_SECRETS (new signing, old still accepted, as in the middle of a rotation), the 5 connections holding tokens signed with old got 1,200 2xx and 0 401: tokens from the older key are accepted')
  t.match(words, 'the auth step\'s median was 12.0 µs for the old key\'s tokens and 12.0 µs for the new key\'s: the same, within the noise')

  const text = formatReport(report)
  t.match(text, 'Per signing key')
  t.match(text, /^jwt +new +after the restart +5 +1,200 +0 +0 +12\.0 \/ 45\.0$/m)
  t.match(text, /^jwt +old +before it +5 +1,200 +0 +0 +12\.0 \/ 45\.0$/m)
  t.match(text, /^jwt-revocation .* 1\.00 /m, 'one Redis command per request with a revocation list')

  const refused = fakeReport()
  const jwt = refused.results.find((r) => r.mode === 'jwt')
  if (jwt?.byKid?.old?.authUs == null) throw new Error('the fake jwt result has two keys')
  jwt.byKid.old.unauthorized = 7
  jwt.byKid.old.authUs.p50 = 40
  const said = plainWords(refused).join('\n')
  t.match(said, 'got 1,200 2xx and 7 401: some tokens from the older key were refused', 'a refusal is not hidden')
  t.match(said, '40.0 µs for the old key\'s tokens and 12.0 µs for the new key\'s, 233% apart')
  t.notMatch(said, 'rotation costs nothing per request', 'and "costs nothing" is said only when measured')

  const withoutRevocation = fakeReport()
  withoutRevocation.results = withoutRevocation.results.filter((r) => r.mode !== 'jwt-revocation')
  t.match(plainWords(withoutRevocation).join('\n'), 'revocation: not measured in this run; --modes jwt,jwt-revocation shows what JWT_REVOCATION=redis')
  const oneKey = fakeReport()
  for (const r of oneKey.results) r.byKid = null
  t.notMatch(formatReport(oneKey), /Per signing key|key rotation/, 'no rotation table or words when no run held tokens from two keys')
})

t.test('three runs: each figure with its 95% interval, which differences are larger than the noise, and the rounds', async (t) => {
  const report = fakeReport({ runs: 3 })
  const text = formatReport(report)
  t.match(text, '3 runs per mode in a rotating order (the mean, ±its 95% interval)')
  t.match(text, /^memory +1,300 ±5\.0% /m, 'req/s ±5.0%: runs 2% apart, t(2) = 4.303 over √3')
  t.match(text, 'Differences between modes (the second against the first): yes = larger than the noise, the two 95% intervals over the 3 runs do not overlap')
  t.match(text, /^jwt-revocation vs memory +−11\.5% yes /m, '1,150 against 1,300: apart')
  t.match(text, /^redis vs memory +−3\.8% no /m, '1,250 against 1,300: within the noise')
  t.match(text, /^redis vs memory .* ×45\.0 yes /m, 'a big change as a ratio')
  t.match(text, /^jwt +3 +1 +4\.2 s +1,224 +±0\.8% +12\.0 +250 \/ 300 \/ 150 /m, 'round by round: warm-up, rate, window interval, auth step, CPU per request of each process')
  const words = plainWords(report).join('\n')
  t.match(words, 'certainty: every figure is the mean of 3 runs per mode with its 95% interval (Student\'s t): req/s ±5.0% in every mode.')
  t.match(words, 'req/s: larger than the noise (the intervals do not overlap): jwt-revocation −11.5% vs memory; within the noise, not established: redis −3.8% vs memory')
  t.match(words, 'rounds: no mode\'s req/s moved by 3.0% or more a round')
  t.match(words, 'warm-up: each run warmed up until steady (a made-up rule), at most 15 s: 4.2 s; every one became steady before the cap.')

  const climbing = fakeReport({ runs: 3 })
  const jwt = climbing.results.find((r) => r.mode === 'jwt')
  if (jwt === undefined) throw new Error('no jwt')
  jwt.trend.rps = 0.12
  t.match(plainWords(climbing).join('\n'), 'rounds: req/s moved round after round in jwt (+12.0% a round; server CPU per request 300 → 300 µs, load generator\'s 150 → 150 µs, other work 0.0 → 0.0 cores). ' +
    'Where it fell as other work grew, or as the load generator\'s CPU per request rose with the servers\' (one process for every mode, never idle: the same work took longer), that was the machine')
})

t.test('the first line says how each cluster was worn in before its first round, and which the cap stopped', async (t) => {
  const report = fakeReport({ runs: 3 })
  report.config.wearInPerServer = 30_000
  report.config.wearInCapSeconds = 30
  const last = { seconds: 1, requests: 3000, rps: 3000, cpuUsPerRequest: 400 }
  report.results.forEach((r, i) => { r.wearIn = { target: 90_000, requests: i === 0 ? 61_000 : 90_500, seconds: i === 0 ? 30 : 12.5, reached: i !== 0, last } })
  t.match(formatReport(report).split('\n')[0], "s of load after a wear-in of 30,000 requests per app server before each cluster's first round (12.5 to 30.0 s here, 1 stopped by the 30 s cap) and a warm-up until steady")
  report.config.wearInPerServer = 0
  for (const r of report.results) r.wearIn = null
  t.notMatch(formatReport(report).split('\n')[0], 'wear-in', '--wear-in 0: not mentioned')
})

t.test('a report saved before the intervals (--from an older JSON) is still read as what it was', async (t) => {
  const old = fakeReport({ runs: 3 }) as Partial<CompareReport> & CompareReport
  delete (old.config as Partial<CompareReport['config']>).warmupRule
  delete (old as Partial<CompareReport>).differences
  for (const r of old.results) delete (r as Partial<ModeResult>).confidence
  const text = formatReport(old)
  t.match(text, '15 s of warm-up, 3 runs per mode (the median).', 'a fixed warm-up and medians, as it was written')
  t.match(text, /^memory +1,300 +2\.00 +4\.00 +9\.00 /m, 'no intervals it does not have')
  t.notMatch(text, 'Differences between modes')
})

t.test('one run: it says what it cannot tell', async (t) => {
  const report = fakeReport()
  const words = plainWords(report).join('\n')
  t.match(words, 'certainty: one run per mode, so how much these numbers move from run to run is not measured, and no difference between modes is established')
  t.match(words, 'each run\'s req/s has a 95% interval of memory ±0.8%')
  t.match(words, 'so this understates the noise between runs')
  t.match(words, '--runs 3 gives intervals over runs')
  const text = formatReport(report)
  t.notMatch(text, 'Differences between modes', 'no table of verdicts it has no grounds for')
  t.notMatch(text, /±5\.0%/, 'and no interval beside a figure of one run')
  t.match(text, 'Round by round')
})

t.test('the same mode measured twice is held to the noise', async (t) => {
  const report = fakeReport({ runs: 3 })
  const twin = report.results.find((r) => r.mode === 'jwt-revocation')
  if (twin === undefined) throw new Error('no jwt-revocation')
  // jwt-revocation's figures under the name jwt#2: 4.2% below jwt, inside the noise.
  twin.mode = 'jwt#2'
  report.differences = differences(report.results)
  t.match(plainWords(report).join('\n'), 'jwt#2 is jwt again, on a cluster of its own: req/s −4.2%, within the noise, as the same mode should be.')
  t.notMatch(plainWords(report).join('\n'), /jwt#2 \S+ vs jwt[,;.]/, 'and the pair is not listed among the differences between modes')
})
