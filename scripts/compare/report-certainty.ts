import type { RunResult } from './measure.ts'
import { baseMode } from './mode-names.ts'
import { dec, int, pct, plusMinus, range, signedPct, us, type TableData } from './report-format.ts'
import type { CompareReport, ModeResult } from './run-compare.ts'
import { FIGURES, type Difference, type Figure } from './significance.ts'

/**
 * How sure the numbers are: the rounds one by one (warm-up, CPU per request, the machine), which
 * differences between modes are larger than the noise, and the words that say so.
 */

// A mode whose req/s or auth step moves by more than this from one round to the next, the same
// way every time, was most likely not warm (or the machine's load changed under it).
const TREND_WORTH_SAYING = 0.03

const runsOf = (report: CompareReport): RunResult[] => report.results.flatMap((r) => r.allRuns ?? [])

export function roundsTable (report: CompareReport): TableData {
  const rows = report.results.flatMap((r) => [...(r.allRuns ?? [])].sort((a, b) => (a.round ?? 0) - (b.round ?? 0)).map((run) => {
    const w = run.warmup
    const b = run.bottleneck
    return [
      r.mode,
      String(run.round ?? '-'),
      String(run.order ?? '-'),
      w === undefined ? '-' : w.capSeconds <= 0 ? 'none' : `${dec(w.seconds, 1)} s${w.steady ? '' : ' (cap)'}`,
      int(run.rps),
      run.rpsWithinRun?.relative == null ? '-' : `±${dec(run.rpsWithinRun.relative * 100, 1)}%`,
      run.serverTimingAuthUs === null ? '-' : us(run.serverTimingAuthUs.p50),
      `${run.balancerCpuUsPerRequest === null ? '?' : int(run.balancerCpuUsPerRequest)} / ${int(run.cpuUsPerRequest)} / ${int(run.loadGeneratorCpuUsPerRequest ?? Number.NaN)}`,
      pct(b.machineBusy),
      dec(b.otherCores, 1),
      run.servedBefore == null ? '-' : int(run.servedBefore)
    ]
  }))
  return {
    header: ['mode', 'round', 'order', 'warm-up', 'req/s', 'windows', 'auth µs p50', 'CPU µs/req bal / servers / loadgen', 'machine busy', 'cores not ours', 'served before'],
    rows,
    leftColumns: 1
  }
}

export const ROUNDS_TITLE = 'Round by round, in the order they ran (warm-up: until steady, "(cap)" when it was not by --warmup; windows: the 95% interval of req/s from the run\'s one-second windows; ' +
  'CPU per request of the balancer, all app servers and the load generator; served before: requests the cluster had answered before the measured load):'

function cell (d: Difference): string {
  if (d.change === null) return '-'
  return `${signedPct(d.change)} ${d.basis !== 'runs' ? '?' : d.established ? 'yes' : 'no'}`
}

/** Each pair of modes: each figure's change from the first to the second, and whether it is larger than the noise. */
export function differencesTable (report: CompareReport): TableData {
  const all = report.differences ?? []
  const pairs = [...new Map(all.map((d) => [`${d.a}\u0000${d.b}`, [d.a, d.b] as const])).values()]
  return {
    header: ['modes', ...FIGURES.map((f) => f.label)],
    rows: pairs.map(([a, b]) => [`${b} vs ${a}`, ...FIGURES.map(({ figure }) => {
      const d = all.find((x) => x.a === a && x.b === b && x.figure === figure)
      return d === undefined ? '-' : cell(d)
    })]),
    leftColumns: 1
  }
}

export function differencesTitle (report: CompareReport): string {
  return report.config.runs > 1
    ? `Differences between modes (the second against the first): yes = larger than the noise, the two 95% intervals over the ${report.config.runs} runs do not overlap; no = they overlap, so this run cannot tell the two apart:`
    : 'Differences between modes (the second against the first): with one run per mode none is tested against the noise between runs (?):'
}

const label = (figure: Figure): string => FIGURES.find((f) => f.figure === figure)?.label ?? figure

function listed (ds: Difference[]): string {
  return ds.map((d) => `${d.b} ${signedPct(d.change)} vs ${d.a}`).join(', ')
}

/** The plain words on how sure the numbers are. */
export function certaintyWords (report: CompareReport): string[] {
  const lines: string[] = []
  const results = report.results
  const runs = runsOf(report)
  const warmups = runs.map((r) => r.warmup).filter((w) => w !== undefined && w.capSeconds > 0)
  if (warmups.length > 0) {
    const seconds = warmups.map((w) => w.seconds)
    const capped = warmups.filter((w) => !w.steady).length
    lines.push(`warm-up: each run warmed up ${report.config.warmupRule}: ${range(seconds, (n) => dec(n, 1))} s` +
      (capped === 0
        ? '; every one became steady before the cap.'
        : `; ${capped} of ${warmups.length} reached the cap first (on a busy machine the windows move with the other work too), so their figures may still hold some warming.`))
  }

  if (report.config.runs > 1) {
    const rps = results.map((r) => r.confidence?.rps.relative).filter((x): x is number => x != null)
    if (rps.length > 0) {
      lines.push(`certainty: every figure is the mean of ${report.config.runs} runs per mode with its 95% interval (Student's t): req/s ${range(rps, (n) => `±${dec(n * 100, 1)}%`)}${rps.length < 2 ? '' : new Set(rps.map((n) => dec(n * 100, 1))).size === 1 ? ' in every mode' : ' across modes'}. ` +
        'If the runs were repeated, 95 in 100 intervals made this way would hold the true mean.')
    }
    for (const figure of ['rps', 'authP50'] as const) {
      const ds = (report.differences ?? []).filter((d) => d.figure === figure && d.basis === 'runs' && d.change !== null && !isTwin(d))
      if (ds.length === 0) continue
      const real = ds.filter((d) => d.established)
      const not = ds.filter((d) => !d.established)
      lines.push(`${label(figure)}: ${real.length > 0 ? `larger than the noise (the intervals do not overlap): ${listed(real)}` : 'no difference between modes is larger than the noise'}` +
        `${not.length > 0 ? `; within the noise, not established: ${listed(not)}` : ''}.`)
    }
    const trends = results.filter((r) => r.trend?.rps != null && Math.abs(r.trend.rps) >= TREND_WORTH_SAYING)
    if (results.some((r) => r.trend?.rps != null)) {
      lines.push(trends.length === 0
        ? `rounds: no mode's req/s moved by ${pct(TREND_WORTH_SAYING)} or more a round (least-squares slope over the rounds).`
        : `rounds: req/s moved round after round in ${trends.map(trendText).join(', ')}. Where it fell as other work grew, or as the load generator's CPU per request rose with the servers' ` +
          '(one process for every mode, never idle: the same work took longer), that was the machine; ' +
          'where it climbed as the servers\' CPU per request fell and the load generator\'s did not, the processes were not yet warm (see the round-by-round table).')
    }
  } else if (results.length > 1) {
    const within = results.filter((r) => r.rpsWithinRun?.relative != null).map((r) => `${r.mode} ±${dec((r.rpsWithinRun.relative as number) * 100, 1)}%`)
    const inside = (report.differences ?? []).filter((d) => d.figure === 'rps' && d.basis === 'windows' && d.overlap === true)
    lines.push('certainty: one run per mode, so how much these numbers move from run to run is not measured, and no difference between modes is established: modes whose req/s (or auth step) are close may rank the other way in the next run.' +
      (within.length > 0 ? ` From its one-second windows, each run's req/s has a 95% interval of ${within.join(', ')}; but windows of one run share its conditions (the same processes, the same moment on the machine), so this understates the noise between runs.` : '') +
      (inside.length > 0 ? ` Not apart even by that: ${listed(inside)}.` : '') +
      ' --runs 3 gives intervals over runs and says which differences are larger than the noise.')
  }

  for (const r of results.filter((x) => x.mode !== baseMode(x.mode))) {
    const twin = results.find((x) => x.mode === baseMode(r.mode))
    const d = (report.differences ?? []).find((x) => x.figure === 'rps' && ((x.a === twin?.mode && x.b === r.mode) || (x.b === twin?.mode && x.a === r.mode)))
    if (twin === undefined || d === undefined) continue
    lines.push(`${r.mode} is ${twin.mode} again, on a cluster of its own: req/s ${signedPct(d.change)}` +
      (d.basis !== 'runs'
        ? ' (one run each: not tested against the noise).'
        : d.established
          ? ', larger than the noise: something other than the mode (the order, a cold process, the machine) moved the numbers, so read the other differences with care.'
          : ', within the noise, as the same mode should be.'))
  }
  return lines
}

/** "jwt (−7.4% a round; CPU per request 43 → 49 µs, other work 0.5 → 0.6 cores)": the slope and what moved with it, first round to last. */
function trendText (r: ModeResult): string {
  const runs = [...(r.allRuns ?? [])].sort((a, b) => (a.round ?? 0) - (b.round ?? 0))
  const first = runs[0]
  const last = runs[runs.length - 1]
  const moved = first === undefined || last === undefined
    ? ''
    : `; server CPU per request ${int(first.cpuUsPerRequest)} → ${int(last.cpuUsPerRequest)} µs, load generator's ${int(first.loadGeneratorCpuUsPerRequest)} → ${int(last.loadGeneratorCpuUsPerRequest)} µs, other work ${dec(first.bottleneck.otherCores, 1)} → ${dec(last.bottleneck.otherCores, 1)} cores`
  return `${r.mode} (${signedPct(r.trend.rps)} a round${moved})`
}

function isTwin (d: Difference): boolean {
  return baseMode(d.a) === baseMode(d.b)
}

/** The interval of a figure as text beside its value: " ±3.1%" with two runs or more, nothing with one. */
export function ci (r: ModeResult, figure: Figure | 'p90'): string {
  const c = r.confidence as ModeResult['confidence'] | undefined
  if (c === undefined || r.runs < 2) return ''
  return plusMinus(figure === 'authP50' ? c.authP50 : c[figure])
}
