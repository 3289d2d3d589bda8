import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from '../../scripts/lib/ports.ts'
import { call, eventually, feeds, feedsTimes, login, tally, withCluster, type Answer } from '../helpers/cluster.ts'
import { cookieForgeries, flipBit, regions } from '../helpers/cookie-forge.ts'
import { npmStartInGroup, waitForOutput } from '../helpers/cli.ts'
import { alive, descendants, portClosed } from '../helpers/process-tree.ts'
import { buildTestApp, login as loginByInject } from '../helpers/service-app.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The same request on each of the three servers (round robin: three in a row). */
async function onEveryServer (send: () => Promise<Answer>): Promise<Answer[]> {
  const answers: Answer[] = []
  for (let i = 0; i < 3; i++) answers.push(await send())
  return answers
}

/** A value sealed by a server outside the cluster, with the key and clock given. */
async function sealedElsewhere (t: Parameters<typeof buildTestApp>[0], secret: string, at: number): Promise<string> {
  const app = await buildTestApp(t, { AUTH_MODE: 'cookie', COOKIE_SECRET: secret, SERVER_ID: 'elsewhere' }, { now: () => at })
  return (await loginByInject(app, 'bob', 'builder')).token
}

t.test('cookie mode: every server opens the value, and refuses every forgery', async (t) => {
  const cluster = await withCluster(t, { mode: 'cookie', servers: 3 })
  const secret = cluster.cookieSecret
  if (secret === undefined) throw new Error('expected the cluster\'s cookie key')
  const { token } = await login(cluster.url)
  t.notMatch(Buffer.from(token, 'base64url').toString('latin1'), 'alice', 'the value does not carry the name readably')

  const answers = await feedsTimes(cluster.url, token, 30)
  t.same(tally(answers), { 'app-1': { 200: 10 }, 'app-2': { 200: 10 }, 'app-3': { 200: 10 } }, 'all 30 succeed, 10 on each server')
  t.ok(answers.every((a) => a.body.user === 'alice'))
  const byCookie = await onEveryServer(async () => await call(`${cluster.url}/feeds`, { headers: { cookie: `auth=${token}` } }))
  t.ok(byCookie.every((a) => a.status === 200), 'and as the cookie, on every server')

  const r = regions(token)
  const forgeries: Record<string, { token: string, reason: string }> = {
    'a bit flipped in the nonce': { token: flipBit(token, r.nonce[0] + 3), reason: 'invalid_token' },
    'a bit flipped in the ciphertext': { token: flipBit(token, r.ciphertext[0] + 1), reason: 'invalid_token' },
    'a bit flipped in the tag': { token: flipBit(token, r.tag[0] + 7), reason: 'invalid_token' },
    'cut short': { token: cookieForgeries(token)['the last byte cut off'] ?? '', reason: 'invalid_token' },
    'sealed with another key': { token: await sealedElsewhere(t, randomBytes(48).toString('base64'), Date.now()), reason: 'invalid_token' },
    'sealed with the cluster\'s key two hours ago: replayed after its end': { token: await sealedElsewhere(t, secret, Date.now() - 7_200_000), reason: 'expired' }
  }
  for (const [name, forgery] of Object.entries(forgeries)) {
    const refusals = await onEveryServer(async () => await feeds(cluster.url, forgery.token))
    t.ok(refusals.every((a) => a.status === 401 && a.body.reason === forgery.reason), `${name}: 401 ${forgery.reason} from every server`)
    t.same(new Set(refusals.map((a) => a.servedBy)), new Set(['app-1', 'app-2', 'app-3']), `${name}: tried on all three servers`)
  }
  const genuine = await sealedElsewhere(t, secret, Date.now())
  t.ok((await onEveryServer(async () => await feeds(cluster.url, genuine))).every((a) => a.status === 200),
    'a value sealed now with the cluster\'s key passes everywhere: the refusals above are about the forgery, the key or the time')
})

t.test('cookie mode: logout clears the cookie, and the value works on every server all the same', async (t) => {
  const cluster = await withCluster(t, { mode: 'cookie', servers: 3 })
  const { token } = await login(cluster.url)
  const res = await fetch(`${cluster.url}/logout`, { method: 'POST', headers: { cookie: `auth=${token}` }, signal: AbortSignal.timeout(5000) })
  t.equal(res.status, 204)
  t.match(res.headers.get('set-cookie'), /^auth=; .*Expires=Thu, 01 Jan 1970/, 'the browser is told to drop it')
  const after = await feedsTimes(cluster.url, token, 6)
  t.same(tally(after), { 'app-1': { 200: 2 }, 'app-2': { 200: 2 }, 'app-3': { 200: 2 } }, 'a copy of the value still works everywhere: no server kept anything to end')
})

t.test('cookie mode: a request a second after sealing renews the value through the balancer, and any server opens the new one', async (t) => {
  const cluster = await withCluster(t, { mode: 'cookie', servers: 3 })
  const { token } = await login(cluster.url)
  await sleep(1100)
  const res = await fetch(`${cluster.url}/feeds`, { headers: { cookie: `auth=${token}` }, signal: AbortSignal.timeout(5000) })
  t.equal(res.status, 200)
  const setCookie = res.headers.get('set-cookie') ?? ''
  t.match(setCookie, /^auth=[A-Za-z0-9_-]+; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Lax$/, 'a renewed cookie, with the login cookie\'s attributes')
  const renewed = /^auth=([^;]+)/.exec(setCookie)?.[1] ?? ''
  t.not(renewed, token)
  const answers = await feedsTimes(cluster.url, renewed, 3)
  t.ok(answers.every((a) => a.status === 200), 'the renewed value works on every server')
})

t.test('cookie mode: a key rotation on a running cluster, in two passes; removing the old key refuses only values nobody renewed', async (t) => {
  const OLD = randomBytes(48).toString('base64')
  const NEW = randomBytes(48).toString('base64')
  const cluster = await withCluster(t, { mode: 'cookie', servers: 3, cookieSecrets: `2026-10:${OLD}` })
  const rollOut = async (keys: string): Promise<void> => {
    await Promise.all(cluster.servers.map(async (s) => { await s.restartWith({ COOKIE_SECRETS: keys }) }))
    const healthy = await eventually(async () => {
      const stats = await (await fetch(`${cluster.url}/_balancer/stats`)).json() as { upstreams: Array<{ healthy: boolean }> }
      return stats.upstreams.every((u) => u.healthy)
    }, 15_000)
    if (!healthy) throw new Error(`the balancer did not see every server back after COOKIE_SECRETS=${keys.replace(/:[^,]+/g, ':...')}`)
  }
  const everywhere = async (token: string): Promise<string[]> => (await feedsTimes(cluster.url, token, 3)).map((a) => a.status === 200 ? 'ok' : String(a.body.reason))

  const idle = (await login(cluster.url)).token
  const active = (await login(cluster.url)).token
  await rollOut(`2026-10:${OLD},2026-11:${NEW}`)
  t.same(await everywhere(idle), ['ok', 'ok', 'ok'], 'pass 1 (the new key added last): old values still open everywhere')
  await rollOut(`2026-11:${NEW},2026-10:${OLD}`)
  t.same(await everywhere(idle), ['ok', 'ok', 'ok'], 'pass 2 (the new key first): and still')
  const sealedNew = (await login(cluster.url)).token
  await sleep(1100)
  const res = await fetch(`${cluster.url}/feeds`, { headers: { cookie: `auth=${active}` }, signal: AbortSignal.timeout(5000) })
  const renewed = /^auth=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1] ?? ''
  t.ok(renewed !== '', 'an active user\'s next request renews the value, under the new key')

  await rollOut(`2026-11:${NEW}`)
  t.same(await everywhere(idle), ['invalid_token', 'invalid_token', 'invalid_token'], 'the old key removed: a value only it opens is refused by every server')
  t.same(await everywhere(renewed), ['ok', 'ok', 'ok'], 'the renewed value opens')
  t.same(await everywhere(sealedNew), ['ok', 'ok', 'ok'], 'and so does one sealed after pass 2')
})

t.test('npm start -- --mode cookie: serves, and Ctrl-C leaves nothing running', { timeout: 240_000 }, async (t) => {
  const port = await freePort()
  // Detached: npm leads a process group of its own, which the test signals as a terminal's Ctrl-C would.
  const npm = npmStartInGroup(t, ROOT, ['--mode', 'cookie', '--servers', '3', '--port', String(port)], { ...process.env, COOKIE_SECRET: undefined, COOKIE_SECRETS: undefined })
  const { group } = npm
  await waitForOutput(npm, 'Ctrl-C stops everything', 120_000)
  const output = npm.output()
  t.match(output, 'Cluster up in cookie mode: the whole session is in the cookie, encrypted')
  const url = `http://127.0.0.1:${port}`
  const { token } = await login(url)
  t.same(tally(await feedsTimes(url, token, 6)), { 'app-1': { 200: 2 }, 'app-2': { 200: 2 }, 'app-3': { 200: 2 } }, 'the key the launcher made is shared by every server')

  const children = descendants(group).filter((p) => p.cmdline.includes('balancer/server.ts') || p.cmdline.includes('services/server.ts'))
  t.equal(children.length, 4, 'the balancer and three servers are running')
  const ports = [port, ...[...output.matchAll(/app-\d +http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]))]
  t.equal(ports.length, 4)
  process.kill(-group, 'SIGINT')
  await npm.exited
  t.match(npm.output(), 'All stopped.')
  t.same(children.filter((p) => alive(p.pid)).map((p) => p.cmdline), [], 'every child has exited')
  for (const p of ports) t.ok(await portClosed(p), `nothing listens on ${p} any more`)
})
