import t from 'tap'
import { judgeStep, type CapacityStep, type StepCpu } from '../../../scripts/compare/capacity-step.ts'
import { searchCapacity, capacityRule, type CapacityReport } from '../../../scripts/compare/capacity.ts'
import type { OpenLoadResult } from '../../../scripts/compare/open-load.ts'
import { latencyAgainstLoadChart, renderCapacityHtml } from '../../../scripts/compare/report-capacity-html.ts'
import { formatCapacityReport } from '../../../scripts/compare/report-capacity-text.ts'

// The search and the verdicts on made-up steps: what a cluster would answer at each rate.

const CPU: StepCpu = { serversUsPerRequest: 250, balancerUsPerRequest: 80, storeUsPerRequest: 20, generatorUsPerRequest: 40, serverCores: 0.5, balancerCores: 0.2, storeCores: 0.05, generatorCores: 0.1, machineBusy: 0.6 }

function load (rate: number, over: Partial<OpenLoadResult> = {}): OpenLoadResult {
  const scheduled = Math.round(rate * 1.5)
  const ms = { p50: 1, p90: 2, p99: 4, mean: 1.2, max: 6 }
  return {
    offeredRps: rate,
    achievedRps: rate,
    scheduled,
    completed: scheduled,
    statusCounts: { 200: scheduled },
    errors: 0,
    unsent: 0,
    latencyMs: ms,
    serviceMs: ms,
    sendLagMs: { p50: 0.3, p90: 0.5, p99: 0.9, mean: 0.3, max: 2 },
    generatorBehind: false,
    cpuSeconds: 0.1,
    durationSeconds: 1.5,
    drainSeconds: 0,
    ...over
  }
}
const SLO = { sloP99Ms: 10, expectedRefusals: 0 }

/** A cluster whose p99 goes over 10 ms above `knee` req/s. */
const cluster = (knee: number, over: (rate: number) => Partial<OpenLoadResult> = () => ({})) =>
  async (rate: number, phase: CapacityStep['phase']): Promise<CapacityStep> =>
    judgeStep(phase, load(rate, { ...(rate > knee ? { latencyMs: { p50: 3, p90: 9, p99: 40, mean: 4, max: 80 } } : {}), ...over(rate) }), CPU, {}, SLO)

t.test('climbs x2 until a step fails (twice: each failed step is measured again), then bisects between the last that held and the first that did not', async (t) => {
  const c = await searchCapacity({ sloP99Ms: 10, startRps: 500, maxRps: 64000, stepSeconds: 1.5 }, cluster(3000))
  t.same(c.steps.map((s) => [s.phase, s.offeredRps, s.held, s.repeated === true]), [
    ['climb', 500, true, false], ['climb', 1000, true, false], ['climb', 2000, true, false], ['climb', 4000, false, false], ['climb', 4000, false, true],
    ['refine', 2828, true, false], ['refine', 3363, false, false], ['refine', 3363, false, true], ['refine', 3084, false, false], ['refine', 3084, false, true]
  ])
  t.equal(c.heldRps, 2828)
  t.equal(c.failedRps, 3084)
  t.equal(c.limitedBy, 'target')
  t.same(c.cpuUsPerRequest, { servers: 250, balancer: 80, store: 20, total: 350 }, 'CPU per request at the rate that held')
  t.equal(c.rpsPerServerCore, 4000, 'one core at 250 µs a request: 4,000 req/s')
})

t.test('never failing: stops at --max-rps, exactly', async (t) => {
  const c = await searchCapacity({ sloP99Ms: 10, startRps: 500, maxRps: 3000, stepSeconds: 1.5 }, cluster(1e9))
  t.same(c.steps.map((s) => s.offeredRps), [500, 1000, 2000, 3000])
  t.equal(c.heldRps, 3000)
  t.equal(c.failedRps, null)
  t.equal(c.limitedBy, 'max-rps')
})

t.test('the first step failing: down by half until one holds, then the knee; nothing holding: no capacity', async (t) => {
  const settings = { sloP99Ms: 10, startRps: 500, maxRps: 3000, stepSeconds: 1.5 }
  const slow = await searchCapacity(settings, cluster(100))
  t.same(slow.steps.map((s) => [s.phase, s.offeredRps, s.held]), [
    ['climb', 500, false], ['climb', 500, false], ['descend', 250, false], ['descend', 250, false], ['descend', 125, false], ['descend', 125, false], ['descend', 63, true],
    ['refine', 89, true], ['refine', 105, false], ['refine', 105, false], ['refine', 97, true]
  ])
  t.same([slow.heldRps, slow.failedRps, slow.limitedBy], [97, 105, 'target'])
  const none = await searchCapacity(settings, cluster(10))
  t.same([none.heldRps, none.failedRps, none.limitedBy, none.steps.length, none.rpsPerServerCore], [null, 63, 'start-rps', 8, null])
  const behind = await searchCapacity(settings, cluster(10, () => ({ generatorBehind: true })))
  t.equal(behind.limitedBy, 'load-generator', 'a generator behind its schedule: the machine is saturated, not the mode')
  t.same(behind.steps.map((s) => [s.offeredRps, s.repeated === true]), [[500, false], [500, true], [250, false], [250, true], [125, false], [125, true], [63, false], [63, true]],
    'each failed step is measured again, once')
})

t.test('one pause of the machine does not end the search: a failed step is measured again, and the second verdict counts', async (t) => {
  // The machine was busy once, at 1,000 req/s: the second try holds.
  let busy = true
  const c = await searchCapacity({ sloP99Ms: 10, startRps: 500, maxRps: 2000, stepSeconds: 1.5 }, async (rate, phase) => {
    if (rate === 1000 && busy) {
      busy = false
      return judgeStep(phase, load(rate, { generatorBehind: true, latencyMs: { p50: 30, p90: 60, p99: 90, mean: 35, max: 120 } }), CPU, {}, SLO)
    }
    return judgeStep(phase, load(rate), CPU, {}, SLO)
  })
  t.same(c.steps.map((s) => [s.offeredRps, s.held, s.repeated === true]), [[500, true, false], [1000, false, false], [1000, true, true], [2000, true, false]])
  t.same([c.heldRps, c.limitedBy], [2000, 'max-rps'])
  // The same with the generator on time: a collection or a neighbour's burst in the cluster.
  let paused = true
  const d = await searchCapacity({ sloP99Ms: 10, startRps: 500, maxRps: 2000, stepSeconds: 1.5 }, async (rate, phase) => {
    const pause = rate === 1000 && paused
    if (pause) paused = false
    return judgeStep(phase, load(rate, pause ? { latencyMs: { p50: 2, p90: 3, p99: 34, mean: 3, max: 40 } } : {}), CPU, {}, SLO)
  })
  t.same(d.steps.map((s) => [s.offeredRps, s.held, s.repeated === true]), [[500, true, false], [1000, false, false], [1000, true, true], [2000, true, false]], 'a pause with the generator on time is measured again too')
  t.match(formatCapacityReport({ config: { sloP99Ms: 10, startRps: 500, maxRps: 2000, growth: 2, refineSteps: 3, durationSeconds: 1.5, stepWarmupSeconds: 0.5, connections: 50, target: 'x', machine: { cores: 2, loadAverageAtStart: 9 }, rule: capacityRule(10) }, results: [{ mode: 'jwt', capacity: c }], notes: [] } as unknown as CapacityReport),
    /jwt\s+climb\s+1,000.*held; measured again after the line above/)
})

t.test('a step is judged by p99, the rate reached, failures, and the mode\'s own refusals', async (t) => {
  const held = judgeStep('climb', load(1000), CPU, {}, SLO)
  t.ok(held.held)
  t.same(held.why, [])
  const slow = judgeStep('climb', load(1000, { latencyMs: { p50: 2, p90: 8, p99: 12.5, mean: 3, max: 20 } }), CPU, {}, SLO)
  t.same(slow.why, ['p99 12.5 ms > 10 ms'])
  const short = judgeStep('climb', load(1000, { achievedRps: 960 }), CPU, {}, SLO)
  t.same([short.held, short.reached], [false, false], '96% of the offered rate is not reached')
  t.ok(judgeStep('climb', load(1000, { achievedRps: 975 }), CPU, {}, SLO).reached, '97.5% is')
  const failing = judgeStep('climb', load(1000, { errors: 1, unsent: 1, statusCounts: { 200: 1496, 503: 2 } }), CPU, {}, SLO)
  t.equal(failing.errors, 4, 'no answer, never sent and a 503 all count as failed')
  t.match(failing.why, [/4 failed of 1500/])
  t.ok(judgeStep('climb', load(1000, { errors: 1 }), CPU, {}, SLO).held, 'one in 1,500 is within the 0.1% budget')
  // Memory mode behind 3 servers refuses 2 in 3 by design, more or less by how the connections
  // fall in step with the round robin: a 401 is an answer there, counted, not a failure.
  const memory = { sloP99Ms: 10, expectedRefusals: 2 / 3 }
  const refused = judgeStep('climb', load(1000, { statusCounts: { 200: 300, 401: 1200 } }), CPU, {}, memory)
  t.same([refused.held, refused.authFailureRate], [true, 0.8])
  t.match(judgeStep('climb', load(1000, { statusCounts: { 200: 1450, 401: 50 } }), CPU, {}, SLO).why, [/3.3% refused, none expected/], 'a 401 in jwt mode is a failure')
  t.ok(judgeStep('climb', load(1000, { statusCounts: { 200: 1499, 401: 1 } }), CPU, {}, SLO).held, 'one in 1,500 is within the budget')
  const busy = judgeStep('climb', load(1000), { ...CPU, generatorCores: 0.95 }, {}, SLO)
  t.ok(busy.generatorBehind, 'a generator using nearly a core is behind, whatever its timer says')
})

async function report (): Promise<CapacityReport> {
  const settings = { sloP99Ms: 10, startRps: 500, maxRps: 64000, stepSeconds: 1.5 }
  const result = async (mode: string, knee: number): Promise<CapacityReport['results'][number]> => {
    const capacity = await searchCapacity(settings, cluster(knee))
    const at = capacity.steps.find((s) => s.held && s.offeredRps === capacity.heldRps) as CapacityStep
    return { mode, servers: 3, connections: 50, requests: at.scheduled, rps: at.achievedRps, latencyMs: at.latencyMs, ok: at.ok, unauthorized: 0, errors: 0, authFailureRate: 0, expectedAuthFailureRate: 0, perServer: {}, capacity }
  }
  return {
    config: {
      sloP99Ms: 10,
      servers: 3,
      connections: 50,
      durationSeconds: 1.5,
      stepWarmupSeconds: 0.5,
      firstWarmupSeconds: 3,
      startRps: 500,
      maxRps: 64000,
      growth: 2,
      refineSteps: 3,
      modes: ['memory', 'jwt'],
      storeLatencyMs: 0,
      url: null,
      target: 'a made-up cluster',
      machine: { cores: 2, loadAverageAtStart: 1 },
      rule: capacityRule(10),
      startedAt: '2026-01-01T00:00:00.000Z',
      elapsedSeconds: 60
    },
    results: [await result('memory', 6000), await result('jwt', 3000)],
    notes: []
  }
}

t.test('the text report: capacity, CPU per request and per core, every step with its verdict', async (t) => {
  const text = formatCapacityReport(await report())
  t.match(text, /Capacity at p99 <= 10 ms/)
  t.match(text, /memory\s+5,657\s+6,169\s+the target/, 'memory held 5,657 req/s; 6,169 did not')
  t.match(text, /jwt\s+2,828\s+3,084\s+the target\s+2,828\s+1\.00\s+4\.0\s+250\s+80\.0\s+20\.0\s+350\s+4,000/)
  t.match(text, /jwt\s+refine\s+3,363\s+3,363\s+yes\s+3\.00\s+40\.0\s+4\.0\s+0\s+0\.0%\s+250\s+0\.10\s+60% {2}no: p99 40\.0 ms > 10 ms/)
  t.match(text, /jwt: holds 2,828 req\/s at p99 <= 10 ms; 3,084 req\/s did not \(p99 40\.0 ms > 10 ms\); one app-server core answers about 4,000 req\/s of it\./)
})

t.test('the chart: p50 and p99 against offered load, both axes log, the target as a rule', async (t) => {
  const r = await report()
  const spec = latencyAgainstLoadChart(r).spec as unknown as { layer: Array<{ data: { values: Array<Record<string, unknown>> }, layer: Array<{ mark: { type: string }, encoding: Record<string, { scale?: { type?: string } }> }> }> }
  const [points, target] = spec.layer
  t.equal(points?.data.values.length, 2 * (8 + 7), 'p50 and p99 for every step of both modes')
  t.equal(points?.layer[0]?.encoding.x?.scale?.type, 'log')
  t.equal(points?.layer[0]?.encoding.y?.scale?.type, 'log')
  t.same(target?.data.values[0]?.slo, 10)
  t.equal(target?.layer[0]?.mark.type, 'rule')
  const html = await renderCapacityHtml(r)
  t.match(html, /<svg[^>]*>/)
  t.match(html, /target: p99 10 ms/, 'the rule is labelled in the drawing')
  t.match(html, /id="numbers-capacity-steps"/)
  t.notMatch(html, /<script/)
})
