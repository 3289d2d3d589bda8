import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto'
import type { SecretKey } from '../config.ts'
import type { AuthenticatorFactory, Credential, Verdict } from './authenticator.ts'

/**
 * How a sealed value is laid out, before base64url:
 *
 *   version (1) | key id (4) | nonce (12) | ciphertext (16 n) | tag (16)
 *
 * The plaintext is the whole session: absolute end and idle end (seconds since the epoch, 32 bits
 * each, good until 2106), the user name's length (1) and the name, zero-padded to whole 16-byte
 * blocks, so a value's length gives away only how many blocks the name needs (up to 7 bytes: one).
 * AES-256-GCM with a random 96-bit nonce; the version and key id are additional authenticated
 * data, so neither can be changed without the tag failing (NIST SP 800-38D).
 */
export const SEALED_LAYOUT = { version: 1, versionBytes: 1, keyIdBytes: 4, nonceBytes: 12, tagBytes: 16, blockBytes: 16 } as const
const { version: VERSION, versionBytes, keyIdBytes, nonceBytes, tagBytes, blockBytes } = SEALED_LAYOUT
const AAD_BYTES = versionBytes + keyIdBytes
const HEADER_BYTES = AAD_BYTES + nonceBytes
/** Two times and the name's length, ahead of the name. */
const SESSION_HEAD_BYTES = 4 + 4 + 1
const MAX_USER_BYTES = 255
/**
 * A value longer than this is refused unread. The longest a login can make (a 64-character name
 * of 2-byte letters) is 236 characters; the demo users' are 66.
 */
export const MAX_COOKIE_LENGTH = 256
const BASE64URL = /^[A-Za-z0-9_-]+$/

// RFC 5869: one secret, two keys for two purposes, told apart by `info`. The secret has at least
// 256 bits of entropy when made as the docs say (config.ts refuses anything under 32 bytes), so
// no salt is needed (section 3.1).
const ENCRYPTION_INFO = 'auth-cluster cookie v1: AES-256-GCM key'
const KEY_ID_INFO = 'auth-cluster cookie v1: key id'

interface CookieKey {
  /** The name COOKIE_SECRETS gives it: for messages only. */
  kid: string
  secret: string
  /** Derived from the secret, so renaming a kid in COOKIE_SECRETS changes no value. */
  id: number
  key: Buffer
}

interface Session {
  user: string
  /** Seconds since the epoch: the absolute end (SESSION_TTL_SECONDS after login). */
  expiresAt: number
  /** Seconds since the epoch: the idle end, slid forward each time the value is renewed. */
  idleUntil: number
}

export type ShapeProblem = 'too_long' | 'not_base64url' | 'not_canonical' | 'wrong_length' | 'unknown_version'

/**
 * What is wrong with a value before any key is touched, or its bytes. A string that is too long,
 * not base64url, not spelled exactly as we write it, of a length no value has, or of another
 * version, could never have been sealed here.
 */
function parseShape (value: string): { bytes: Buffer } | { problem: ShapeProblem } {
  if (value.length > MAX_COOKIE_LENGTH) return { problem: 'too_long' }
  if (!BASE64URL.test(value)) return { problem: 'not_base64url' }
  const bytes = Buffer.from(value, 'base64url')
  // Node decodes base64url leniently (the unused low bits of the last character are ignored): one
  // byte string, several spellings. Only the one we write is accepted, so a changed character is
  // always a changed value.
  if (bytes.toString('base64url') !== value) return { problem: 'not_canonical' }
  const body = bytes.length - HEADER_BYTES - tagBytes
  if (body < blockBytes || body % blockBytes !== 0) return { problem: 'wrong_length' }
  if (bytes[0] !== VERSION) return { problem: 'unknown_version' }
  return { bytes }
}

/** Why a value is refused unread, or undefined when it has the shape of one of ours. */
export function shapeProblem (value: string): ShapeProblem | undefined {
  const shaped = parseShape(value)
  return 'problem' in shaped ? shaped.problem : undefined
}

function paddedLength (userBytes: number): number {
  return Math.ceil((SESSION_HEAD_BYTES + userBytes) / blockBytes) * blockBytes
}

/** The bytes of the value a client sends on every request (as the cookie or a Bearer header), for a user name. */
export function cookieValueBytes (user: string): number {
  const sealed = HEADER_BYTES + paddedLength(Buffer.byteLength(user)) + tagBytes
  return Math.ceil(sealed * 4 / 3)
}

function deriveKey ({ kid, secret }: SecretKey): CookieKey {
  const material = Buffer.from(secret, 'utf8')
  return {
    kid,
    secret,
    id: Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), KEY_ID_INFO, keyIdBytes)).readUInt32BE(0),
    key: Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), ENCRYPTION_INFO, 32))
  }
}

function seal (key: CookieKey, session: Session): string {
  const user = Buffer.from(session.user, 'utf8')
  if (user.length > MAX_USER_BYTES) throw new Error(`a user name of ${user.length} bytes does not fit a cookie value (at most ${MAX_USER_BYTES})`)
  const plaintext = Buffer.alloc(paddedLength(user.length))
  plaintext.writeUInt32BE(session.expiresAt, 0)
  plaintext.writeUInt32BE(session.idleUntil, 4)
  plaintext.writeUInt8(user.length, 8)
  user.copy(plaintext, SESSION_HEAD_BYTES)
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt8(VERSION, 0)
  header.writeUInt32BE(key.id, versionBytes)
  // A random 96-bit nonce per value: NIST SP 800-38D (8.3) allows 2^32 of them per key, which
  // docs/security.md turns into a rotation budget.
  randomFillSync(header, AAD_BYTES, nonceBytes)
  const cipher = createCipheriv('aes-256-gcm', key.key, header.subarray(AAD_BYTES), { authTagLength: tagBytes })
  cipher.setAAD(header.subarray(0, AAD_BYTES))
  return Buffer.concat([header, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]).toString('base64url')
}

/** The session in a value of the right shape, if a listed key opens it and it is well formed inside. */
function open (keys: Map<number, CookieKey>, bytes: Buffer): Session | undefined {
  const key = keys.get(bytes.readUInt32BE(versionBytes))
  if (key === undefined) return undefined
  const decipher = createDecipheriv('aes-256-gcm', key.key, bytes.subarray(AAD_BYTES, HEADER_BYTES), { authTagLength: tagBytes })
  decipher.setAAD(bytes.subarray(0, AAD_BYTES))
  decipher.setAuthTag(bytes.subarray(bytes.length - tagBytes))
  let plaintext: Buffer
  try {
    // Nothing of update()'s output is used unless final() has checked the tag.
    plaintext = Buffer.concat([decipher.update(bytes.subarray(HEADER_BYTES, bytes.length - tagBytes)), decipher.final()])
  } catch {
    return undefined
  }
  // Only a holder of the key could have written what follows, so any oddity here is a bug of ours;
  // refused all the same.
  const length = plaintext.readUInt8(8)
  if (length === 0 || paddedLength(length) !== plaintext.length || plaintext.subarray(SESSION_HEAD_BYTES + length).some((b) => b !== 0)) return undefined
  return {
    expiresAt: plaintext.readUInt32BE(0),
    idleUntil: plaintext.readUInt32BE(4),
    user: plaintext.toString('utf8', SESSION_HEAD_BYTES, SESSION_HEAD_BYTES + length)
  }
}

/**
 * Stateless sessions that are encrypted: the whole session travels in the cookie, sealed with
 * AES-256-GCM under a key every server holds (COOKIE_SECRETS, the first seals, all open), as
 * Rails' cookie store does. Like a JWT, no server keeps anything, and logout cannot take a value
 * back; unlike a JWT, the client can read nothing in it, and a changed byte fails the tag.
 *
 * The idle timeout lives in the value too, so it slides by sealing a new value: a request that
 * comes a second or more after its value was sealed gets a new one in Set-Cookie (renewed, in
 * the verdict). Renewing revokes nothing: the value it replaces works until its own idle end.
 */
export const createCookieAuthenticator: AuthenticatorFactory = async ({ config, now = Date.now }) => {
  const keys = config.cookie.keys.map(deriveKey)
  const sealing = keys[0]
  if (sealing === undefined) throw new Error('cookie mode needs at least one key (COOKIE_SECRET or COOKIE_SECRETS)')
  const byId = new Map<number, CookieKey>()
  for (const key of keys) {
    const taken = byId.get(key.id)
    if (taken !== undefined) {
      throw new Error(taken.secret === key.secret
        ? `COOKIE_SECRETS: the keys ${JSON.stringify(taken.kid)} and ${JSON.stringify(key.kid)} are the same secret; list each secret once`
        : `COOKIE_SECRETS: the keys ${JSON.stringify(taken.kid)} and ${JSON.stringify(key.kid)} have the same 32-bit key id, a 1 in 4 billion chance; make a new secret for one of them`)
    }
    byId.set(key.id, key)
  }
  const { sessionTtlSeconds, sessionIdleSeconds } = config
  const seconds = (): number => Math.floor(now() / 1000)

  return {
    mode: 'cookie',
    async login (user): Promise<Credential> {
      const at = seconds()
      const expiresAt = at + sessionTtlSeconds
      return { token: seal(sealing, { user, expiresAt, idleUntil: Math.min(at + sessionIdleSeconds, expiresAt) }), expiresIn: sessionTtlSeconds }
    },
    async verify (token): Promise<Verdict> {
      const shaped = parseShape(token)
      if ('problem' in shaped) return { ok: false, reason: 'invalid_token' }
      const session = open(byId, shaped.bytes)
      if (session === undefined) return { ok: false, reason: 'invalid_token' }
      // Both ends are the ones sealed in at login (or at the last renewal), on the server's own
      // clock: what the cookie's Max-Age says does not matter.
      const time = now()
      if (time >= session.expiresAt * 1000 || time >= session.idleUntil * 1000) return { ok: false, reason: 'expired' }
      const at = Math.floor(time / 1000)
      const idleUntil = Math.min(at + sessionIdleSeconds, session.expiresAt)
      // Slid by whole seconds, at most once a second per value: within a second it would move
      // nothing, and near the absolute end nothing is left to slide.
      if (idleUntil <= session.idleUntil) return { ok: true, user: session.user }
      return {
        ok: true,
        user: session.user,
        renewed: { token: seal(sealing, { ...session, idleUntil }), expiresIn: session.expiresAt - at }
      }
    },
    async logout () {
      // Nothing to do: no server holds the session. The route clears the cookie, and a copy of
      // the value works on until it expires (docs/modes.md).
    },
    storeStatus: () => 'none',
    async close () {}
  }
}
