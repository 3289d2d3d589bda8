// cookie mode's sealed value, taken apart as any client can: its bytes, laid out as docs/modes.md
// gives them (version, key id, nonce, ciphertext, tag). Nothing here can open it: only the
// servers hold COOKIE_SECRET, and the session is inside the ciphertext.
/* global atob */
import { toBase64url } from './jwt.js'

const PARTS = [
  { name: 'version', bytes: 1 },
  { name: 'key id', bytes: 4 },
  { name: 'nonce', bytes: 12 },
  { name: 'ciphertext', bytes: -1 },
  { name: 'tag', bytes: 16 }
]
const FIXED = PARTS.reduce((n, p) => n + Math.max(0, p.bytes), 0)
/** Where the ciphertext starts. */
export const CIPHERTEXT_AT = 1 + 4 + 12

export function bytesOf (value) {
  if (!/^[A-Za-z0-9_-]+$/.test(value)) return null
  const base64 = value.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((value.length + 3) % 4)
  try {
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
  } catch {
    return null
  }
}

const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')

/** The value's parts, each with its offset and bytes, or null when it has not the shape of a sealed value. */
export function sealedParts (value) {
  const bytes = bytesOf(value)
  if (bytes === null || bytes.length <= FIXED || (bytes.length - FIXED) % 16 !== 0 || bytes[0] !== 1) return null
  let at = 0
  return PARTS.map((part) => {
    const length = part.bytes === -1 ? bytes.length - FIXED : part.bytes
    const slice = bytes.subarray(at, at + length)
    const shown = { name: part.name, at, length, hex: hex(slice) }
    at += length
    return shown
  })
}

/** The bytes as text, as a curious client would try: printable ASCII kept, every other byte a dot. */
export function asText (value) {
  const bytes = bytesOf(value) ?? new Uint8Array()
  return [...bytes].map((b) => b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '·').join('')
}

/** The value with the lowest bit of its first ciphertext byte flipped: one byte changed, re-encoded. */
export function flipCiphertextBit (value) {
  const bytes = bytesOf(value)
  const from = bytes[CIPHERTEXT_AT]
  bytes[CIPHERTEXT_AT] = from ^ 1
  return { value: toBase64url(bytes), at: CIPHERTEXT_AT, from: from.toString(16).padStart(2, '0'), to: bytes[CIPHERTEXT_AT].toString(16).padStart(2, '0') }
}
