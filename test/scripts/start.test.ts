import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { descendants, portClosed } from '../helpers/process-tree.ts'
import { npmStartInGroup, runCli, waitForOutput, type CliRun } from '../helpers/cli.ts'
import { findCommand } from '../../scripts/lib/bench-proxies.ts'
import { freePort } from '../../scripts/lib/ports.ts'
import { httpOk } from '../../scripts/lib/probes.ts'

const START = fileURLToPath(new URL('../../scripts/start.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const launch = (args: string[], env: Record<string, string | undefined> = process.env): CliRun => runCli(t, START, args, env)
// A server may take up to the launcher's own 60 s to start on a loaded machine.
const waitFor = async (run: CliRun, text: string): Promise<void> => await waitForOutput(run, text, 120_000)

t.test('npm start: prints the URL, the servers and the demo users; SIGTERM stops every child', { timeout: 240_000 }, async (t) => {
  const port = await freePort()
  // The balancer on two threads (BALANCER_THREADS): SIGTERM must stop them all the same.
  const run = launch(['--mode', 'redis', '--servers', '2', '--port', String(port), '--balancer-threads', '2'], { ...process.env, REDIS_URL: undefined })
  await waitFor(run, 'Ctrl-C stops everything')
  const out = run.output()
  t.match(out, `balancer   http://127.0.0.1:${port}`)
  t.match(out, 'on 2 threads')
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
  for (const args of [['--mode', 'cookies'], ['--servers', '0'], ['--port', 'eighty'], ['--bogus'], ['--mode', 'postgres', '--session-cache', 'memcached']]) {
    const run = launch(args)
    t.equal(await run.exited, 2, args.join(' '))
    t.match(run.output(), 'Usage: npm start')
  }
})

t.test('npm start: --signing and --issuers are checked before anything starts', async (t) => {
  for (const [args, env, message] of [
    [['--signing', 'rs256'], {}, '--signing must be one of hs256, eddsa (got "rs256")'],
    [[], { JWT_SIGNING: 'rs256' }, 'JWT_SIGNING must be one of hs256, eddsa (got "rs256")'],
    [['--mode', 'memory', '--signing', 'eddsa'], {}, '--signing applies to --mode jwt (got --mode memory)'],
    [['--issuers', '2'], {}, '--issuers needs --signing eddsa'],
    [['--signing', 'eddsa', '--issuers', '9'], {}, '--issuers must be a whole number from 1 to 8 (got "9")']
  ] as const) {
    const run = launch([...args, '--port', String(await freePort())], { ...process.env, ...env })
    t.equal(await run.exited, 2, args.join(' '))
    t.match(run.output(), message)
    t.notMatch(run.output(), 'Starting', 'nothing started')
  }
})

t.test('npm start --signing eddsa: the issuers, their keys and Redis are listed; Ctrl-C leaves no process and no key', { timeout: 240_000 }, async (t) => {
  const port = await freePort()
  const run = launch(['--signing', 'eddsa', '--issuers', '2', '--servers', '2', '--port', String(port)], { ...process.env, REDIS_URL: undefined })
  await waitFor(run, 'Ctrl-C stops everything')
  const out = run.output()
  t.match(out, 'Starting 2 app servers and 2 issuers in jwt mode (signing eddsa)')
  t.match(out, /issuer-1 +http:\/\/127\.0\.0\.1:\d+ +\(JWKS: http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json\)/)
  t.match(out, /issuer-2 +http:\/\/127\.0\.0\.1:\d+/)
  t.match(out, 'POST /token/refresh')
  const keysDir = /keys +(\S+) +\(the issuers' private keys: removed on exit\)/.exec(out)?.[1]
  t.ok(keysDir !== undefined && readdirSync(keysDir).length === 1, 'a keys directory of this run, with its key')
  const login = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"alice","password":"wonderland"}' })
  t.equal(login.headers.get('x-served-by')?.startsWith('issuer-'), true, 'logins go to an issuer')
  const children = [...out.matchAll(/(?:app-\d|issuer-\d|redis) +(?:http|redis):\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]))
  t.equal(children.length, 5, 'two app servers, two issuers and a redis-server')
  run.child.kill('SIGINT')
  t.equal(await run.exited, 0)
  for (const childPort of [port, ...children]) t.ok(await portClosed(childPort), `nothing listens on ${childPort} any more`)
  t.throws(() => readdirSync(keysDir ?? ''), { code: 'ENOENT' }, 'and the keys directory is gone')
})

t.test('npm start: a session cache outside postgres mode is refused, by flag or SESSION_CACHE, before anything starts', async (t) => {
  const flag = launch(['--mode', 'jwt', '--session-cache', 'local', '--port', String(await freePort())])
  t.equal(await flag.exited, 2)
  t.match(flag.output(), '--session-cache=local caches postgres mode\'s sessions: add --mode postgres (the mode is jwt)')
  t.notMatch(flag.output(), 'Starting', 'nothing started')
  const env = launch(['--mode', 'redis', '--port', String(await freePort())], { ...process.env, SESSION_CACHE: 'redis' })
  t.equal(await env.exited, 2)
  t.match(env.output(), 'SESSION_CACHE=redis caches postgres mode\'s sessions: add --mode postgres (the mode is redis)')
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

t.test('npm start: a bad number of balancer threads is refused before anything starts, flag or BALANCER_THREADS', async (t) => {
  for (const [args, env, message] of [
    [['--balancer-threads', '0'], {}, '--balancer-threads must be a whole number from 1 to 64 (got "0")'],
    [['--balancer-threads=-1'], {}, '--balancer-threads must be a whole number from 1 to 64 (got "-1")'],
    [['--balancer-threads', '65'], {}, '--balancer-threads must be a whole number from 1 to 64 (got "65")'],
    [[], { BALANCER_THREADS: 'abc' }, 'BALANCER_THREADS must be a whole number from 1 to 64 (got "abc")']
  ] as const) {
    const run = launch([...args, '--port', String(await freePort())], { ...process.env, ...env })
    t.equal(await run.exited, 2, message)
    t.match(run.output(), message)
    t.notMatch(run.output(), 'Starting', 'nothing started')
  }
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

t.test('npm start: Ctrl-C in a terminal stops everything without warning that a server exited; a server that dies on its own is warned about', { timeout: 240_000 }, async (t) => {
  const port = await freePort()
  // A terminal sends Ctrl-C's SIGINT to its whole foreground process group: npm, the launcher
  // and every child. Detached, npm leads a group of its own that the test can signal the same way.
  const run = npmStartInGroup(t, ROOT, ['--mode', 'jwt', '--servers', '4', '--port', String(port)])
  const { group, exited } = run
  await waitFor(run, 'Ctrl-C stops everything')
  const servers = [...run.output().matchAll(/(app-\d) +http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => ({ id: m[1] as string, port: Number(m[2]) }))
  t.equal(servers.length, 4)

  // One server killed from outside: that is worth a warning.
  const victim = descendants(group).find((p) => p.cmdline.includes('services/server.ts'))
  if (victim === undefined) throw new Error(`no app server among the launcher's processes:\n${run.output()}`)
  process.kill(victim.pid, 'SIGKILL')
  await waitFor(run, 'exited (SIGKILL); the balancer will route around it')
  // Once the balancer has marked it down, so the login below goes to a live server.
  const deadline = Date.now() + 30_000
  while (!(await balancerStats(port)).some((u) => !u.healthy)) {
    if (Date.now() > deadline) throw new Error('the balancer never marked the killed server down')
    await sleep(100)
  }

  // Ctrl-C: the three servers left get SIGINT from the "terminal" too, and exit before the
  // launcher asks them to. A login in flight (its body half sent) keeps the balancer draining
  // for a second, so they certainly do: the launcher stops the balancer first.
  const children = descendants(group).filter((p) => p.cmdline.includes('balancer/server.ts') || p.cmdline.includes('services/server.ts'))
  t.equal(children.length, 4, 'the balancer and three servers are running')
  const login = await halfSentLogin(port)
  await sleep(300)
  const before = run.output().length
  process.kill(-group, 'SIGINT')
  await sleep(1000)
  t.equal(await login.finish(), 200, 'the login in flight at Ctrl-C is answered')
  await exited
  const shutdown = run.output().slice(before)
  t.match(shutdown, 'SIGINT: stopping the balancer, the servers')
  t.match(shutdown, 'All stopped.')
  t.notMatch(shutdown, /exited \(/, "no warning that a server exited during the launcher's own shutdown")
  t.notMatch(shutdown, /second SIG/, 'no child got a second signal (which makes it exit at once)')
  t.same(children.filter((p) => alive(p.pid)).map((p) => p.cmdline), [], 'every child has exited')
  for (const p of [port, ...servers.map((s) => s.port)]) t.ok(await portClosed(p), `nothing listens on ${p} any more`)
})

async function balancerStats (port: number): Promise<Array<{ url: string, healthy: boolean }>> {
  const res = await fetch(`http://127.0.0.1:${port}/_balancer/stats`, { signal: AbortSignal.timeout(5000) })
  return (await res.json() as { upstreams: Array<{ url: string, healthy: boolean }> }).upstreams
}

/** POST /login with its body half sent; finish() sends the rest and resolves to the status (0: none). */
async function halfSentLogin (port: number): Promise<{ finish: () => Promise<number> }> {
  const body = JSON.stringify({ username: 'alice', password: 'wonderland' })
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  const closed = new Promise<void>((resolve) => socket.once('close', () => { resolve() }))
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(`POST /login HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`)
  return {
    async finish () {
      socket.write(body.slice(10))
      await Promise.race([closed, sleep(10_000)])
      socket.destroy()
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0)
    }
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('npm start: a closed terminal (SIGHUP) stops every child too, now that they have groups of their own', { timeout: 240_000 }, async (t) => {
  const port = await freePort()
  const run = launch(['--mode', 'jwt', '--servers', '2', '--port', String(port)])
  await waitFor(run, 'Ctrl-C stops everything')
  const servers = [...run.output().matchAll(/app-\d +http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]))
  t.equal(servers.length, 2)
  run.child.kill('SIGHUP')
  t.equal(await run.exited, 0, 'the launcher stops cleanly')
  t.match(run.output(), 'SIGHUP: stopping the balancer, the servers')
  for (const p of [port, ...servers]) t.ok(await portClosed(p), `nothing listens on ${p} any more`)
})
