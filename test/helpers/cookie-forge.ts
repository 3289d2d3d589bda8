import { MAX_COOKIE_LENGTH, SEALED_LAYOUT } from '../../services/auth/cookie.ts'

/**
 * Forgeries of a real cookie-mode value, made by hand from its bytes: what an attacker who holds
 * a value (their own, or one they stole) but not the key can try. Values from another key, from
 * a key since removed, or past their expiry are made by the real server code instead (log in on
 * an app with that key or that clock), so they are exactly what a server once issued.
 */

/** The byte ranges of a value, [start, end), as services/auth/cookie.ts lays it out. */
export function regions (value: string): Record<'version' | 'keyId' | 'nonce' | 'ciphertext' | 'tag', [number, number]> {
  const length = Buffer.from(value, 'base64url').length
  const keyIdAt = SEALED_LAYOUT.versionBytes
  const nonceAt = keyIdAt + SEALED_LAYOUT.keyIdBytes
  const ciphertextAt = nonceAt + SEALED_LAYOUT.nonceBytes
  const tagAt = length - SEALED_LAYOUT.tagBytes
  return { version: [0, keyIdAt], keyId: [keyIdAt, nonceAt], nonce: [nonceAt, ciphertextAt], ciphertext: [ciphertextAt, tagAt], tag: [tagAt, length] }
}

/** The value with one bit of one byte flipped, re-encoded as the server would write it. */
export function flipBit (value: string, byte: number, bit = 0): string {
  const bytes = Buffer.from(value, 'base64url')
  bytes[byte] = (bytes[byte] ?? 0) ^ (1 << bit)
  return bytes.toString('base64url')
}

/** The value's bytes with some replaced, re-encoded. */
export function withBytes (value: string, at: number, replacement: Buffer): string {
  const bytes = Buffer.from(value, 'base64url')
  replacement.copy(bytes, at)
  return bytes.toString('base64url')
}

/** The first `bytes` bytes of the value, re-encoded. */
export function truncated (value: string, bytes: number): string {
  return Buffer.from(value, 'base64url').subarray(0, bytes).toString('base64url')
}

/**
 * Named forgeries of `value`, each changing what it carries or how it is spelled: a bit flipped
 * in every region, truncations, the version byte, spellings a lenient base64 decoder would take
 * for the same bytes, characters no base64url has, and lengths past the limit.
 */
export function cookieForgeries (value: string): Record<string, string> {
  const r = regions(value)
  const length = Buffer.from(value, 'base64url').length
  const middle = ([start, end]: [number, number]): number => Math.floor((start + end - 1) / 2)
  const last = value.at(-1) ?? 'A'
  // The last character of an unpadded base64url string carries unused low bits (length 49 bytes:
  // 4 of its 6 bits are unused); a lenient decoder reads another letter as the same bytes.
  const sameBytesLastChar = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_']
    .find((c) => c !== last && Buffer.from(`${value.slice(0, -1)}${c}`, 'base64url').equals(Buffer.from(value, 'base64url')))
  const forgeries: Record<string, string> = {
    'a bit flipped in the version byte': flipBit(value, 0, 0),
    'the version byte set to 2': withBytes(value, 0, Buffer.from([2])),
    'the version byte set to 0': withBytes(value, 0, Buffer.from([0])),
    'a bit flipped in the key id': flipBit(value, middle(r.keyId), 3),
    'a bit flipped in the nonce (first byte)': flipBit(value, r.nonce[0], 0),
    'a bit flipped in the nonce (last byte)': flipBit(value, r.nonce[1] - 1, 7),
    'a bit flipped in the ciphertext (first byte)': flipBit(value, r.ciphertext[0], 0),
    'a bit flipped in the ciphertext (last byte)': flipBit(value, r.ciphertext[1] - 1, 5),
    'a bit flipped in the tag (first byte)': flipBit(value, r.tag[0], 1),
    'a bit flipped in the tag (last byte)': flipBit(value, length - 1, 7),
    'the tag cut off': truncated(value, r.tag[0]),
    'the last byte cut off': truncated(value, length - 1),
    'only the header (version, key id, nonce)': truncated(value, r.ciphertext[0]),
    'a block of ciphertext added (zeros)': Buffer.concat([Buffer.from(value, 'base64url').subarray(0, r.tag[0]), Buffer.alloc(16), Buffer.from(value, 'base64url').subarray(r.tag[0])]).toString('base64url'),
    'a byte appended': Buffer.concat([Buffer.from(value, 'base64url'), Buffer.from([0])]).toString('base64url'),
    'the ciphertext and tag zeroed': withBytes(value, r.ciphertext[0], Buffer.alloc(length - r.ciphertext[0])),
    'the nonce zeroed': withBytes(value, r.nonce[0], Buffer.alloc(r.nonce[1] - r.nonce[0])),
    'with = padding': `${value}${'='.repeat((4 - (value.length % 4)) % 4 || 1)}`,
    'in standard base64 (+ and /)': Buffer.from(value, 'base64url').toString('base64'),
    'a space inside': `${value.slice(0, 10)} ${value.slice(10)}`,
    'a dot inside': `${value.slice(0, 10)}.${value.slice(10)}`,
    'a non-ASCII letter inside': `${value.slice(0, 10)}é${value.slice(11)}`,
    'non-base64 garbage': '!!not*base64~~',
    'the value twice': `${value}${value}`,
    [`one character over ${MAX_COOKIE_LENGTH}`]: `${value}${'A'.repeat(MAX_COOKIE_LENGTH + 1 - value.length)}`,
    'ten kilobytes': 'A'.repeat(10_000)
  }
  if (sameBytesLastChar !== undefined) forgeries['the last character spelled otherwise (same bytes to a lenient decoder)'] = `${value.slice(0, -1)}${sameBytesLastChar}`
  return forgeries
}
