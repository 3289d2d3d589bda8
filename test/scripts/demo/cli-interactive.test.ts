import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { jwtForgeries } from '../../../scripts/demo/steps/07-jwt-forgeries.ts'
import { encryptedCookie } from '../../../scripts/demo/steps/08-encrypted-cookie.ts'
import { STEPS } from '../../../scripts/demo/steps/index.ts'
import { runCli, waitForOutput, type CliRun } from '../../helpers/cli.ts'
import type { Test } from 'tap'

const DEMO = fileURLToPath(new URL('../../../scripts/demo.ts', import.meta.url))
const launch = (t: Test, args: string[]): CliRun => runCli(t, DEMO, args)

/** Every process below `pid`: the demo's cluster. */
function descendants (pid: number): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
  const children = new Map<number, number[]>()
  for (const line of table.trim().split('\n')) {
    const [child, parent] = line.trim().split(/\s+/).map(Number) as [number, number]
    children.set(parent, [...(children.get(parent) ?? []), child])
  }
  const found: number[] = []
  const walk = (p: number): void => { for (const c of children.get(p) ?? []) { found.push(c); walk(c) } }
  walk(pid)
  return found
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

// Real clusters on a machine that may be busy: more time than the suite's default.
t.setTimeout(300_000)

// The forgeries, then the encrypted cookie step: it goes on on the forgeries' cluster and then
// starts a cookie cluster of its own, which runs when the walkthrough waits for Enter again.
const COOKIE = STEPS.indexOf(encryptedCookie) + 1

t.test('npm run demo: waits for Enter between steps, and Ctrl-C stops every process it started', async (t) => {
  t.equal(STEPS.indexOf(jwtForgeries) + 1, COOKIE - 1, 'the forgeries come first')
  const run = launch(t, ['--step', String(COOKIE - 1), '--port', '0'])
  await waitForOutput(run, `Press Enter for step ${COOKIE}`, 60_000)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.notMatch(run.output(), `Step ${COOKIE} of ${STEPS.length}`, 'it waits')
  run.child.stdin?.write('\n')
  await waitForOutput(run, `Press Enter for step ${COOKIE + 1}`, 90_000)
  const cookie = run.output().slice(run.output().indexOf(`Step ${COOKIE} of ${STEPS.length}`))
  t.match(cookie, 'Lesson: Alice\'s JWT gave her name', `Enter ran step ${COOKIE} to its lesson`)
  const balancerPort = Number(/balancer http:\/\/127\.0\.0\.1:(\d+)/.exec(cookie)?.[1])
  t.ok(balancerPort > 0, `step ${COOKIE} started a cluster of its own`)
  const children = descendants(run.child.pid ?? 0)
  t.ok(children.length >= 4, `Enter went on to step ${COOKIE}: its balancer and three servers run (${children.length} processes)`)
  run.child.kill('SIGINT')
  t.equal(await run.exited, 130)
  t.match(run.output(), 'All stopped.')
  t.same(children.filter(alive), [], 'no process is left behind')
  const answered = await fetch(`http://127.0.0.1:${balancerPort}/_balancer/stats`).then(() => true, () => false)
  t.equal(answered, false, 'the balancer is gone')
})

t.test('npm run demo: bad flags say what is wrong', async (t) => {
  for (const [args, message] of [[['--step', String(STEPS.length + 1)], `--step must be a whole number from 1 to ${STEPS.length}`], [['--servers', '1'], '--servers must be'], [['--nope'], 'Unknown option']] as const) {
    const run = launch(t, [...args])
    t.equal(await run.exited, 2, args.join(' '))
    t.match(run.output(), message)
    t.match(run.output(), 'Usage: npm run demo')
  }
})
