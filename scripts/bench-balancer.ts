// `npm run bench:balancer`: the process entry. Arguments, signals, output;
// the measuring is in lib/bench-balancer.ts.
import { writeFileSync } from 'node:fs'
import { parseCommandLine, wholeNumber } from './lib/cli.ts'
import { DEFAULT_OPTIONS, LEG_NAMES, ROUTES, runBalancerBench, type BenchOptions, type LegName, type Route } from './lib/bench-balancer.ts'
import { formatReport } from './lib/bench-report.ts'

const D = DEFAULT_OPTIONS
const USAGE = `Usage: npm run bench:balancer -- [options]

What our balancer costs: the same app servers load-tested straight, through our
balancer, through two bare Node proxies (node:http; undici towards the servers: the
floor any Node balancer starts from), through nginx and through haproxy (those two
when installed), the legs interleaved round by round; prints medians and the ratios
of ours to every other leg.
  --servers N       app servers behind each balancer (default ${D.servers})
  --connections C   autocannon connections (default ${D.connections})
  --duration S      seconds per leg per round (default ${D.durationSeconds})
  --rounds R        rounds (default ${D.rounds})
  --warmup S        unmeasured seconds per leg before the first round (default ${D.warmupSeconds})
  --legs LIST       comma-separated, from ${LEG_NAMES.join(', ')} (default all)
  --route R         health (GET /health) or feeds (GET /feeds with a JWT) (default ${D.route})
  --threads LIST    comma-separated: one leg each of ours (BALANCER_THREADS), nginx (workers) and
                    haproxy (nbthread) per value, 1 to 16 (default ${D.threads.join(',')})
  --json FILE       also write the results as JSON`

const { values, fail } = parseCommandLine(USAGE, {
  servers: { type: 'string', default: String(D.servers) },
  connections: { type: 'string', default: String(D.connections) },
  duration: { type: 'string', default: String(D.durationSeconds) },
  rounds: { type: 'string', default: String(D.rounds) },
  warmup: { type: 'string', default: String(D.warmupSeconds) },
  legs: { type: 'string', default: LEG_NAMES.join(',') },
  route: { type: 'string', default: D.route },
  threads: { type: 'string', default: D.threads.join(',') },
  json: { type: 'string' }
})
const wholeNumberFlag = (name: string, raw: string, min: number, max: number): number => wholeNumber(fail, name, raw, min, max)

const legs = values.legs.split(',').map((s) => s.trim()).filter((s) => s !== '')
for (const leg of legs) {
  if (!(LEG_NAMES as readonly string[]).includes(leg)) fail(`--legs: "${leg}" is not one of ${LEG_NAMES.join(', ')}`)
}
if (legs.length === 0) fail('--legs must name at least one leg')
if (!(ROUTES as readonly string[]).includes(values.route)) fail(`--route must be one of ${ROUTES.join(', ')} (got "${values.route}")`)

const options: BenchOptions = {
  servers: wholeNumberFlag('servers', values.servers, 1, 16),
  connections: wholeNumberFlag('connections', values.connections, 1, 1000),
  durationSeconds: wholeNumberFlag('duration', values.duration, 1, 600),
  rounds: wholeNumberFlag('rounds', values.rounds, 1, 100),
  warmupSeconds: wholeNumberFlag('warmup', values.warmup, 0, 600),
  legs: [...new Set(legs)] as LegName[],
  route: values.route as Route,
  threads: [...new Set(values.threads.split(',').map((s) => wholeNumberFlag('threads', s.trim(), 1, 16)))].sort((a, b) => a - b)
}

// Ctrl-C or SIGTERM: abort the load, then the bench stops every process it started.
const controller = new AbortController()
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping...\n`)
    controller.abort(new Error(`stopped by ${sig}`))
  })
}

try {
  const report = await runBalancerBench(options, {
    signal: controller.signal,
    onProgress: (line) => { process.stderr.write(`${line}\n`) }
  })
  process.stdout.write(`\n${formatReport(report)}\n`)
  if (values.json !== undefined) {
    writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`)
    process.stdout.write(`\nwrote ${values.json}\n`)
  }
} catch (err) {
  process.stderr.write(`bench:balancer failed: ${controller.signal.aborted ? (controller.signal.reason as Error).message : (err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
}
