import t from 'tap'
import { formatReport, plainWords, table } from '../../../scripts/compare/report-text.ts'
import { fakeReport } from '../../helpers/compare-report.ts'

t.test('table: left-aligned names, right-aligned numbers, a rule under the header', async (t) => {
  t.equal(table(['mode', 'req/s'], [['memory', '1,000'], ['jwt', '5']]), 'mode    req/s\n------  -----\nmemory  1,000\njwt         5')
})

t.test('the report names every mode in every table, and explains itself', async (t) => {
  const text = formatReport(fakeReport())
  for (const heading of ['Throughput and failures', 'Cost of the auth step', 'Per server', 'Balancer check', 'In plain words']) t.match(text, heading)
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
