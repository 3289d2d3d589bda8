import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import t from 'tap'
import { SEALED_LAYOUT } from '../../../services/auth/cookie.ts'
import { SEALED_PARTS, flipExpiryBit, foundAnywhere, sealedParts, tryDecodings } from '../../../scripts/demo/sealed.ts'
import { buildModeApp, feedsWithBearer, login } from '../../helpers/service-app.ts'

// The walkthrough reads cookie mode's values as a client: from the documented layout, not the
// servers' code. These tests hold that layout to the code's, and the step's claims to real values.

const SECRET = randomBytes(48).toString('base64url')
const NOW_MS = 1_800_000_000_000

/** A value from a real login, and the Unix times its expiry may be (jwt mode reads the real clock, cookie mode the one given). */
async function realValue (t: Parameters<typeof buildModeApp>[0], mode: 'cookie' | 'jwt'): Promise<{ token: string, expiresAt: number, expiry: number[], app: Awaited<ReturnType<typeof buildModeApp>> }> {
  const env: Record<string, string> = mode === 'cookie' ? { COOKIE_SECRET: SECRET } : { JWT_SECRET: SECRET }
  const app = await buildModeApp(t, mode, undefined, { ...env, SESSION_TTL_SECONDS: '3600' }, { now: () => NOW_MS })
  const before = Math.floor(Date.now() / 1000)
  const { token } = await login(app)
  const after = Math.floor(Date.now() / 1000)
  const expiry = mode === 'cookie' ? [NOW_MS / 1000 + 3600] : Array.from({ length: after - before + 1 }, (_, i) => before + i + 3600)
  return { token, expiresAt: expiry[0] ?? 0, expiry, app }
}

t.test('the layout the walkthrough shows is the one services/auth/cookie.ts seals', async (t) => {
  t.same(SEALED_PARTS.map((p) => p.bytes), [SEALED_LAYOUT.versionBytes, SEALED_LAYOUT.keyIdBytes, SEALED_LAYOUT.nonceBytes, -1, SEALED_LAYOUT.tagBytes])
  const { token } = await realValue(t, 'cookie')
  const parts = sealedParts(token)
  t.same(parts.map((p) => p.name), ['version', 'key id', 'nonce', 'ciphertext', 'tag'])
  t.equal(parts[0]?.hex, '01', 'version 1')
  t.same(parts.map((p) => p.hex.length / 2), [1, 4, 12, 16, 16], 'alice\'s session is one block of ciphertext')
  t.equal(parts.map((p) => p.hex).join(''), Buffer.from(token, 'base64url').toString('hex'), 'the parts are the whole value, in order')
  t.throws(() => sealedParts('AAAA'), /a sealed value has more than 33 bytes/)
})

t.test('a JWT gives its user and expiry away in three decodings; a sealed value in none', async (t) => {
  const jwt = await realValue(t, 'jwt')
  const needles = { user: 'alice', expiry: jwt.expiry }
  const fromJwt = tryDecodings(jwt.token, needles)
  t.same(fromJwt.map((d) => [d.name, d.found]), [['base64url', ['user', 'expiry']], ['base64', ['user', 'expiry']], ['hex', []], ['JSON', ['user', 'expiry']]])
  t.equal(fromJwt[3]?.gave, 'part 1 and part 2, decoded, are JSON', 'its header and payload decode to JSON')
  t.match(fromJwt[2]?.gave, /^not hex: "[^"]" at \d+$/)

  const cookie = await realValue(t, 'cookie')
  const fromCookie = tryDecodings(cookie.token, { user: 'alice', expiry: cookie.expiry })
  t.same(fromCookie.map((d) => d.name), ['base64url', 'base64', 'hex', 'JSON'], 'every decoding tried')
  t.same(foundAnywhere(fromCookie), [], 'neither the user nor the expiry, in any of them')
  t.equal(fromCookie[0]?.gave, '49 bytes, read at every alignment')
  t.equal(fromCookie[3]?.gave, 'not JSON, nor are its decoded bytes')
})

t.test('the search finds what is there, wherever it sits: it is not blind', async (t) => {
  const expiry = 1_800_003_600
  const be = Buffer.alloc(4)
  be.writeUInt32BE(expiry)
  for (const offset of [0, 1, 2]) {
    const plain = Buffer.concat([Buffer.alloc(offset, 7), Buffer.from('alice'), be]).toString('base64url')
    t.same(foundAnywhere(tryDecodings(plain, { user: 'alice', expiry: [expiry] })), ['user', 'expiry'], `a name and a binary time ${offset} bytes in, only encoded`)
  }
  t.same(foundAnywhere(tryDecodings(Buffer.from(be).reverse().toString('base64url'), { user: 'bob', expiry: [expiry] })), ['expiry'], 'a little-endian time')
  t.same(tryDecodings(Buffer.from(`x${expiry}alice`).toString('hex'), { user: 'alice', expiry: [expiry] }).find((d) => d.name === 'hex')?.found, ['user', 'expiry'], 'hex')
  t.same(tryDecodings(`{"u":"alice","e":${expiry}}`, { user: 'alice', expiry: [expiry] }).find((d) => d.name === 'JSON')?.found, ['user', 'expiry'], 'plain JSON')
})

t.test('the flipped bit would move the sealed expiry later, and the tag refuses it', async (t) => {
  const { token, expiresAt, app } = await realValue(t, 'cookie')
  const flipped = flipExpiryBit(token, expiresAt)
  t.not(flipped.value, token)
  t.equal(flipped.byteAt, 17, 'the first byte of the ciphertext')
  t.not(flipped.before, flipped.after)
  t.ok(flipped.laterBySeconds >= 2 ** 24, `later by ${flipped.laterBySeconds} s`)
  const diff = [...Buffer.from(token, 'base64url')].map((b, i) => b ^ (Buffer.from(flipped.value, 'base64url')[i] ?? 0)).filter((x) => x !== 0)
  t.equal(diff.length, 1, 'one byte changed')
  t.equal(diff[0]?.toString(2).replace(/0/g, '').length, 1, 'by one bit')

  // Opened without the tag check, as a cipher with no authentication would: counter mode hands the
  // flipped bit straight to the plaintext. The key is derived as services/auth/cookie.ts derives it.
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(SECRET, 'utf8'), Buffer.alloc(0), 'auth-cluster cookie v1: AES-256-GCM key', 32))
  const open = (value: string): number => {
    const bytes = Buffer.from(value, 'base64url')
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(5, 17))
    return decipher.update(bytes.subarray(17, bytes.length - 16)).readUInt32BE(0)
  }
  t.equal(open(token), expiresAt, 'the real value holds the expiry in its first 4 bytes')
  t.equal(open(flipped.value), expiresAt + flipped.laterBySeconds, `unchecked, the changed value would say ${flipped.laterBySeconds / 86_400} days later`)
  const res = await feedsWithBearer(app, flipped.value)
  t.equal(res.statusCode, 401)
  t.equal(res.json().reason, 'invalid_token', 'the tag refuses it')
})
