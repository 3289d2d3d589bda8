import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { CompareReport } from '../../scripts/compare/run-compare.ts'
import { jwtStateless, type JwtStateless } from '../../scripts/demo/steps/06-jwt-stateless.ts'
import { STEPS } from '../../scripts/demo/steps/index.ts'
import { runWalkthrough } from '../../scripts/demo/walkthrough.ts'
import { authDurationMs, measureAuthStep } from '../../scripts/lib/auth-step-timing.ts'
import { runCli } from '../helpers/cli.ts'
import { login, withCluster } from '../helpers/cluster.ts'

// Real clusters, a walkthrough step and a compare run on a machine that may be busy.
t.setTimeout(300_000)

const COMPARE = fileURLToPath(new URL('../../scripts/compare.ts', import.meta.url))

t.test('the Server-Timing auth entry is read wherever it sits in the header, and only it', async (t) => {
  t.equal(authDurationMs('auth;dur=0.012;desc="jwt"'), 0.012)
  t.equal(authDurationMs('db;dur=3, auth;dur=1.5'), 1.5)
  t.equal(authDurationMs('preauth;dur=9'), null, 'not a metric whose name merely ends in auth')
  t.equal(authDurationMs(null), null)
})

t.test('jwt\'s auth step, measured the one way on real clusters, is well under a Redis lookup\'s', async (t) => {
  const jwt = await withCluster(t, { mode: 'jwt' })
  const redis = await withCluster(t, { mode: 'redis' })
  const jwtTiming = await measureAuthStep({ url: jwt.url, token: (await login(jwt.url)).token })
  const redisTiming = await measureAuthStep({ url: redis.url, token: (await login(redis.url)).token })
  t.comment(`jwt ${jwtTiming.medianMs} ms (p90 ${jwtTiming.p90Ms}), redis ${redisTiming.medianMs} ms (p90 ${redisTiming.p90Ms})`)
  for (const timing of [jwtTiming, redisTiming]) {
    t.match(timing, { samples: 200, warmup: 200, inFlight: 12 }, 'every answer of the batch timed, after the warm-up')
    t.equal(timing.how, 'median of 200 warm requests, 12 at a time after 200 not counted, from the servers\' Server-Timing', 'and it says how')
    t.ok(timing.medianMs > 0 && timing.medianMs <= timing.p90Ms, 'a median no larger than the p90')
  }
  // An HMAC is microseconds of CPU; a Redis lookup is a round trip over a socket. Measured cold
  // (thirty requests one at a time, as the walkthrough once did) the two came out 1 to 2 apart.
  // Warm, they are 5 to 30 apart (compare: 41 against 809 µs); but this is a timing on a shared
  // machine, and a CI run on a noisy host measured jwt at 0.195 ms and Redis at 0.93 (4.8 apart),
  // so the check holds the order with room for that, not the ratio: a jwt step that made a round
  // trip of its own would come out about even, and fail it.
  t.ok(jwtTiming.medianMs < redisTiming.medianMs / 2, `the signature check (${jwtTiming.medianMs} ms) is under half of the Redis lookup (${redisTiming.medianMs} ms)`)
})

t.test('a route that does not run the auth step is a clear error, not a number', async (t) => {
  const jwt = await withCluster(t, { mode: 'jwt', servers: 1 })
  await t.rejects(measureAuthStep({ url: jwt.url, token: 'x', path: '/health', warmup: 0, batch: 3 }), /no answer from http:\/\/127\.0\.0\.1:\d+\/health carried Server-Timing auth;dur \(got 3 × 200\)/)
  await t.rejects(measureAuthStep({ url: jwt.url, token: 'x', batch: 0 }), { name: 'RangeError', message: /batch must be at least 1/ })
  await t.rejects(measureAuthStep({ url: jwt.url, token: 'x', inFlight: 0 }), { name: 'RangeError', message: /inFlight must be at least 1/ })
})

t.test('the walkthrough\'s first jwt step and compare give jwt\'s auth step the same order of magnitude', async (t) => {
  const step = STEPS.indexOf(jwtStateless) + 1
  const reports = await runWalkthrough({ fromStep: step, toStep: step, port: 0, colour: false, write: () => {} })
  const walkthroughMs = (reports[0]?.result as JwtStateless).authStep.medianMs

  const dir = mkdtempSync(join(tmpdir(), 'auth-step-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const json = join(dir, 'compare.json')
  const run = runCli(t, COMPARE, ['--modes', 'jwt', '--servers', '3', '--connections', '12', '--duration', '2', '--warmup', '1', '--wear-in', '0', '--sessions', '200', '--json', json], { PATH: process.env.PATH, HOME: process.env.HOME })
  const code = await run.exited
  t.equal(code, 0, 'compare exits 0')
  if (code !== 0) t.comment(run.output())
  const report = JSON.parse(readFileSync(json, 'utf8')) as CompareReport
  const p50Us = report.results[0]?.serverTimingAuthUs?.p50
  if (p50Us === undefined) {
    t.fail('compare reported no Server-Timing figure for jwt')
    return
  }
  const compareMs = p50Us / 1000
  const ratio = Math.max(walkthroughMs, compareMs) / Math.min(walkthroughMs, compareMs)
  t.ok(ratio < 10, `step ${step} says ${walkthroughMs} ms, compare ${compareMs} ms: ${ratio.toFixed(1)} times apart, within one order of magnitude`)
})
