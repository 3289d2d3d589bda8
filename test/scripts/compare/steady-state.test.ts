import { createServer } from 'node:http'
import t from 'tap'
import { startLoadGenerator } from '../../../scripts/compare/load-client.ts'
import type { LoadGenerator } from '../../../scripts/compare/load-client.ts'
import type { LoadJob, LoadResult, Tick } from '../../../scripts/compare/load-generator.ts'
import { isSteady, steadyChange, warmUp, wearIn, windowRecorder, type LoadWindow } from '../../../scripts/compare/steady-state.ts'

const windows = (rps: number[], cpu: Array<number | null> = rps.map(() => 100)): LoadWindow[] =>
  rps.map((r, i) => ({ seconds: 1, requests: r, rps: r, cpuUsPerRequest: cpu[i] ?? null }))

// A warming cluster as a curve: req/s rising to a plateau of 12,000 and CPU per request falling
// to 100 µs, exponentially with time constants of 3.5 and 2.5 s; fresh clusters under compare's
// load moved like this, over about ten seconds (issue 17).
const PLATEAU = 12_000
const WARMING_RPS = Array.from({ length: 20 }, (_, i) => PLATEAU - 9000 * Math.exp(-i / 3.5))
const WARMING_CPU = Array.from({ length: 20 }, (_, i) => 100 + 350 * Math.exp(-i / 2.5))

t.test('not steady while the processes warm up: the rate climbs, the CPU per request falls', async (t) => {
  const seen = WARMING_RPS.map((_, i) => isSteady(windows(WARMING_RPS.slice(0, i + 1), WARMING_CPU.slice(0, i + 1))))
  const first = seen.indexOf(true)
  t.ok(first >= 12, `not in the first 12 seconds (steady from second ${first + 1})`)
  t.ok((WARMING_RPS[first] as number) >= 0.98 * PLATEAU && (WARMING_CPU[first] as number) <= 1.02 * 100, 'and by then within 2% of the plateau, in rate and in CPU')
  t.ok(seen.slice(first).every((s) => s), 'and steady from then on')
})

t.test('the rule: the last two full windows against the two before, within 3%, for req/s and for CPU per request', async (t) => {
  t.notOk(isSteady(windows([1000, 1000, 1000])), 'three windows are not enough')
  t.ok(isSteady(windows([1000, 1010, 990, 1005])), 'flat with noise')
  t.notOk(isSteady(windows([1000, 1000, 1040, 1040])), 'a 4% step')
  t.notOk(isSteady(windows([1000, 1000, 1000, 1000], [120, 120, 110, 110])), 'a steady rate while the CPU per request still falls: the processes still warm up')
  t.ok(isSteady(windows([1000, 1000, 1000, 1000], [null, null, null, null])), 'a cluster at --url: the rate alone decides')
  t.notOk(isSteady([...windows([1000, 1000, 1000]), { seconds: 0.2, requests: 200, rps: 1000, cpuUsPerRequest: 100 }]), 'a window cut short is not a second of load')
  const change = steadyChange(windows([1000, 1000, 1100, 1100]))
  t.ok(Math.abs((change.rps as number) - 100 / 1050) < 1e-12, 'the change is the halves\' difference over the four windows\' mean')
  t.equal(change.cpuUsPerRequest, 0)
})

t.test('a window\'s CPU per request, from the CPU seconds read as each window closes', async (t) => {
  const readings = [10, 10.5, 10.5, undefined]
  const record = windowRecorder(() => readings.shift())
  t.same(record({ second: 1, requests: 5000, seconds: 1, totalRequests: 5000 }), { seconds: 1, requests: 5000, rps: 5000, cpuUsPerRequest: 100 })
  t.equal(record({ second: 2, requests: 0, seconds: 1, totalRequests: 5000 }).cpuUsPerRequest, null, 'no requests, no per-request cost')
  t.equal(record({ second: 3, requests: 10, seconds: 0.5, totalRequests: 5010 }).rps, 20, 'a short window\'s rate is over its own length')
})

/**
 * A load generator that plays back windows, as fast as it is asked: warmUp's decisions, without a
 * machine's timing in them (the real generator's early stop is tested in load-generator.test.ts).
 * Each window's CPU is added to `cpu.seconds` before its tick, as /proc would have it by then.
 */
function playback (rps: number[], cpuUs: number[], cpu: { seconds: number }): LoadGenerator & { played: number } {
  const generator = {
    pid: undefined,
    played: 0,
    async run (job: LoadJob, onTick: (tick: Tick) => void = () => {}, signal?: AbortSignal): Promise<LoadResult> {
      let total = 0
      for (let i = 0; i < Math.min(rps.length, Math.floor(job.durationSeconds)) && signal?.aborted !== true; i++) {
        const requests = Math.round(rps[i] as number)
        cpu.seconds += requests * (cpuUs[i] as number) / 1e6
        total += requests
        generator.played++
        onTick({ second: i + 1, requests, seconds: 1, totalRequests: total })
        await new Promise((resolve) => setImmediate(resolve))
      }
      return { requests: total, durationSeconds: generator.played, statusCounts: { 200: total }, errors: 0, timeouts: 0, latencyMs: { p50: 1, p90: 1, p99: 1, mean: 1, max: 1 }, serverTimingAuthMs: null, cpuSeconds: 0, byGroup: null, windows: [], stoppedEarly: signal?.aborted === true }
    },
    async close () {}
  }
  return generator
}

const JOB = { url: 'http://127.0.0.1:1', path: '/', tokens: ['a'], connections: 1 }

t.test('warmUp loads until the warming curve flattens, then stops the load there', async (t) => {
  const cpu = { seconds: 0 }
  const generator = playback(WARMING_RPS, WARMING_CPU, cpu)
  const seen: number[] = []
  const warm = await warmUp(JOB, 20, generator, () => cpu.seconds, (w) => seen.push(Math.round(w.cpuUsPerRequest ?? 0)))
  t.ok(warm.steady)
  t.equal(generator.played, 14, 'stopped after the 14th window, the first that made the rule hold')
  t.equal(warm.windows.length, 14)
  t.equal(seen[0], 450, 'each window\'s CPU per request, from the CPU read as it closed')
  t.equal(warm.capSeconds, 20)
})

t.test('warmUp gives up at the cap, unsteady, when the load never settles', async (t) => {
  const cpu = { seconds: 0 }
  const climbing = Array.from({ length: 30 }, (_, i) => 1000 * 1.05 ** i)
  const warm = await warmUp(JOB, 8, playback(climbing, climbing.map(() => 100), cpu), () => cpu.seconds)
  t.notOk(warm.steady, 'a rate still climbing 5% a second')
  t.equal(warm.windows.length, 8, 'the whole cap')
  const none = await warmUp(JOB, 0, playback(climbing, climbing, cpu), () => cpu.seconds)
  t.same(none, { seconds: 0, capSeconds: 0, steady: false, windows: [] }, '--warmup 0: none')
})

t.test('warmUp with the real load generator: a real server, the cap honoured', async (t) => {
  const server = createServer((_req, res) => { res.end('{}') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const generator = startLoadGenerator()
  t.teardown(async () => await generator.close())
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const warm = await warmUp({ ...JOB, url, connections: 2 }, 2.5, generator, () => undefined)
  t.notOk(warm.steady, 'fewer than four windows: never steady')
  t.ok(warm.seconds > 2 && warm.seconds < 3.5, `${warm.seconds.toFixed(2)} s of load`)
  t.ok(warm.windows.length >= 2 && warm.windows.every((w) => w.cpuUsPerRequest === null && w.requests > 0), 'windows of load, no CPU where none can be seen')
})

t.test('wearIn loads until the requests asked for are answered, however steady the windows look', async (t) => {
  const cpu = { seconds: 0 }
  // Flat from the start: the steady rule would have stopped after four windows.
  const flat = Array.from({ length: 30 }, () => 2000)
  const generator = playback(flat, flat.map(() => 300), cpu)
  const answered: number[] = []
  const worn = await wearIn(JOB, 15_000, 30, generator, () => cpu.seconds, (_w, n) => answered.push(n))
  t.equal(generator.played, 8, 'stopped after the 8th window, the first to pass 15,000 requests')
  t.match(worn, { target: 15_000, requests: 16_000, reached: true })
  t.same(answered.slice(0, 3), [2000, 4000, 6000], 'the requests answered so far, window by window')
  t.equal(worn.last?.rps, 2000, 'where the cluster stood at the end: its rate')
  t.ok(Math.abs((worn.last?.cpuUsPerRequest ?? 0) - 300) < 1e-6, 'and its CPU per request')
})

t.test('wearIn ends at the cap, short of its requests, on a machine too slow for them; 0 requests: none', async (t) => {
  const cpu = { seconds: 0 }
  const slow = Array.from({ length: 60 }, () => 100)
  const worn = await wearIn(JOB, 15_000, 5, playback(slow, slow.map(() => 900), cpu), () => cpu.seconds)
  t.match(worn, { target: 15_000, requests: 500, reached: false, seconds: 5 }, 'the cap, 5 s of 100 req/s')
  const none = await wearIn(JOB, 0, 30, playback(slow, slow, cpu), () => cpu.seconds)
  t.same(none, { target: 0, requests: 0, seconds: 0, reached: false, last: null }, '--wear-in 0: none')
})
