import { seededRandom } from './service-app.ts'

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
// What a header value may carry on the wire: tab, printable ASCII and obs-text (0x80-0xff).
const HEADER_CHARS = `\t${Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('')}${Array.from({ length: 128 }, (_, i) => String.fromCharCode(128 + i)).join('')}`
const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

export interface FuzzCase {
  /** Sent as is: an Authorization header, a Cookie header, or both. */
  headers: Record<string, string>
  kind: string
}

/**
 * `count` random and mutated credentials derived from one real `token`, the same ones for the
 * same seed. None is the real token: each changes what it carries (re-encodings of the same
 * token, which a cookie parser would decode back, are left out on purpose).
 */
export function fuzzCredentials (token: string, count: number, seed = 20261129): FuzzCase[] {
  const random = seededRandom(seed)
  const int = (n: number): number => Math.floor(random() * n)
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T
  const randomString = (alphabet: string, length: number): string => Array.from({ length }, () => alphabet[int(alphabet.length)]).join('')
  const randomBytesFrom = (length: number): Buffer => Buffer.from(Array.from({ length }, () => int(256)))
  const segments = token.split('.')
  // A session id or a cookie-mode value is base64url as a whole: its bytes can be changed
  // directly (a bit in a nonce, a tag, a ciphertext), not just its characters.
  const bytes = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url') : Buffer.from(token)
  const changedBytes = (change: (b: Buffer) => Buffer): string => {
    const changed = change(Buffer.from(bytes)).toString('base64url')
    return changed === token ? `${token}A` : changed
  }

  const mutations: Array<[string, () => string]> = [
    ['random header characters', () => randomString(HEADER_CHARS, int(300))],
    ['random base64url, session-id sized', () => randomString(B64URL, 40 + int(8))],
    ['random JWT-shaped', () => `${randomString(B64URL, 10 + int(60))}.${randomString(B64URL, 10 + int(200))}.${randomString(B64URL, 43)}`],
    ['one character changed', () => {
      const i = int(token.length)
      const alphabet = token[i] === '.' ? B64URL : B64URL.replace(token[i] ?? '', '')
      return `${token.slice(0, i)}${pick([...alphabet])}${token.slice(i + 1)}`
    }],
    ['a few characters changed', () => {
      const chars = [...token]
      for (let n = 1 + int(5); n > 0; n--) chars[int(chars.length)] = pick([...HEADER_CHARS.replace(/[\t ]/g, '')])
      const mutated = chars.join('')
      return mutated === token ? `${token}x` : mutated
    }],
    ['truncated', () => token.slice(0, int(token.length))],
    ['extended', () => `${token}${randomString(B64URL, 1 + int(8))}`],
    ['a character deleted', () => { const i = int(token.length); return token.slice(0, i) + token.slice(i + 1) }],
    ['a character inserted', () => { const i = int(token.length + 1); return `${token.slice(0, i)}${pick([...B64URL, '.', '=', '+', '/'])}${token.slice(i)}` }],
    ['doubled', () => `${token}${token}`],
    ['reversed', () => [...token].reverse().join('')],
    ['upper-cased', () => token.toUpperCase() === token ? `${token}A` : token.toUpperCase()],
    ['segments reordered', () => segments.length === 3 ? `${segments[1] ?? ''}.${segments[0] ?? ''}.${segments[2] ?? ''}` : `${token.slice(20)}${token.slice(0, 20)}`],
    ['header replaced, signature kept', () => `${b64json(pick([{ alg: 'none', typ: 'JWT' }, { alg: 'HS512', typ: 'JWT', kid: 'default' }, { alg: 'RS256', typ: 'JWT', kid: 'default' }, { alg: 'HS256', typ: 'JWT', kid: randomString(B64URL, 8) }, { alg: 'HS256', typ: 'JWT', kid: 'default', jku: 'http://127.0.0.1:1/k' }]))}.${segments[1] ?? b64json({ sub: 'alice' })}.${segments[2] ?? ''}`],
    ['claims replaced, signature kept', () => `${segments[0] ?? b64json({ alg: 'HS256' })}.${b64json({ sub: pick(['alice', 'bob', 'admin']), exp: 9_999_999_999, iat: 1, iss: 'auth-cluster', aud: 'auth-cluster-api', jti: randomString(B64URL, 22) })}.${segments[2] ?? ''}`],
    ['signature stripped', () => `${segments[0] ?? ''}.${segments[1] ?? ''}.`],
    ['longer than the 4096-character limit', () => randomString(B64URL, 4097 + int(2000))],
    ['just over the 256-character cookie limit', () => randomString(B64URL, 257 + int(64))],
    ['a bit flipped in the decoded bytes', () => changedBytes((b) => { const i = int(b.length); b[i] = (b[i] ?? 0) ^ (1 << int(8)); return b })],
    ['decoded bytes cut short', () => changedBytes((b) => b.subarray(0, int(b.length)))],
    ['a run of decoded bytes zeroed', () => changedBytes((b) => { const from = int(b.length); return b.fill(0, from, Math.min(b.length, from + 1 + int(16))) })],
    ['decoded bytes with a block added', () => changedBytes((b) => Buffer.concat([b, randomBytesFrom(16)]))]
  ]
  const wrappers: Array<[string, (value: string) => Record<string, string>]> = [
    ['bearer', (v) => ({ authorization: `Bearer ${v}` })],
    ['cookie', (v) => ({ cookie: `auth=${v}` })],
    ['lower-case bearer', (v) => ({ authorization: `bearer ${v}` })],
    ['another scheme', (v) => ({ authorization: `${pick(['Basic', 'Token', 'JWT', 'Digest'])} ${v}` })],
    ['two credentials in the header', (v) => ({ authorization: `Bearer ${v} ${v}` })],
    ['cookie among others', (v) => ({ cookie: `theme=dark; auth=${v}; lang=en` })],
    ['bearer and a cookie both forged', (v) => ({ authorization: `Bearer ${v}`, cookie: `auth=${v}` })]
  ]

  const cases: FuzzCase[] = []
  while (cases.length < count) {
    const [mutationName, mutate] = pick(mutations)
    const value = mutate()
    if (value === token || value.trim() === token) continue
    const [wrapperName, wrap] = pick(wrappers)
    const headers = wrap(value)
    // Past the balancer's 8 KiB of headers the answer is a 431, which is right but not this test.
    const size = Object.values(headers).reduce((n, v) => n + v.length, 0)
    cases.push(size > 7000 ? { headers: { authorization: `Bearer ${value}` }, kind: `${mutationName}, bearer` } : { headers, kind: `${mutationName}, ${wrapperName}` })
  }
  return cases
}
