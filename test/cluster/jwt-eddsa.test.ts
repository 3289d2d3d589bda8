import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { call, eventually, feedsTimes, login, tally, withCluster } from '../helpers/cluster.ts'

// jwt mode with --signing eddsa, as npm start runs it: an issuer process alone holds the private
// keys, the app servers hold only JWKS_URL, and the balancer routes the issuer's paths to it.

/** A process's environment as the kernel holds it: what the process was really given. */
function environOf (pid: number | undefined): Record<string, string> {
  if (pid === undefined) throw new Error('no pid: the process is not running')
  const entries = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((e) => e !== '')
  return Object.fromEntries(entries.map((e): [string, string] => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])
    // The test runner's own: tap's spawn hook adds these to every child of a test (they name the test file).
    .filter(([name]) => !name.startsWith('_TAPJS_PROCESSINFO_') && name !== 'NODE_OPTIONS'))
}

const KEY_MATERIAL = /-----BEGIN [A-Z ]*PRIVATE KEY-----|"d"\s*:\s*"[A-Za-z0-9_-]{43}"/

t.test('eddsa: the issuer signs, the app servers verify with its JWKS and hold nothing that could sign', async (t) => {
  const cluster = await withCluster(t, { mode: 'jwt', signing: 'eddsa', servers: 3 })
  t.same(cluster.issuers.map((i) => i.id), ['issuer-1'], 'the issuer is a named managed process')
  t.equal(cluster.jwtSecret, undefined, 'no shared secret was made at all')

  const logged = await call(`${cluster.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'wonderland' }) })
  t.equal(logged.status, 200)
  t.equal(logged.servedBy, 'issuer-1', 'the balancer sent /login to the issuer pool')
  t.match(logged.body, { tokenType: 'Bearer', mode: 'jwt', expiresIn: 300, refreshToken: /^[A-Za-z0-9_-]{43}$/ })
  const token = logged.body.token as string

  const answers = await feedsTimes(cluster.url, token, 30)
  t.same(tally(answers), { 'app-1': { 200: 10 }, 'app-2': { 200: 10 }, 'app-3': { 200: 10 } }, '30 reads: 30 x 200, 10 on each app server')

  const jwks = await call(`${cluster.url}/.well-known/jwks.json`)
  t.equal(jwks.servedBy, 'issuer-1')
  const keys = jwks.body.keys as Array<Record<string, unknown>>
  t.equal(keys.length, 1)
  for (const key of keys) {
    t.same(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'], 'public members only')
    t.match(key, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' })
  }
  t.notOk(JSON.stringify(jwks.body).includes('"d"'), 'never a private part')

  const refreshed = await call(`${cluster.url}/token/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: logged.body.refreshToken }) })
  t.equal(refreshed.status, 200, 'refresh through the balancer')
  t.equal(refreshed.servedBy, 'issuer-1')
  const reused = await call(`${cluster.url}/token/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: logged.body.refreshToken }) })
  t.same(reused.body, { error: 'unauthorized', reason: 'refresh_reused', servedBy: 'issuer-1' })

  const stats = (await call(`${cluster.url}/_balancer/stats`)).body as { pools: Record<string, { upstreams: Array<{ url: string }> }>, upstreams: Array<{ url: string }> }
  t.same(stats.pools.issuer?.upstreams.map((u) => u.url), cluster.issuers.map((i) => i.url), 'the issuer pool')
  t.same(stats.upstreams.map((u) => u.url), cluster.servers.map((s) => s.url), 'the default pool: the app servers')

  // What the real processes were given, read from the kernel.
  const keysDir = cluster.keysDir ?? ''
  const privateParts = readdirSync(keysDir).map((f) => (JSON.parse(readFileSync(join(keysDir, f), 'utf8')) as { d: string }).d)
  t.equal(privateParts.length, 1)
  t.equal((statSync(keysDir).mode & 0o777).toString(8), '700', 'the keys directory is its owner\'s alone')
  for (const server of cluster.servers) {
    const env = environOf(server.pid)
    t.equal(env.JWKS_URL, `${cluster.issuers[0]?.url ?? ''}/.well-known/jwks.json`, `${server.id}: told where the JWKS is`)
    for (const name of ['JWT_SECRET', 'JWT_SECRETS', 'JWT_SECRET_FILE', 'ISSUER_KEYS_DIR', 'REDIS_URL']) t.notOk(name in env, `${server.id}: no ${name}`)
    const values = Object.values(env)
    t.notOk(values.some((v) => v.includes(keysDir)), `${server.id}: nothing in its environment names the keys directory`)
    t.notOk(values.some((v) => privateParts.some((d) => v.includes(d))), `${server.id}: no private key in its environment`)
    // No value names a file that holds a key or a secret.
    const files = values.flatMap((v) => v.split(':')).filter((v) => v.startsWith('/') && existsSync(v) && statSync(v).isFile())
    for (const file of files) {
      const content = readFileSync(file, 'utf8')
      t.notMatch(content, KEY_MATERIAL, `${server.id}: ${file}, named in its environment, holds no private key`)
      t.notOk(privateParts.some((d) => content.includes(d)), `${server.id}: nor the issuer's`)
    }
    t.notOk(readFileSync(`/proc/${String(server.pid)}/cmdline`, 'utf8').includes(keysDir), `${server.id}: nor its command line`)
  }
  const issuerEnv = environOf(cluster.issuers[0]?.pid)
  t.equal(issuerEnv.ISSUER_KEYS_DIR, keysDir, 'the control: the issuer\'s environment, read the same way, does name the keys')

  await cluster.stop()
  t.notOk(existsSync(keysDir), 'stop removes the keys directory')
})

t.test('the issuer killed: reads go on, logins and refreshes are the balancer\'s 503 for the issuer pool within a second', async (t) => {
  const cluster = await withCluster(t, { mode: 'jwt', signing: 'eddsa', servers: 3 })
  const { token } = await login(cluster.url)
  const issuer = cluster.issuers[0]
  if (issuer === undefined) throw new Error('expected an issuer')
  const killedAt = performance.now()
  await issuer.kill()

  const attempts: Array<{ status: number, body: Record<string, unknown>, ms: number }> = []
  const answeredAs503 = await eventually(async () => {
    const answer = await call(`${cluster.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'wonderland' }) })
    attempts.push({ status: answer.status, body: answer.body, ms: answer.ms })
    return answer.status === 503
  }, 5000, 50)
  const toFirst503 = performance.now() - killedAt
  t.ok(answeredAs503, `logins become 503 (${attempts.map((a) => a.status).join(' ')})`)
  t.ok(toFirst503 < 1000, `within a second of the kill (${Math.round(toFirst503)} ms)`)
  t.ok(attempts.every((a) => a.ms < 1000), `every login answered within a second, none hung (${attempts.map((a) => Math.round(a.ms)).join(' ')} ms)`)
  // The first login after the crash can meet the connection the balancer could not open: its 502,
  // as for any POST it could not deliver (a body is never replayed); a refused connection takes the
  // issuer out at once, so from the next one on it is the 503 naming the pool. (A pooled connection
  // the crash reset is one more 502 at most: a reset alone does not take an upstream out.)
  const before = attempts.slice(0, -1)
  t.ok(before.length <= 2 && before.every((a) => a.status === 502 && ['ECONNREFUSED', 'UND_ERR_SOCKET', 'ECONNRESET'].includes(String(a.body.reason))), `at most two 502s before it (${JSON.stringify(before.map((a) => a.body))})`)
  t.same(attempts.at(-1)?.body, { error: 'no_healthy_upstream', pool: 'issuer' }, 'a 503 that says which pool has nobody')

  const reads = await feedsTimes(cluster.url, token, 30)
  t.same(tally(reads), { 'app-1': { 200: 10 }, 'app-2': { 200: 10 }, 'app-3': { 200: 10 } }, 'reads need no issuer: every app server verifies from its cached keys')
  const refresh = await call(`${cluster.url}/token/refresh`, { method: 'POST' })
  t.same({ status: refresh.status, body: refresh.body }, { status: 503, body: { error: 'no_healthy_upstream', pool: 'issuer' } })
  t.equal((await feedsTimes(cluster.url, token, 3)).filter((a) => a.status === 200).length, 3, 'reads still go on')

  await issuer.start()
  t.ok(await eventually(async () => (await call(`${cluster.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob', password: 'builder' }) })).status === 200, 5000, 100), 'the issuer back: logins again')
})
