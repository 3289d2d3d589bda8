// `npm run test:docker`'s checks of jwt mode with JWT_SIGNING=eddsa (scripts/test-docker.ts runs
// them once the stack is up in that mode): the issuer answers the issuer's paths through the
// balancer, the app servers verify with its JWKS and are given nothing that could sign, the
// keys live in a volume only the issuer services mount, and a rotation done as docker-compose.yml
// says (a key added by issuer-keygen, a SIGHUP) is followed with no restart.
import { activationDelaySeconds } from '../../services/issuer/keys.ts'
import { check, http, run, type Run } from './smoke.ts'

export interface EddsaSmokeContext {
  compose: (args: string[], options?: { timeoutMs?: number, echo?: boolean }) => Promise<Run>
  balancerUrl: string
  image: string
  project: string
}

const JSON_HEADERS = { 'content-type': 'application/json' }
const KEYS_MOUNT = '/var/lib/auth-cluster-issuer'

export async function checkEddsa (ctx: EddsaSmokeContext): Promise<void> {
  const { balancerUrl: url } = ctx
  const login = await http(`${url}/login`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ username: 'bob', password: 'builder' }) })
  const header = JSON.parse(Buffer.from(String(login.body.token ?? '').split('.')[0] ?? '', 'base64url').toString() || '{}') as { alg?: string, kid?: string }
  check('[jwt-eddsa] /login is the issuer\'s: an EdDSA access token, a refresh token, its cookie for /token only',
    login.status === 200 && login.servedBy === 'issuer-1' && header.alg === 'EdDSA' && typeof login.body.refreshToken === 'string' &&
      login.headers.getSetCookie().some((c) => c.startsWith('refresh=') && /Path=\/token/i.test(c) && /HttpOnly/i.test(c)),
    `${login.status} ${login.servedBy} ${JSON.stringify(header)} ${login.headers.getSetCookie().join(' | ')}`)

  const jwks = await http(`${url}/.well-known/jwks.json`)
  const keys = (jwks.body.keys ?? []) as Array<Record<string, unknown>>
  check('[jwt-eddsa] GET /.well-known/jwks.json through the balancer: Ed25519 public keys only',
    jwks.status === 200 && keys.length >= 1 && keys.every((k) => k.kty === 'OKP' && k.crv === 'Ed25519' && k.alg === 'EdDSA' && !('d' in k)),
    `${jwks.status} ${JSON.stringify(jwks.body)}`)

  const refreshToken = String(login.body.refreshToken ?? '')
  const refreshed = await http(`${url}/token/refresh`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ refreshToken }) })
  const reused = await http(`${url}/token/refresh`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ refreshToken }) })
  check('[jwt-eddsa] POST /token/refresh gives a new pair; the old refresh token again is refresh_reused',
    refreshed.status === 200 && reused.status === 401 && reused.body.reason === 'refresh_reused', `${refreshed.status} then ${reused.status} ${JSON.stringify(reused.body)}`)

  // What the app containers were given, and what they mount.
  const given: string[] = []
  for (const service of ['app', 'app-2', 'app-3']) {
    const id = (await ctx.compose(['ps', '-q', service], { echo: false })).stdout.trim()
    const inspected = await run('docker', ['inspect', '--format', '{{json .Config.Env}} {{json .Mounts}}', id], { echo: false })
    given.push(`${service}: ${inspected.stdout.trim()}`)
  }
  const leaks = given.filter((line) => /"(JWT_SECRETS?=[^"]+|ISSUER_KEYS_DIR=[^"]*)"/.test(line) || line.includes('issuer-keys'))
  check('[jwt-eddsa] no app container is given a secret, the keys directory or the keys volume', given.length === 3 && leaks.length === 0, leaks.join('\n    '))

  const files = await run('docker', ['run', '--rm', '--network', 'none', '-v', `${ctx.project}_issuer-keys:/k:ro`, ctx.image, 'sh', '-c', 'stat -c "%U %a %n" /k/*.json'], { echo: false, timeoutMs: 60_000 })
  check('[jwt-eddsa] issuer-keygen made the key in its volume, owned by node, mode 600', files.code === 0 && /^node 600 \/k\/[A-Za-z0-9_-]{43}\.json$/m.test(files.stdout), `${files.stdout}${files.stderr}`)

  const refused = await run('docker', ['run', '--rm', '--network', 'none', '-e', 'AUTH_MODE=jwt', '-e', 'JWT_SIGNING=eddsa', '-e', 'JWKS_URL=http://issuer:3100/.well-known/jwks.json', '-e', 'JWT_SECRET=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', ctx.image], { echo: false, timeoutMs: 60_000 })
  check('[jwt-eddsa] an app server given a secret in eddsa mode refuses to start, naming it', refused.code === 1 && /JWT_SECRET is set, but with JWT_SIGNING=eddsa an app server holds no secret/.test(refused.stderr), `exit ${refused.code}: ${refused.stderr.trim()}`)

  // A rotation as docker-compose.yml says: a key added by issuer-keygen, then SIGHUP. The smoke
  // run's app servers refresh the JWKS every 2 s (JWKS_REFRESH_SECONDS in its env file).
  const before = (keys[0]?.kid as string | undefined) ?? ''
  const delay = activationDelaySeconds(2, 5)
  const rotate = await ctx.compose(['run', '--rm', '--no-deps', 'issuer-keygen', 'node', 'scripts/make-issuer-key.ts', KEYS_MOUNT, '--rotate', '--activate-in', String(delay)], { timeoutMs: 120_000 })
  const hup = await ctx.compose(['kill', '-s', 'SIGHUP', 'issuer'], { timeoutMs: 60_000 })
  const published = ((await http(`${url}/.well-known/jwks.json`)).body.keys ?? []) as Array<{ kid: string }>
  check('[jwt-eddsa] a rotation (issuer-keygen --rotate, then SIGHUP): the new key is published at once beside the old',
    rotate.code === 0 && hup.code === 0 && published.length === 2 && published.some((k) => k.kid === before), `${rotate.stdout}${rotate.stderr}${hup.stderr} keys: ${published.map((k) => k.kid).join(' ')}`)
  await new Promise((resolve) => setTimeout(resolve, (delay + 1) * 1000))
  const after = await http(`${url}/login`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ username: 'carol', password: 'lighthouse' }) })
  const kid = (JSON.parse(Buffer.from(String(after.body.token ?? '').split('.')[0] ?? '', 'base64url').toString() || '{}') as { kid?: string }).kid
  const reads: number[] = []
  for (let i = 0; i < 6; i++) reads.push((await http(`${url}/feeds`, { headers: { authorization: `Bearer ${String(after.body.token ?? '')}` } })).status)
  check('[jwt-eddsa] after its activation the new key signs, and every app server accepts its tokens with no restart',
    kid !== undefined && kid !== before && published.some((k) => k.kid === kid) && reads.every((s) => s === 200), `kid ${String(kid)} (was ${before}), reads: ${reads.join(' ')}`)
}
