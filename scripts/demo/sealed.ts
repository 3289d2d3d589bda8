/**
 * Cookie mode's sealed value as a client sees it, and every way a curious client might try to
 * read a credential. The layout is the one docs/modes.md gives (services/auth/cookie.ts's
 * SEALED_LAYOUT; the walkthrough's test holds the two together): a step reads values over HTTP,
 * like any client, never the servers' code.
 */

/** version (1) | key id (4) | nonce (12) | ciphertext (16 n) | tag (16), then base64url. */
export const SEALED_PARTS = [
  { name: 'version', bytes: 1 },
  { name: 'key id', bytes: 4 },
  { name: 'nonce', bytes: 12 },
  { name: 'ciphertext', bytes: -1 },
  { name: 'tag', bytes: 16 }
] as const

export type SealedPartName = typeof SEALED_PARTS[number]['name']

/** The value's bytes cut into its parts, each in hex: what the value is made of, none of it readable. */
export function sealedParts (value: string): Array<{ name: SealedPartName, hex: string }> {
  const bytes = Buffer.from(value, 'base64url')
  const fixed = SEALED_PARTS.reduce((n, p) => n + Math.max(0, p.bytes), 0)
  if (bytes.length <= fixed) throw new Error(`a sealed value has more than ${fixed} bytes (this one ${bytes.length})`)
  let at = 0
  return SEALED_PARTS.map((part) => {
    const length = part.bytes === -1 ? bytes.length - fixed : part.bytes
    const hex = bytes.subarray(at, at + length).toString('hex')
    at += length
    return { name: part.name, hex }
  })
}

/** Where the ciphertext starts in the value's bytes. */
const CIPHERTEXT_AT = 1 + 4 + 12

/**
 * The value with one bit of its first ciphertext byte flipped. AES-GCM encrypts by XOR with a
 * key stream (counter mode), so that flips the same bit of the plaintext, whose first 4 bytes are
 * the absolute end (services/auth/cookie.ts): the bit is chosen so that, were nothing to check
 * it, the expiry would move later. The tag is what refuses it (NIST SP 800-38D).
 */
export function flipExpiryBit (value: string, expiresAt: number): { value: string, byteAt: number, before: string, after: string, laterBySeconds: number } {
  const bytes = Buffer.from(value, 'base64url')
  const top = (expiresAt >>> 24) & 0xff
  let bit = 0
  while (bit < 7 && (top & (1 << bit)) !== 0) bit++
  const byteAt = CIPHERTEXT_AT
  const before = bytes.subarray(byteAt, byteAt + 1).toString('hex')
  bytes[byteAt] = (bytes[byteAt] ?? 0) ^ (1 << bit)
  return {
    value: bytes.toString('base64url'),
    byteAt,
    before,
    after: bytes.subarray(byteAt, byteAt + 1).toString('hex'),
    laterBySeconds: (1 << bit) * 2 ** 24
  }
}

/** What to look for in a credential: a user name, and a Unix time as digits or as 4 bytes either way round. */
export interface Needles {
  user: string
  /** The expiry, or the few seconds it may be (the server's clock read it during the login). */
  expiry: number[]
}

export type Found = 'user' | 'expiry'

export interface Decoding {
  name: 'base64url' | 'base64' | 'hex' | 'JSON'
  /** What the decoding gave, in a few words: "48 bytes", "not hex: 'z' at 3". */
  gave: string
  found: Found[]
}

const BASE64URL = /^[A-Za-z0-9_-]+$/
const HEX = /^(?:[0-9a-fA-F]{2})+$/

function search (haystack: Buffer, needles: Needles): Found[] {
  const found: Found[] = []
  if (haystack.includes(Buffer.from(needles.user, 'utf8'))) found.push('user')
  const expiryHit = needles.expiry.some((t) => {
    const be = Buffer.alloc(4)
    be.writeUInt32BE(t >>> 0)
    const le = Buffer.alloc(4)
    le.writeUInt32LE(t >>> 0)
    return haystack.includes(Buffer.from(String(t))) || haystack.includes(be) || haystack.includes(le)
  })
  if (expiryHit) found.push('expiry')
  return found
}

/**
 * A base64 text decoded at each of its four alignments (0 to 3 characters dropped from the
 * front), so a name that sits at any byte offset of what was encoded shows in one of them.
 */
function everyAlignment (text: string, encoding: 'base64url' | 'base64'): Buffer[] {
  return [0, 1, 2, 3].filter((skip) => text.length - skip >= 2).map((skip) => Buffer.from(text.slice(skip), encoding))
}

function union (lists: Found[][]): Found[] {
  return (['user', 'expiry'] as const).filter((f) => lists.some((l) => l.includes(f)))
}

/**
 * Every decoding a curious client might try on a credential (each dot-separated part on its
 * own, as a JWT is three), and whether the user name or the expiry shows in what it gives.
 */
export function tryDecodings (credential: string, needles: Needles): Decoding[] {
  const parts = credential.split('.').filter((p) => p !== '')
  const bytesOf = (part: string): Buffer => Buffer.from(part, 'base64url')
  const totalBytes = parts.reduce((n, p) => n + bytesOf(p).length, 0)
  const decodings: Decoding[] = []

  const urlSafe = parts.every((p) => BASE64URL.test(p))
  decodings.push(urlSafe
    ? { name: 'base64url', gave: `${totalBytes} bytes, read at every alignment`, found: union(parts.flatMap((p) => everyAlignment(p, 'base64url').map((b) => search(b, needles)))) }
    : { name: 'base64url', gave: 'not base64url', found: [] })

  // The standard alphabet: a base64 decoder given the value reads - and _ as + and /, which
  // Node's does; a strict one refuses them, and then there is nothing to search.
  const standard = parts.map((p) => p.replace(/-/g, '+').replace(/_/g, '/'))
  decodings.push({ name: 'base64', gave: `${totalBytes} bytes, - and _ read as + and /`, found: union(standard.flatMap((p) => everyAlignment(p, 'base64').map((b) => search(b, needles)))) })

  const notHex = [...credential].findIndex((c) => !/[0-9a-fA-F]/.test(c))
  decodings.push(HEX.test(credential)
    ? { name: 'hex', gave: `${credential.length / 2} bytes`, found: search(Buffer.from(credential, 'hex'), needles) }
    : { name: 'hex', gave: notHex >= 0 ? `not hex: "${credential[notHex] ?? ''}" at ${notHex}` : 'not hex: an odd number of digits', found: [] })

  // JSON: the value itself, or any part's decoded bytes.
  const json = [credential, ...parts.map((p) => bytesOf(p).toString('utf8'))].map((text, i) => {
    try {
      const value = JSON.parse(text) as unknown
      return typeof value === 'object' && value !== null ? { text, what: i === 0 ? 'the value' : `part ${i}` } : undefined
    } catch {
      return undefined
    }
  }).filter((j) => j !== undefined)
  const parsed = json.map((j) => j.what)
  decodings.push(json.length === 0
    ? { name: 'JSON', gave: 'not JSON, nor are its decoded bytes', found: [] }
    : { name: 'JSON', gave: `${parsed.length === 1 ? parsed[0] ?? '' : `${parsed.slice(0, -1).join(', ')} and ${parsed.at(-1) ?? ''}`}${parsed[0] === 'the value' ? '' : ', decoded,'} ${parsed.length === 1 ? 'is' : 'are'} JSON`, found: union(json.map((j) => search(Buffer.from(j.text), needles))) })
  return decodings
}

/** Every decoding's finds together. */
export const foundAnywhere = (decodings: Decoding[]): Found[] => union(decodings.map((d) => d.found))
