import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runCli, waitForOutput } from '../helpers/cli.ts'
import { portClosed } from '../helpers/process-tree.ts'
import { feedsTimes, login } from '../helpers/cluster.ts'
import { freePort } from '../../scripts/lib/ports.ts'

// npm start -- --mode redis --redis-ha: what it prints, that 30 reads through the balancer
// succeed, that it leaves no process or file behind; and where it is refused.
const START = fileURLToPath(new URL('../../scripts/start.ts', import.meta.url))

t.test('npm start --mode redis --redis-ha: the primary, the replica and three Sentinels listed; 30 reads succeed; SIGTERM leaves nothing', { timeout: 240_000 }, async (t) => {
  const port = await freePort()
  // A temporary directory of its own: the Sentinels' configuration goes there, and must not stay.
  const tmp = mkdtempSync(join(tmpdir(), 'start-redis-ha-'))
  t.teardown(() => { rmSync(tmp, { recursive: true, force: true }) })
  const run = runCli(t, START, ['--mode', 'redis', '--redis-ha', '--servers', '3', '--port', String(port)], { ...process.env, REDIS_URL: undefined, TMPDIR: tmp })
  await waitForOutput(run, 'Ctrl-C stops everything', 120_000)
  t.equal(readdirSync(tmp).length, 1, 'the configuration directory, while it runs')
  const out = run.output()
  const nodes = [...out.matchAll(/^ {2}(redis-primary|redis-replica|sentinel-\d) +redis:\/\/127\.0\.0\.1:(\d+)/gm)].map((m) => ({ name: m[1], port: Number(m[2]) }))
  t.same(nodes.map((n) => n.name), ['redis-primary', 'redis-replica', 'sentinel-1', 'sentinel-2', 'sentinel-3'])
  const sentinelList = /REDIS_SENTINELS=(\S+);/.exec(out)?.[1]
  t.equal(sentinelList, nodes.slice(2).map((n) => `127.0.0.1:${n.port}`).join(','), 'the REDIS_SENTINELS the servers were given')
  t.notMatch(out, /^ {2}redis {6}/m, 'no lone redis-server')

  const url = `http://127.0.0.1:${port}`
  const { token } = await login(url)
  const reads = await feedsTimes(url, token, 30)
  t.same(reads.map((r) => r.status), Array.from({ length: 30 }, () => 200), '30 reads through the balancer, all 200')
  t.same(new Set(reads.map((r) => r.servedBy)).size, 3, 'from the three servers')

  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0)
  t.match(run.output(), 'the Redis primary, replica and Sentinels')
  for (const node of nodes) t.ok(await portClosed(node.port), `${node.name} (${node.port}) stopped`)
  t.same(readdirSync(tmp), [], 'the configuration directory is removed')
})

t.test('npm start --redis-ha is refused, exit 2, where no Redis is used or REDIS_URL is set', async (t) => {
  const cases: Array<[string[], Record<string, string | undefined>, RegExp]> = [
    [['--mode', 'memory', '--redis-ha'], {}, /^--redis-ha: nothing uses Redis with --mode memory: it applies to --mode redis, jwt with JWT_REVOCATION=redis or --signing eddsa/m],
    [['--mode', 'jwt', '--redis-ha'], { JWT_REVOCATION: undefined }, /^--redis-ha: nothing uses Redis with --mode jwt \(signing hs256\)/m],
    [['--mode', 'postgres', '--redis-ha'], { SESSION_CACHE: undefined }, /^--redis-ha: nothing uses Redis with --mode postgres/m],
    [['--mode', 'redis', '--redis-ha'], { REDIS_URL: 'redis://127.0.0.1:1' }, /^--redis-ha starts its own primary, replica and Sentinels, but REDIS_URL is set: unset REDIS_URL, or leave out --redis-ha/m]
  ]
  for (const [args, env, message] of cases) {
    const run = runCli(t, START, args, { ...process.env, REDIS_URL: undefined, ...env })
    t.equal(await run.exited, 2, args.join(' '))
    t.match(run.output(), message, args.join(' '))
    t.match(run.output(), 'Usage: npm start', 'with the usage')
    t.notMatch(run.output(), 'Starting', 'before anything starts')
  }
})
