import { createHash, randomBytes } from 'node:crypto'

// Refresh tokens as RFC 9700 (the OAuth 2.0 Security BCP), section 4.14.2, asks of tokens given to
// clients that cannot keep a secret: each use returns a new one and retires the old, and a retired
// one presented again means two parties hold the family (the client and a thief, no telling which
// is which), so the whole family is revoked and both must log in again.

/** What a store answers to a refresh: the family's fate, decided in one atomic step. */
export type RotateResult =
  /** The presented token was the family's current one: it is retired, `nextHash` is current now. */
  | { outcome: 'rotated', user: string, family: string, expiresAt: number }
  /** The presented token was retired already: the family is revoked, now (or stays revoked). */
  | { outcome: 'reused', user: string, family: string }
  /** The family's current token, but the family was revoked (a logout, a reuse of an older token). */
  | { outcome: 'revoked' }
  /** Past its absolute or idle lifetime, or gone. */
  | { outcome: 'expired' }
  /** No family knows this token. */
  | { outcome: 'unknown' }

export interface RefreshLifetimes {
  /** A family ends this long after login (REFRESH_TTL_SECONDS), in ms. */
  absoluteMs: number
  /** A family unused this long ends (REFRESH_IDLE_SECONDS), in ms. */
  idleMs: number
}

/**
 * Where refresh token families live. Tokens are held only as their SHA-256. Each method is one
 * round trip and atomic: Redis runs a script with nothing in between; PostgreSQL would run one
 * statement, or a transaction holding the family's row (SELECT ... FOR UPDATE).
 */
export interface RefreshTokenStore {
  /** A new family for `user`, its first token's hash current, from `at` (ms). */
  create (family: string, user: string, hash: string, at: number): Promise<void>
  /** The refresh itself: see RotateResult. Two calls with the same hash: one is 'rotated', the other 'reused'. */
  rotate (hash: string, nextHash: string, at: number): Promise<RotateResult>
  /** Revokes the family a token (current or retired) belongs to; nothing when none does. */
  revokeByToken (hash: string): Promise<void>
  /** Revokes a family by its id (the `sid` of its access tokens); nothing when there is none. */
  revokeFamily (family: string): Promise<void>
  /** Whether the store can be reached now. */
  status (): 'up' | 'down'
  close (): Promise<void>
}

/** Why a refresh is refused: the reason in its 401. */
export type RefreshRefusal = 'missing_token' | 'invalid_token' | 'expired' | 'revoked' | 'refresh_reused'

/** 256 bits from the CSPRNG, base64url: 43 characters. */
export function newRefreshToken (): string {
  return randomBytes(32).toString('base64url')
}

/** A family's id: 128 bits, also the `sid` of the access tokens it gives. */
export function newFamilyId (): string {
  return randomBytes(16).toString('base64url')
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/

/** Whether a string could be one of our refresh tokens: anything else is refused without a lookup. */
export function isWellFormedRefreshToken (token: string): boolean {
  return TOKEN_SHAPE.test(token)
}

/**
 * What the store keeps of a token. SHA-256, not a password hash: a password hash (scrypt, argon2)
 * is slow on purpose because passwords are guessable, and salted so equal passwords differ; a
 * token of 256 random bits cannot be guessed at any speed, and must be found by its hash, so the
 * hash is fast and unsalted. It keeps a copy of the store (a backup, a replica, a dump) from
 * being a list of working tokens; a scrypt per refresh would only buy an attacker a way to make
 * the issuer burn CPU.
 */
export function hashRefreshToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}
