import { randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { MAX_COOKIE_LENGTH, SEALED_LAYOUT, cookieValueBytes, shapeProblem } from '../../../services/auth/cookie.ts'
import { buildModeApp, feedsWithBearer, feedsWithCookie, login } from '../../helpers/service-app.ts'
import { cookieForgeries, flipBit, regions, truncated, withBytes } from '../../helpers/cookie-forge.ts'

// A whole second, so that login times are exact: values carry their times in seconds.
const T0 = 1_800_000_000_000
const OLD = randomBytes(48).toString('base64')
const NEW = randomBytes(48).toString('base64')

/** A clock the test moves; every app built with it reads the same time. */
function clock (start = T0): { now: () => number, advance: (seconds: number) => void, set: (ms: number) => void } {
  let at = start
  return { now: () => at, advance: (seconds) => { at += seconds * 1000 }, set: (ms) => { at = ms } }
}

async function cookieApp (t: Parameters<typeof buildModeApp>[0], env: Record<string, string> = {}, now = clock().now): Promise<FastifyInstance> {
  return await buildModeApp(t, 'cookie', undefined, env, { now })
}

/** The auth cookie a response sets, if any: its value and attributes. */
function setAuthCookie (res: LightMyRequestResponse): { value: string, maxAge?: number, httpOnly?: boolean, sameSite?: string, expires?: Date } | undefined {
  return res.cookies.find((c) => c.name === 'auth') as ReturnType<typeof setAuthCookie>
}

t.test('the value is opaque: neither the user, nor the password, nor any of its times, in any decoding', async (t) => {
  const app = await cookieApp(t, { SESSION_TTL_SECONDS: '3600', SESSION_IDLE_SECONDS: '900' })
  const { token, cookie, response } = await login(app, 'carol', 'lighthouse')
  t.match(response.json(), { tokenType: 'Bearer', mode: 'cookie', expiresIn: 3600 })
  t.equal(cookie, token, 'the cookie carries the same value as the JSON')
  t.match(setAuthCookie(response), { httpOnly: true, sameSite: 'Lax', maxAge: 3600 })
  t.match(token, /^[A-Za-z0-9_-]+$/, 'base64url: a cookie-octet, so no cookie encoding changes it')

  const seconds = T0 / 1000
  const times = [seconds + 3600, seconds + 900, seconds, T0 + 3_600_000, T0 + 900_000, T0]
  const raw = Buffer.from(token, 'base64url')
  const decodings: Record<string, Buffer> = {
    'the value as sent': Buffer.from(token),
    'base64url-decoded': raw,
    'base64-decoded': Buffer.from(token, 'base64'),
    'base64url-decoded from each offset': Buffer.concat([1, 2, 3].map((skip) => Buffer.from(token.slice(skip), 'base64url')))
  }
  for (const [name, bytes] of Object.entries(decodings)) {
    for (const text of ['carol', 'lighthouse']) {
      t.equal(bytes.indexOf(Buffer.from(text)), -1, `${name}: no "${text}"`)
      t.notMatch(bytes.toString('latin1').toLowerCase(), text, `${name}: nor in any case`)
    }
    for (const time of times) {
      const forms = [Buffer.from(String(time)), Buffer.from(time.toString(16))]
      if (time < 2 ** 32) {
        const be = Buffer.alloc(4)
        be.writeUInt32BE(time)
        forms.push(be, Buffer.from(be).reverse())
      } else {
        const be = Buffer.alloc(6)
        be.writeUIntBE(time, 0, 6)
        forms.push(be, Buffer.from(be).reverse())
      }
      t.ok(forms.every((form) => bytes.indexOf(form) === -1), `${name}: not ${time} as text, hex, or 4/6 bytes either way round`)
    }
  }
  t.equal(raw.length, SEALED_LAYOUT.versionBytes + SEALED_LAYOUT.keyIdBytes + SEALED_LAYOUT.nonceBytes + 16 + SEALED_LAYOUT.tagBytes, 'version, key id, nonce, one 16-byte block, tag')
  t.equal(raw[0], SEALED_LAYOUT.version, 'only the format version is plain')

  // Padded to 16-byte blocks: the length says which block count, not which name.
  const lengths = await Promise.all([['alice', 'wonderland'], ['bob', 'builder']].map(async ([u, p]) => (await login(app, u, p)).token.length))
  t.same(lengths, [token.length, token.length], 'bob\'s, alice\'s and carol\'s values are the same length')
})

t.test('cookieValueBytes: the bytes a client sends on every request, as login makes them', async (t) => {
  const app = await cookieApp(t)
  for (const [user, password] of [['alice', 'wonderland'], ['bob', 'builder'], ['carol', 'lighthouse']] as const) {
    t.equal(cookieValueBytes(user), Buffer.byteLength((await login(app, user, password)).token), user)
  }
  t.equal(cookieValueBytes('alice'), 66, 'a short name: 49 bytes, 66 characters of base64url')
  t.equal(cookieValueBytes('a'.repeat(8)), 87, 'a name past 7 bytes takes another block: 65 bytes, 87 characters')
  t.ok(cookieValueBytes('é'.repeat(64)) <= MAX_COOKIE_LENGTH, 'the longest name a login accepts fits the limit')
})

t.test('any server with the key accepts it, as a Bearer header or the cookie; a server with another key refuses it', async (t) => {
  const now = clock().now
  const one = await cookieApp(t, { SERVER_ID: 'one' }, now)
  const two = await cookieApp(t, { SERVER_ID: 'two' }, now)
  const stranger = await cookieApp(t, { SERVER_ID: 'stranger', COOKIE_SECRET: randomBytes(48).toString('base64') }, now)
  const { token } = await login(one)
  t.match((await feedsWithBearer(two, token)).json(), { servedBy: 'two', user: 'alice' }, 'no shared store needed')
  t.match((await feedsWithCookie(two, token)).json(), { servedBy: 'two', user: 'alice' })
  const refused = await feedsWithBearer(stranger, token)
  t.equal(refused.statusCode, 401)
  t.same(refused.json(), { error: 'unauthorized', reason: 'invalid_token', servedBy: 'stranger' })
  t.equal((await feedsWithCookie(stranger, token)).json().reason, 'invalid_token')
})

t.test('each login seals a new value: nothing repeats between two values for the same user at the same moment', async (t) => {
  const app = await cookieApp(t)
  const a = Buffer.from((await login(app)).token, 'base64url')
  const b = Buffer.from((await login(app)).token, 'base64url')
  const r = regions(a.toString('base64url'))
  t.ok(a.subarray(0, r.keyId[1]).equals(b.subarray(0, r.keyId[1])), 'the same version and key id')
  t.notOk(a.subarray(...r.nonce).equals(b.subarray(...r.nonce)), 'a fresh random nonce')
  t.notOk(a.subarray(r.ciphertext[0]).equals(b.subarray(r.ciphertext[0])), 'so the same plaintext seals to another ciphertext')
})

t.test('the absolute timeout: SESSION_TTL_SECONDS after login, however often the value is used', async (t) => {
  const time = clock()
  const app = await cookieApp(t, { SESSION_TTL_SECONDS: '3600', SESSION_IDLE_SECONDS: '900' }, time.now)
  let { token } = await login(app)
  // Used every 800 s: the idle timeout never strikes, the absolute one does.
  for (let elapsed = 800; elapsed < 3600; elapsed += 800) {
    time.set(T0 + elapsed * 1000)
    const res = await feedsWithCookie(app, token)
    t.equal(res.statusCode, 200, `used at ${elapsed} s: accepted`)
    const renewed = setAuthCookie(res)
    t.match(renewed, { httpOnly: true, sameSite: 'Lax', maxAge: 3600 - elapsed }, `and renewed, the cookie living only until the absolute end (${3600 - elapsed} s)`)
    token = renewed?.value ?? token
  }
  time.set(T0 + 3_599_999)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'a millisecond before the end: accepted')
  time.set(T0 + 3_600_000)
  const expired = await feedsWithBearer(app, token)
  t.same([expired.statusCode, expired.json().reason], [401, 'expired'], 'at SESSION_TTL_SECONDS: 401 expired, though used 400 s ago')
  t.match(expired.headers['www-authenticate'], 'error_description="expired"')
  t.equal(setAuthCookie(expired), undefined, 'and nothing renewed')
})

t.test('the idle timeout: a value unused for SESSION_IDLE_SECONDS is expired; use slides it, renewing the cookie', async (t) => {
  const time = clock()
  const app = await cookieApp(t, { SESSION_TTL_SECONDS: '3600', SESSION_IDLE_SECONDS: '900' }, time.now)
  const { token } = await login(app)
  time.set(T0 + 899_999)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, '899.999 s unused: accepted')
  time.set(T0 + 900_000)
  t.same((await feedsWithBearer(app, token)).json().reason, 'expired', '900 s unused: expired')

  const fresh = (await login(app)).token
  time.set(T0 + 900_000)
  const same = await feedsWithCookie(app, fresh)
  t.equal(setAuthCookie(same), undefined, 'used in the second it was sealed: not renewed (it would change nothing)')
  time.set(T0 + 901_000)
  const renewed = setAuthCookie(await feedsWithCookie(app, fresh))
  t.ok(renewed !== undefined, 'a second later: renewed')
  const next = renewed?.value ?? ''
  t.not(next, fresh)
  time.set(T0 + 900_000 + 900_000 - 1)
  t.equal((await feedsWithBearer(app, fresh)).statusCode, 200, 'the old value still works until its own idle end: renewing revokes nothing')
  time.set(T0 + 900_000 + 900_000)
  t.equal((await feedsWithBearer(app, fresh)).json().reason, 'expired', 'and then it ends')
  time.set(T0 + 901_000 + 900_000 - 1)
  t.equal((await feedsWithBearer(app, next)).statusCode, 200, 'the renewed one ends SESSION_IDLE_SECONDS after its renewal')
  time.set(T0 + 901_000 + 900_000)
  t.equal((await feedsWithBearer(app, next)).json().reason, 'expired')
})

t.test('near the absolute end, renewing would not move the end: no Set-Cookie', async (t) => {
  const time = clock()
  const app = await cookieApp(t, { SESSION_TTL_SECONDS: '1000', SESSION_IDLE_SECONDS: '900' }, time.now)
  const { token } = await login(app)
  time.advance(200)
  const renewed = setAuthCookie(await feedsWithCookie(app, token))
  t.match(renewed, { maxAge: 800 }, 'at 200 s: renewed, its idle end now the absolute one')
  time.advance(100)
  t.equal(setAuthCookie(await feedsWithCookie(app, renewed?.value ?? '')), undefined, 'at 300 s: nothing to slide')
})

t.test('a replayed expired value stays expired on every server, whatever its cookie says', async (t) => {
  const time = clock()
  const one = await cookieApp(t, { SERVER_ID: 'one', SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '60' }, time.now)
  const other = await cookieApp(t, { SERVER_ID: 'other', SESSION_TTL_SECONDS: '3600', SESSION_IDLE_SECONDS: '3600' }, time.now)
  const { token } = await login(one)
  time.advance(61)
  for (const app of [one, other]) {
    for (const send of [feedsWithBearer, feedsWithCookie]) {
      const res = await send(app, token)
      t.same([res.statusCode, res.json().reason], [401, 'expired'], `${res.json().servedBy as string}, ${send.name}: the ends were sealed in at login, not read from this server's settings`)
    }
  }
})

t.test('logout clears the cookie, but cannot take the value back: it works until it expires', async (t) => {
  const time = clock()
  const app = await cookieApp(t, { SESSION_IDLE_SECONDS: '900' }, time.now)
  const { token } = await login(app)
  const out = await app.inject({ method: 'POST', url: '/logout', cookies: { auth: token } })
  t.equal(out.statusCode, 204)
  const cleared = setAuthCookie(out)
  t.equal(cleared?.value, '', 'the browser is told to drop the cookie')
  t.ok(cleared?.expires !== undefined && cleared.expires.getTime() <= Date.now(), 'with an expiry in the past')
  t.match((await feedsWithCookie(app, token)).json(), { user: 'alice' }, 'the value itself still works (cookie)')
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'and as a Bearer header: a copy taken before logout works on')
  time.advance(900)
  t.equal((await feedsWithBearer(app, token)).json().reason, 'expired', 'until its idle end')
})

t.test('key rotation: COOKIE_SECRETS seals with the first key and opens with every one listed', async (t) => {
  const now = clock().now
  const before = await cookieApp(t, { COOKIE_SECRETS: `2026-10:${OLD}`, SERVER_ID: 'before' }, now)
  const pass1 = await cookieApp(t, { COOKIE_SECRETS: `2026-10:${OLD},2026-11:${NEW}`, SERVER_ID: 'pass1' }, now)
  const pass2 = await cookieApp(t, { COOKIE_SECRETS: `2026-11:${NEW},2026-10:${OLD}`, SERVER_ID: 'pass2' }, now)
  const after = await cookieApp(t, { COOKIE_SECRETS: `2026-11:${NEW}`, SERVER_ID: 'after' }, now)
  const old = (await login(before)).token
  const sealedByPass1 = (await login(pass1)).token
  const sealedByPass2 = (await login(pass2)).token
  const status = async (app: FastifyInstance, token: string): Promise<string> => {
    const res = await feedsWithBearer(app, token)
    return res.statusCode === 200 ? 'ok' : String(res.json().reason)
  }
  t.same(await Promise.all([before, pass1, pass2, after].map(async (app) => await status(app, old))), ['ok', 'ok', 'ok', 'invalid_token'], 'an old value: accepted while its key is listed, refused once it is removed')
  t.same(await Promise.all([before, pass1, pass2, after].map(async (app) => await status(app, sealedByPass1))), ['ok', 'ok', 'ok', 'invalid_token'], 'pass 1 still seals with the old key: every server accepts its values')
  t.same(await Promise.all([before, pass1, pass2, after].map(async (app) => await status(app, sealedByPass2))), ['invalid_token', 'ok', 'ok', 'ok'], 'pass 2 seals with the new key: a server not yet given it refuses them')

  const single = await cookieApp(t, { COOKIE_SECRET: OLD, SERVER_ID: 'single' }, now)
  const listed = await cookieApp(t, { COOKIE_SECRETS: `default:${OLD}`, SERVER_ID: 'listed' }, now)
  t.equal(await status(listed, (await login(single)).token), 'ok', 'COOKIE_SECRET=s is COOKIE_SECRETS=default:s')
  t.equal(await status(single, (await login(listed)).token), 'ok', 'both ways')
  const renamed = await cookieApp(t, { COOKIE_SECRETS: `renamed:${OLD}`, SERVER_ID: 'renamed' }, now)
  t.equal(await status(renamed, old), 'ok', 'the key id comes from the key itself, not its name: renaming a kid refuses nobody')
})

t.test('renewing re-seals with the first key: a rotation moves active users to the new key as they come', async (t) => {
  const time = clock()
  const before = await cookieApp(t, { COOKIE_SECRETS: `2026-10:${OLD}`, SERVER_ID: 'before' }, time.now)
  const pass2 = await cookieApp(t, { COOKIE_SECRETS: `2026-11:${NEW},2026-10:${OLD}`, SERVER_ID: 'pass2' }, time.now)
  const after = await cookieApp(t, { COOKIE_SECRETS: `2026-11:${NEW}`, SERVER_ID: 'after' }, time.now)
  const old = (await login(before)).token
  time.advance(5)
  const renewed = setAuthCookie(await feedsWithCookie(pass2, old))?.value ?? ''
  t.equal((await feedsWithBearer(after, renewed)).statusCode, 200, 'the renewed value opens where only the new key is left')
  t.equal((await feedsWithBearer(after, old)).json().reason, 'invalid_token', 'the one it replaced does not')
})

t.test('a server refuses to start with one secret under two names: its values would carry two key ids for one key', async (t) => {
  await t.rejects(cookieApp(t, { COOKIE_SECRETS: `a:${OLD},b:${OLD}` }), /COOKIE_SECRETS: the keys "a" and "b" are the same secret/)
})

t.test('every changed byte, every truncation, every forgery of a real value is 401 invalid_token, never a 5xx', async (t) => {
  const app = await cookieApp(t)
  const { token } = await login(app)
  const bytes = Buffer.from(token, 'base64url')
  const refusedAs = async (value: string): Promise<string> => {
    const [bearer, cookie] = await Promise.all([feedsWithBearer(app, value), feedsWithCookie(app, value)])
    return `${bearer.statusCode} ${String(bearer.json().reason)} / ${cookie.statusCode} ${String(cookie.json().reason)}`
  }
  const INVALID = '401 invalid_token / 401 invalid_token'

  const flips: string[] = []
  for (let byte = 0; byte < bytes.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const answer = await refusedAs(flipBit(token, byte, bit))
      if (answer !== INVALID) flips.push(`byte ${byte} bit ${bit}: ${answer}`)
    }
  }
  t.same(flips, [], `each of the ${bytes.length * 8} single-bit changes, in version, key id, nonce, ciphertext and tag: invalid_token`)

  const cuts: string[] = []
  for (let length = 1; length < bytes.length; length++) {
    const answer = await refusedAs(truncated(token, length))
    if (answer !== INVALID) cuts.push(`${length} bytes: ${answer}`)
  }
  t.same(cuts, [], `each of the ${bytes.length - 1} truncations: invalid_token`)

  for (const [name, forged] of Object.entries(cookieForgeries(token))) {
    t.equal(await refusedAs(forged), INVALID, name)
  }
  t.equal(await refusedAs(token), '200 undefined / 200 undefined', 'and the value itself passes: the refusals are about the changes')
})

t.test('a value whose key id names another configured key does not open with it', async (t) => {
  const app = await cookieApp(t, { COOKIE_SECRETS: `new:${NEW},old:${OLD}` })
  const sealedWithNew = (await login(app)).token
  const other = await cookieApp(t, { COOKIE_SECRETS: `old:${OLD}`, SERVER_ID: 'other' })
  const sealedWithOld = (await login(other)).token
  const r = regions(sealedWithNew)
  const oldKeyId = Buffer.from(sealedWithOld, 'base64url').subarray(...r.keyId)
  const relabelled = withBytes(sealedWithNew, r.keyId[0], oldKeyId)
  t.not(relabelled, sealedWithNew)
  t.equal((await feedsWithBearer(app, relabelled)).json().reason, 'invalid_token', 'the key id is authenticated with the rest (additional data): changed, the tag fails')
})

t.test('shape first: a value that could never be ours is refused before any decryption', async (t) => {
  const app = await cookieApp(t)
  const { token } = await login(app)
  t.equal(shapeProblem(token), undefined, 'a real value has the shape')
  t.equal(shapeProblem('A'.repeat(MAX_COOKIE_LENGTH + 1)), 'too_long', `past ${MAX_COOKIE_LENGTH} characters, however well formed`)
  t.equal(shapeProblem(`${token}${'A'.repeat(MAX_COOKIE_LENGTH)}`), 'too_long')
  t.equal(shapeProblem(`${token}=`), 'not_base64url')
  t.equal(shapeProblem(Buffer.from(token, 'base64url').toString('base64').replace(/=+$/, '') + '+'), 'not_base64url')
  t.equal(shapeProblem(truncated(token, 20)), 'wrong_length')
  t.equal(shapeProblem(Buffer.concat([Buffer.from(token, 'base64url'), Buffer.alloc(1)]).toString('base64url')), 'wrong_length', 'not a whole number of blocks')
  t.equal(shapeProblem(withBytes(token, 0, Buffer.from([9]))), 'unknown_version')
  const forged = cookieForgeries(token)
  const last = forged['the last character spelled otherwise (same bytes to a lenient decoder)']
  if (last !== undefined) t.equal(shapeProblem(last), 'not_canonical', 'one spelling of each byte string: the one we write')
})

t.test('at once: many requests with one value all pass, each renewal a new value; logins each get their own', async (t) => {
  const time = clock()
  const app = await cookieApp(t, {}, time.now)
  const { token } = await login(app)
  time.advance(2)
  const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => await (i % 2 === 0 ? feedsWithBearer(app, token) : feedsWithCookie(app, token))))
  t.ok(answers.every((a) => a.statusCode === 200), '50 requests at once: 50 x 200')
  const renewed = answers.map((a) => setAuthCookie(a)?.value)
  t.equal(new Set(renewed).size, 50, 'each renewed on its own, under its own nonce')
  const checked = await Promise.all(renewed.map(async (value) => (await feedsWithBearer(app, value ?? '')).statusCode))
  t.ok(checked.every((s) => s === 200), 'and every one of them works')

  const logins = await Promise.all([['alice', 'wonderland'], ['bob', 'builder'], ['carol', 'lighthouse'], ['alice', 'wonderland'], ['bob', 'builder']].map(async ([u, p]) => await login(app, u, p)))
  t.equal(new Set(logins.map((l) => l.token)).size, 5, '5 logins at once: 5 different values')
})
