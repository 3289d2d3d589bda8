import { writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { styleText } from 'node:util'
import type { Cluster } from './cluster.ts'
import { STEPS } from './demo/steps/index.ts'
import { runWalkthrough } from './demo/walkthrough.ts'
import { parseCommandLine, wholeNumber } from './lib/cli.ts'
import { checkPort, isPortFree, portRefusal } from './lib/ports.ts'

const USAGE = `Usage: npm run demo -- [--auto] [--step N] [--servers N] [--port P] [--json FILE]

A guided walkthrough of the story, in this terminal, on clusters it starts and stops itself:
${STEPS.map((step, i) => `  ${String(i + 1).padStart(2)} ${step.title}`).join('\n')}

  --auto     run straight through, without waiting for Enter
  --step N   start at step N (1-${STEPS.length})
  --servers  app servers per cluster, 2 to 9 (default 3)
  --port     the balancer's port, so the dashboard URL stays the same (default 8080, or a free one)
  --json     also write what each step measured to FILE`

const { values: args, fail } = parseCommandLine(USAGE, {
  auto: { type: 'boolean', default: false },
  step: { type: 'string', default: '1' },
  servers: { type: 'string', default: '3' },
  port: { type: 'string' },
  json: { type: 'string' }
})
const fromStep = wholeNumber(fail, 'step', args.step, 1, STEPS.length)
const servers = wholeNumber(fail, 'servers', args.servers, 2, 9)
let port = 0
if (args.port !== undefined) {
  port = Number(args.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number from 0 to 65535 (got "${args.port}")`)
  const check = port === 0 ? undefined : await checkPort(port)
  if (check !== undefined && !check.free) fail(portRefusal(port, check))
} else if (await isPortFree(8080)) {
  port = 8080
}

const colour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined
const write = (text: string): void => { process.stdout.write(text) }
const bold = (text: string): string => colour ? styleText('bold', text) : text

// Whatever happens (Enter, Ctrl-C, a failure), the cluster running now is stopped before exit.
let running: Cluster | undefined
let quitting = false
async function quit (signal: string): Promise<void> {
  if (quitting) return
  quitting = true
  write(`\n${signal}: stopping the cluster...\n`)
  await running?.stop()
  write('All stopped.\n')
  process.exit(130)
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    quit(signal).catch(() => process.exit(1))
  })
}

// Enter is read in the terminal's normal line mode (not raw), so Ctrl-C stays a signal.
const lines = args.auto ? undefined : createInterface({ input: process.stdin, terminal: false })
const waiting: Array<() => void> = []
lines?.on('line', () => waiting.shift()?.())
lines?.on('close', () => { for (const resume of waiting.splice(0)) resume() })
async function pause (next: { n: number, title: string }): Promise<void> {
  if (lines === undefined) return
  write(`\n${bold(`Press Enter for step ${next.n}: ${next.title}`)} (Ctrl-C to stop) `)
  await new Promise<void>((resolve) => waiting.push(resolve))
}

write(`${bold('auth-cluster: the story, step by step')}
  A user logs in on one server behind a load balancer; the next request lands on another.
  Each step starts real processes, sends real requests through the balancer and shows, for
  every request, which server answered and what it said.${args.port === undefined && port === 0 ? '\n  (Port 8080 is taken, so the balancer takes a free port.)' : ''}
  The dashboard at each balancer's /_balancer/ shows the same traffic live in a browser.
`)

try {
  const reports = await runWalkthrough({
    fromStep,
    servers,
    port,
    write,
    colour,
    pause,
    onCluster: (cluster) => { running = cluster }
  })
  if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify({ steps: reports }, null, 2)}\n`)
  write(`\n${bold('That is the story.')} Try it yourself: npm start -- --mode memory (or redis, postgres, jwt, cookie; jwt --signing eddsa), and open the dashboard it prints.\n`)
  lines?.close()
} catch (err) {
  if (!quitting) {
    process.stderr.write(`\nThe walkthrough stopped: ${(err as Error).message}\n`)
    process.exit(1)
  }
}
