import { randomBytes } from 'node:crypto'
import t from 'tap'
import { feeds, login, withCluster } from '../helpers/cluster.ts'

const kidOf = (token: string): unknown => (JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: unknown }).kid

t.test('restartWith: one server restarts with a changed environment, on the same port; the others are untouched', async (t) => {
  // A cluster on one JWT_SECRET: restarting with JWT_SECRETS only works if JWT_SECRET is really
  // removed (a server with both refuses to start), so this also checks that undefined removes.
  const cluster = await withCluster(t, { mode: 'jwt', servers: 2 })
  const [first, second] = cluster.servers
  if (first === undefined || second === undefined || cluster.jwtSecret === undefined) throw new Error('expected two servers and a secret')
  const before = await login(first.url)
  t.equal(kidOf(before.token), 'default', 'a lone JWT_SECRET signs with the kid "default"')
  const { port, url } = first
  const pid = first.pid

  const next = randomBytes(48).toString('base64url')
  await first.restartWith({ JWT_SECRET: undefined, JWT_SECRETS: `next:${next},default:${cluster.jwtSecret}` })
  t.ok(first.running, 'it runs again')
  t.not(first.pid, pid, 'as a new process')
  t.same([first.port, first.url], [port, url], 'on the same port')

  const after = await login(first.url)
  t.equal(kidOf(after.token), 'next', 'the new environment took effect: it signs with the first key listed')
  t.equal((await feeds(first.url, before.token)).status, 200, 'and still accepts a token made before the restart')
  t.equal(kidOf((await login(second.url)).token), 'default', 'the other server kept its own environment')
  t.equal((await feeds(second.url, after.token)).body.reason, 'invalid_token', 'so it refuses the new kid')

  await first.stop()
  await first.start()
  t.equal(kidOf((await login(first.url)).token), 'next', 'the change stays for a plain restart too')
})
