import type { InjectOptions } from 'fastify'
import t from 'tap'
import { MODES, buildModeApp, isStateless, login, seededRandom, type Mode } from '../../helpers/service-app.ts'
import { startPostgres } from '../../helpers/postgres-server.ts'
import { startRedis } from '../../helpers/redis-server.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())
const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())
/** The store a mode's app is given: a private redis-server, or a database of its own on a private PostgreSQL. */
const storeFor = async (mode: Mode): Promise<string> => mode === 'postgres' ? await postgres.createDatabase() : redis.url

const REASONS = ['missing_token', 'unknown_session', 'expired', 'invalid_token', 'revoked']
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
// Printable ASCII without space: what can travel in a header as one token.
const PRINTABLE = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join('')
// What a cookie value can hold unquoted (RFC 6265 cookie-octet).
const COOKIE_SAFE = PRINTABLE.replace(/[",;\\]/g, '')

/**
 * Deterministic mutations of a real credential and random strings: a fixed seed, so a
 * failure names a case that the next run reproduces.
 */
function fuzzCases (seed: number, real: string, count: number, charset: string): string[] {
  const random = seededRandom(seed)
  const int = (n: number): number => Math.floor(random() * n)
  const pick = (chars: string): string => chars[int(chars.length)] ?? 'A'
  const randomString = (chars: string, length: number): string => Array.from({ length }, () => pick(chars)).join('')
  const segments = real.split('.')

  const mutators: Array<() => string> = [
    () => { const i = int(real.length); return real.slice(0, i) + pick(BASE64URL) + real.slice(i + 1) }, // replace one char
    () => { const i = int(real.length); return real.slice(0, i) + pick(charset) + real.slice(i) }, // insert one char
    () => { const i = int(real.length); return real.slice(0, i) + real.slice(i + 1) }, // delete one char
    () => real.slice(0, int(real.length)), // truncate
    () => real + randomString(BASE64URL, 1 + int(8)), // extend
    () => real.split('').reverse().join(''),
    () => randomString(BASE64URL, 43), // a plausible session id
    () => randomString(charset, 1 + int(200)),
    () => `${randomString(BASE64URL, 20 + int(40))}.${randomString(BASE64URL, 40 + int(80))}.${randomString(BASE64URL, 43)}`, // a plausible JWT
    () => segments.length === 3 ? `${segments[0] ?? ''}.${randomString(BASE64URL, 60)}.${segments[2] ?? ''}` : randomString(BASE64URL, 44),
    () => Array.from({ length: 1 + int(6) }, () => randomString(BASE64URL, int(30))).join('.'),
    () => randomString(BASE64URL, 4000 + int(2000))
  ]
  const cases: string[] = []
  while (cases.length < count) {
    const mutator = mutators[int(mutators.length)] ?? mutators[0]
    const candidate = mutator?.() ?? ''
    // The mutation must change the credential, and a header value cannot end in a space.
    if (candidate !== real && candidate.trim() === candidate && candidate !== '') cases.push(candidate)
  }
  return cases
}

for (const [index, mode] of MODES.entries()) {
  t.test(`${mode} mode: a few hundred random and mutated credentials are all refused with a 401 and a reason`, async (t) => {
    const app = await buildModeApp(t, mode, await storeFor(mode))
    const { token } = await login(app)
    const unexpected: string[] = []
    const reasons = new Map<string, number>()

    const check = async (how: string, value: string, request: InjectOptions): Promise<void> => {
      const res = await app.inject(request)
      let reason: unknown
      try {
        reason = res.json().reason
      } catch {
        reason = undefined
      }
      if (res.statusCode !== 401 || typeof reason !== 'string' || !REASONS.includes(reason)) {
        unexpected.push(`${how} ${JSON.stringify(value.slice(0, 120))} -> ${res.statusCode} ${res.body.slice(0, 120)}`)
      } else {
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
      }
    }

    const bearers = fuzzCases(1000 + index, token, 300, PRINTABLE)
    for (const value of bearers) await check('Bearer', value, { method: 'GET', url: '/feeds', headers: { authorization: `Bearer ${value}` } })
    const cookies = fuzzCases(2000 + index, token, 200, COOKIE_SAFE)
    for (const value of cookies) await check('cookie', value, { method: 'GET', url: '/getFeeds', headers: { cookie: `auth=${value}` } })
    const headers = fuzzCases(3000 + index, `Bearer ${token}`, 100, PRINTABLE)
    for (const value of headers) await check('Authorization', value, { method: 'GET', url: '/feeds', headers: { authorization: value } })

    t.same(unexpected, [], `all ${bearers.length + cookies.length + headers.length} refused with a 401 and a known reason`)
    t.ok((reasons.get('invalid_token') ?? 0) > 0, 'many are malformed')
    if (!isStateless(mode)) t.ok((reasons.get('unknown_session') ?? 0) > 0, 'and well-formed unknown ids were looked up')
    t.comment(`${mode}: ${JSON.stringify(Object.fromEntries(reasons))}`)
    t.equal((await app.inject({ method: 'GET', url: '/feeds', headers: { authorization: `Bearer ${token}` } })).statusCode, 200,
      'the real credential still works afterwards')
  })
}

t.test('the same seed gives the same cases', async (t) => {
  t.same(fuzzCases(7, 'a.b.c', 20, PRINTABLE), fuzzCases(7, 'a.b.c', 20, PRINTABLE))
  t.notSame(fuzzCases(7, 'a.b.c', 20, PRINTABLE), fuzzCases(8, 'a.b.c', 20, PRINTABLE))
})
