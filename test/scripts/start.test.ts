import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runCli, waitForOutput, type CliRun } from '../helpers/cli.ts'
import { findCommand } from '../../scripts/lib/bench-proxies.ts'
import { freePort } from '../../scripts/lib/ports.ts'
import { httpOk } from '../../scripts/lib/probes.ts'

const START = fileURLToPath(new URL('../../scripts/start.ts', import.meta.url))

const launch = (args: string[], env: Record<string, string | undefined> = process.env): CliRun => runCli(t, START, args, env)
// A server may take up to the launcher's own 60 s to start on a loaded machine.
const waitFor = async (run: CliRun, text: string): Promise<void> => await waitForOutput(run, text, 120_000)

t.test('npm start: prints the URL, the servers and the demo users; SIGTERM stops every child', { timeout: 240_000 }, async (t) => {
  const port = await freePort()
  const run = launch(['--mode', 'redis', '--servers', '2', '--port', String(port)], { ...process.env, REDIS_URL: undefined })
  await waitFor(run, 'Ctrl-C stops everything')
  const out = run.output()
  t.match(out, `balancer   http://127.0.0.1:${port}`)
  t.match(out, /app-1 +http:\/\/127\.0\.0\.1:\d+/)
  t.match(out, /app-2 +http:\/\/127\.0\.0\.1:\d+/)
  t.match(out, /redis +redis:\/\/127\.0\.0\.1:\d+ +\(private/)
  t.match(out, 'alice / wonderland, bob / builder, carol / lighthouse')
  t.ok(await httpOk(`http://127.0.0.1:${port}/health`), 'the balancer answers on the port asked for')

  const children = [...out.matchAll(/(?:app-\d|redis) +(?:http|redis):\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]))
  t.equal(children.length, 3, 'two app servers and a redis-server')
  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0, 'the launcher exits cleanly')
  for (const childPort of [port, ...children]) {
    t.ok(await portClosed(childPort), `nothing listens on ${childPort} any more`)
  }
  t.match(run.output(), 'All stopped.')
})

t.test('npm start: a taken port stops the launch with a message that says what to do', async (t) => {
  const blocker = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => blocker.once('listening', resolve))
  t.teardown(() => { blocker.close() })
  const port = (blocker.address() as { port: number }).port
  const run = launch(['--mode', 'jwt', '--port', String(port)])
  t.equal(await run.exited, 2)
  t.match(run.output(), `port ${port} is taken`)
  t.match(run.output(), '--port')
})

/**
 * How to run the launcher without the privilege to bind a port below 1024: as it is for a
 * normal user; as root, through setpriv dropping CAP_NET_BIND_SERVICE (what lets root bind
 * them, capabilities(7)) from the launcher alone. Or why it cannot be done here.
 */
function withoutBindPrivilege (): { wrapper: string[] } | { skip: string } {
  let wrapper: string[] = []
  if (process.getuid?.() === 0) {
    const setpriv = findCommand('setpriv')
    if (setpriv === undefined) return { skip: 'running as root without setpriv (util-linux): apt-get install -y util-linux' }
    wrapper = [setpriv, '--inh-caps=-net_bind_service', '--ambient-caps=-net_bind_service', '--bounding-set=-net_bind_service']
  }
  const argv = [...wrapper, process.execPath, '-e', 'require("net").createServer().on("error", (e) => { console.log(e.code); process.exit() }).listen(1, "127.0.0.1", () => { console.log("bound"); process.exit() })']
  const probe = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', timeout: 30_000 })
  if (probe.stdout.trim() !== 'EACCES') return { skip: `a process here can bind port 1 without privileges (probe said ${JSON.stringify(probe.stdout.trim() || probe.stderr.trim())}; net.ipv4.ip_unprivileged_port_start=0?)` }
  return { wrapper }
}

const unprivileged = withoutBindPrivilege()
t.test('npm start: a port that needs privileges is named as such, not as taken', { skip: 'skip' in unprivileged ? unprivileged.skip : false }, async (t) => {
  const wrapper = 'wrapper' in unprivileged ? unprivileged.wrapper : []
  const run = runCli(t, START, ['--mode', 'jwt', '--port', '1'], process.env, wrapper)
  t.equal(await run.exited, 2)
  // Linux's bound is a setting (1024 unless changed); the message gives the one in force.
  let bound = 1024
  try { bound = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')) } catch {}
  t.match(run.output(), `port 1 needs privileges (below ${bound}): choose --port ${bound} or above, e.g. 8080`)
  t.notMatch(run.output(), 'taken')
  t.notMatch(run.output(), /app-\d/, 'no server started')
})

t.test('npm start: redis mode with no redis-server and no REDIS_URL says how to get one', async (t) => {
  const run = launch(['--mode', 'redis', '--port', String(await freePort())], { PATH: '/nonexistent', HOME: process.env.HOME })
  t.equal(await run.exited, 1)
  t.match(run.output(), 'install redis-server')
  t.match(run.output(), 'REDIS_URL')
})

t.test('npm start: bad flags are refused with the usage', async (t) => {
  for (const args of [['--mode', 'cookies'], ['--servers', '0'], ['--port', 'eighty'], ['--bogus']]) {
    const run = launch(args)
    t.equal(await run.exited, 2, args.join(' '))
    t.match(run.output(), 'Usage: npm start')
  }
})

t.test('npm start: a negative number is a value out of range, whichever way it is written', async (t) => {
  // Node's parseArgs takes "-1" after a flag for another flag ("argument is ambiguous").
  for (const [args, message] of [
    [['--servers', '-1'], '--servers must be a whole number from 1 to 32 (got "-1")'],
    [['--servers=-1'], '--servers must be a whole number from 1 to 32 (got "-1")'],
    [['--port', '-80'], '--port must be a port number from 1 to 65535 (got "-80")']
  ] as const) {
    const run = launch([...args])
    t.equal(await run.exited, 2, args.join(' '))
    t.match(run.output(), message, args.join(' '))
    t.notMatch(run.output(), 'ambiguous', args.join(' '))
    t.notMatch(run.output(), 'Starting', `${args.join(' ')}: nothing started`)
  }
  // A flag where a value should be is still a missing value, not a value.
  const run = launch(['--port', '--mode', 'jwt'])
  t.equal(await run.exited, 2)
  t.match(run.output(), 'Usage: npm start')
})

t.test('npm start: an unknown log level is refused before anything starts, flag or LOG_LEVEL', async (t) => {
  const levels = 'fatal, error, warn, info, debug, trace, silent'
  const flag = launch(['--log-level', 'loud', '--port', String(await freePort())])
  t.equal(await flag.exited, 2)
  t.match(flag.output(), `--log-level must be one of ${levels} (got "loud")`)
  t.match(flag.output(), 'Usage: npm start')
  t.notMatch(flag.output(), 'Starting', 'nothing started')
  const env = launch(['--port', String(await freePort())], { ...process.env, LOG_LEVEL: 'chatty' })
  t.equal(await env.exited, 2)
  t.match(env.output(), `LOG_LEVEL must be one of ${levels} (got "chatty")`)
  t.notMatch(env.output(), 'Starting', 'nothing started')
})

async function portClosed (port: number): Promise<boolean> {
  const probe = createServer()
  return await new Promise((resolve) => {
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}
