import { writeFileSync } from 'node:fs'
import { clientAborts, upstreamResets } from './faults/balancer-churn.ts'
import { sigtermDrain } from './faults/drain.ts'
import { killServer } from './faults/kill-server.ts'
import { invalidationCut } from './faults/invalidation-cut.ts'
import { issuerOutage } from './faults/issuer-outage.ts'
import { postgresOutage } from './faults/postgres-outage.ts'
import { redisFailover } from './faults/redis-failover.ts'
import { redisOutage } from './faults/redis-outage.ts'
import { sessionCacheOutage } from './faults/session-cache-outage.ts'
import { parseCommandLine } from './lib/cli.ts'
import type { FaultResult } from './faults/support.ts'

const USAGE = `Usage: npm run faults -- [--only TEXT] [--json FILE]

Breaks the cluster in each way below, under load, on this machine (127.0.0.1 only), and prints
per fault and mode: requests sent, requests failed, time to detect, time to recover, and
whether each bound the project promises held. Exits 1 if one did not.
  --only TEXT  run only the faults whose name or mode contains TEXT (e.g. --only redis, --only primary, --only postgres, --only issuer)
  --json FILE  also write the results as JSON`

const FAULTS: Array<{ name: string, run: () => Promise<FaultResult> }> = [
  { name: 'kill a server: jwt', run: async () => await killServer({ mode: 'jwt' }) },
  { name: 'kill a server: redis', run: async () => await killServer({ mode: 'redis' }) },
  { name: 'kill a server: memory', run: async () => await killServer({ mode: 'memory' }) },
  { name: 'redis killed: redis', run: async () => await redisOutage({ mode: 'redis', how: 'kill' }) },
  { name: 'redis frozen: redis', run: async () => await redisOutage({ mode: 'redis', how: 'freeze' }) },
  { name: 'redis killed: jwt+revocation', run: async () => await redisOutage({ mode: 'jwt', how: 'kill' }) },
  { name: 'redis primary killed: redis', run: async () => await redisFailover({ mode: 'redis', wait: false }) },
  { name: 'redis primary killed, WAIT 1: redis', run: async () => await redisFailover({ mode: 'redis', wait: true }) },
  { name: 'redis primary killed: jwt+revocation', run: async () => await redisFailover({ mode: 'jwt', wait: false }) },
  { name: 'redis primary killed, WAIT 1: jwt+revocation', run: async () => await redisFailover({ mode: 'jwt', wait: true }) },
  { name: 'postgres killed: postgres', run: async () => await postgresOutage({ how: 'kill' }) },
  { name: 'postgres frozen: postgres', run: async () => await postgresOutage({ how: 'freeze' }) },
  { name: 'session cache killed: postgres+redis-cache', run: async () => await sessionCacheOutage() },
  { name: 'invalidation channel cut: postgres+local-cache', run: async () => await invalidationCut() },
  { name: 'issuer killed: jwt-eddsa', run: async () => await issuerOutage({ how: 'kill' }) },
  { name: 'issuer frozen (its JWKS hangs): jwt-eddsa', run: async () => await issuerOutage({ how: 'freeze' }) },
  { name: 'client aborts: balancer', run: async () => await clientAborts({ aborts: 2000 }) },
  { name: 'upstream resets: balancer', run: async () => await upstreamResets({ resets: 2000 }) },
  { name: 'sigterm: server', run: async () => await sigtermDrain({ target: 'server' }) },
  { name: 'sigterm: balancer', run: async () => await sigtermDrain({ target: 'balancer' }) }
]

const { values: args } = parseCommandLine(USAGE, { only: { type: 'string' }, json: { type: 'string' } })
const chosen = FAULTS.filter((f) => args.only === undefined || f.name.includes(args.only))
if (chosen.length === 0) {
  process.stderr.write(`no fault matches --only ${args.only ?? ''}; the faults are:\n  ${FAULTS.map((f) => f.name).join('\n  ')}\n`)
  process.exit(2)
}

// Ctrl-C: exit through process.exit, so every child this run started is killed on the way out.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { process.exit(130) })

const results: FaultResult[] = []
for (const fault of chosen) {
  process.stderr.write(`${fault.name}...\n`)
  const started = performance.now()
  try {
    const result = await fault.run()
    results.push(result)
    const broken = result.checks.filter((c) => !c.ok)
    process.stderr.write(`  ${broken.length === 0 ? 'ok' : `BOUND BROKEN: ${broken.map((c) => c.name).join('; ')}`} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`)
  } catch (err) {
    process.stderr.write(`  could not run: ${(err as Error).stack ?? String(err)}\n`)
    results.push({ fault: fault.name, mode: '-', requests: 0, failed: 0, detectMs: undefined, recoverMs: undefined, notes: `could not run: ${(err as Error).message}`, checks: [{ name: 'the fault could be run', ok: false }], figures: {} })
  }
}

const seconds = (ms: number | undefined): string => ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`
const lines = [
  '| fault | mode | requests | failed | detect | recover | bounds held | notes |',
  '| --- | --- | ---: | ---: | ---: | ---: | --- | --- |',
  ...results.map((r) => {
    const held = r.checks.filter((c) => c.ok).length
    return `| ${r.fault} | ${r.mode} | ${r.requests} | ${r.failed} | ${seconds(r.detectMs)} | ${seconds(r.recoverMs)} | ${held}/${r.checks.length}${held === r.checks.length ? '' : ' BROKEN'} | ${r.notes} |`
  })
]
process.stdout.write(`\n${lines.join('\n')}\n`)
const broken = results.flatMap((r) => r.checks.filter((c) => !c.ok).map((c) => `${r.fault} (${r.mode}): ${c.name}`))
process.stdout.write(broken.length === 0
  ? `\nEvery bound held (${results.reduce((n, r) => n + r.checks.length, 0)} checks).\n`
  : `\nBounds broken:\n  ${broken.join('\n  ')}\n`)
if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify({ results }, null, 2)}\n`)
process.exitCode = broken.length === 0 ? 0 : 1
