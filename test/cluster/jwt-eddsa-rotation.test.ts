import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { call, eventually, withCluster } from '../helpers/cluster.ts'

// A key rotation with no restart of any app server, under load: the issuers publish a new key,
// sign with it once every app server can have fetched it, and retire the old one once its last
// token has expired. Times are shrunk so the test takes seconds: the app servers fetch the JWKS
// every 3 s (long enough that a key signing before they have it is surely refused: a rotation
// that signs at once fails this test), access tokens live 4 s, clocks may disagree by 1 s.

const JWKS_REFRESH = 3
const ACCESS_TTL = 4
const TOLERANCE = 1
const JSON_HEADERS = { 'content-type': 'application/json' }

interface Tally { ok: number, refused: Array<{ what: string, status: number, body: unknown }> }

/** One client of the load: logs in, reads, refreshes its tokens before they expire, until told to stop. */
async function client (url: string, user: [string, string], stop: { now: boolean }, tally: Tally, kids: Set<string>): Promise<void> {
  const record = (what: string, answer: { status: number, body: unknown }): boolean => {
    if (answer.status === 200) tally.ok++
    else tally.refused.push({ what, ...answer })
    return answer.status === 200
  }
  const logged = await call(`${url}/login`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ username: user[0], password: user[1] }) })
  if (!record('login', logged)) return
  let { token, refreshToken } = logged.body as { token: string, refreshToken: string }
  let refreshedAt = Date.now()
  while (!stop.now) {
    kids.add(JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).kid as string)
    record('read', await call(`${url}/feeds`, { headers: { authorization: `Bearer ${token}` } }))
    // Well before ACCESS_TTL: a client that keeps its tokens fresh is never refused.
    if (Date.now() - refreshedAt > 1500) {
      const refreshed = await call(`${url}/token/refresh`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ refreshToken }) })
      if (!record('refresh', refreshed)) return
      ;({ token, refreshToken } = refreshed.body as { token: string, refreshToken: string })
      refreshedAt = Date.now()
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** An access token signed with a key the test read from the keys directory: fresh, right in every claim. */
function signedWith (key: KeyObject, kid: string): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const input = `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid })}.${b64({ sub: 'carol', jti: randomBytes(16).toString('base64url'), iss: 'auth-cluster', aud: 'auth-cluster-api', iat: now, exp: now + 60 })}`
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`
}

t.test('rotateIssuerKey under load: no request refused; after retirement the old key\'s tokens are', { timeout: 120_000 }, async (t) => {
  const cluster = await withCluster(t, {
    mode: 'jwt',
    signing: 'eddsa',
    servers: 3,
    issuers: 2,
    serverEnv: { JWKS_REFRESH_SECONDS: String(JWKS_REFRESH), JWT_CLOCK_TOLERANCE_SECONDS: String(TOLERANCE) },
    issuerEnv: { ACCESS_TTL_SECONDS: String(ACCESS_TTL), JWT_CLOCK_TOLERANCE_SECONDS: String(TOLERANCE) }
  })
  const keysDir = cluster.keysDir ?? ''
  const [oldFile = ''] = readdirSync(keysDir)
  const oldJwk = JSON.parse(readFileSync(join(keysDir, oldFile), 'utf8')) as { kid: string, x: string, d: string }
  const oldKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: oldJwk.x, d: oldJwk.d }, format: 'jwk' })
  const reads = async (token: string): Promise<number[]> => await Promise.all(cluster.servers.map(async (s) => (await call(`${s.url}/feeds`, { headers: { authorization: `Bearer ${token}` } })).status))

  const pids = [...cluster.servers, ...cluster.issuers].map((p) => p.pid)
  const stop = { now: false }
  const tally: Tally = { ok: 0, refused: [] }
  const kids = new Set<string>()
  const users: Array<[string, string]> = [['alice', 'wonderland'], ['bob', 'builder'], ['carol', 'lighthouse']]
  const load = Promise.all(Array.from({ length: 6 }, async (_, i) => await client(cluster.url, users[i % 3] as [string, string], stop, tally, kids)))

  await new Promise((resolve) => setTimeout(resolve, 1000))
  const rotation = await cluster.rotateIssuerKey()
  t.not(rotation.kid, oldJwk.kid)
  const delay = rotation.signFrom - Date.now()
  t.ok(delay >= 5000 && delay <= 7000, `signing in ${delay} ms: a rescan, the app servers' refresh, a fetch and the tolerance (1 + 3 + 1 + 1 s)`)
  t.ok(await eventually(async () => ((await call(`${cluster.url}/.well-known/jwks.json`)).body.keys as Array<{ kid: string }>).length === 2, 2000), 'published at once: the JWKS holds both')
  for (const issuer of cluster.issuers) t.equal((await call(`${issuer.url}/health`)).body.signing, oldJwk.kid, `${issuer.id}: still signing with the old key`)

  t.ok(await eventually(async () => kids.has(rotation.kid), 10_000, 100), 'after signFrom, the load\'s tokens come signed with the new key')
  const beforeRetirement = signedWith(oldKey, oldJwk.kid)
  t.same(await reads(beforeRetirement), [200, 200, 200], 'the control: a token with the old key still passes everywhere before retirement')

  // Retired ACCESS_TTL + tolerance after the new key began; then every app server's next refresh drops it.
  const retiredAt = rotation.signFrom + (ACCESS_TTL + TOLERANCE) * 1000
  t.ok(await eventually(async () => Date.now() > retiredAt && ((await call(`${cluster.url}/.well-known/jwks.json`)).body.keys as Array<{ kid: string }>).every((k) => k.kid === rotation.kid), 15_000, 100), 'the old key leaves the JWKS')
  t.ok(await eventually(async () => !existsSync(join(keysDir, oldFile)), 3000), 'and its file is deleted: no private key kept for nothing')
  stop.now = true
  await load
  t.same(tally.refused, [], `no request refused during the rotation (${tally.ok} answered 200; kids seen: ${kids.size})`)
  t.ok(tally.ok > 200, 'under load')

  t.ok(await eventually(async () => (await reads(signedWith(oldKey, oldJwk.kid))).every((s) => s === 401), (JWKS_REFRESH + 2) * 1000), 'after retirement a token signed with the old key is refused by every app server (at their next refresh)')
  const refused = await call(`${cluster.servers[0]?.url ?? ''}/feeds`, { headers: { authorization: `Bearer ${signedWith(oldKey, oldJwk.kid)}` } })
  t.same(refused.body, { error: 'unauthorized', reason: 'invalid_token', servedBy: 'app-1' })
  t.same([...cluster.servers, ...cluster.issuers].map((p) => p.pid), pids, 'and no process was restarted')
})
