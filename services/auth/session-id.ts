import { randomBytes } from 'node:crypto'

// 256 bits from the CSPRNG, twice OWASP's 128-bit floor; base64url so it fits a header and a cookie as is.
const SESSION_ID_BYTES = 32
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/

export function newSessionId (): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url')
}

/** A string that could never have been issued is refused before any lookup. */
export function isWellFormedSessionId (token: string): boolean {
  return SESSION_ID_PATTERN.test(token)
}
