// What every JWT we accept must look like before any key is chosen or any signature checked,
// shared by the HS256 authenticator (jwt.ts), the EdDSA verifier (jwt-eddsa.ts) and the issuer.

// A token larger than this is refused before any parsing: no real token of ours comes near it.
export const MAX_TOKEN_LENGTH = 4096
// The only header members we ever write. Anything else (jwk, jku, x5u, x5c, crit, cty...) is an
// attempt to make the server fetch or trust a key it was not given: refused (RFC 8725 3.10).
const HEADER_MEMBERS = new Set(['alg', 'typ', 'kid'])

/** The header a token must carry exactly: `alg` and `typ` as given, and a string `kid`. */
export interface ExpectedHeader {
  alg: string
  typ: string
}

/**
 * The `kid` of a token whose shape and header are exactly what we write (RFC 8725 2.1, 3.1,
 * 3.11): at most MAX_TOKEN_LENGTH characters, three segments, the signature in canonical
 * base64url, a header of `alg`, `typ` and `kid` only, `alg` and `typ` the expected ones. The
 * algorithm is the server's, never the token's: one naming another is refused here, before a
 * key is looked at. Undefined for anything else.
 */
export function expectedKid (token: string, expected: ExpectedHeader): string | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  const [headerPart = '', , signature = ''] = parts
  // fast-jwt (and base64 decoders in general) read base64url leniently, ignoring the unused low
  // bits of the last character, so four spellings of one signature would all pass. Only the one
  // we issue is accepted.
  if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) return undefined
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined
  const h = header as Record<string, unknown>
  if (!Object.keys(h).every((name) => HEADER_MEMBERS.has(name))) return undefined
  if (h.alg !== expected.alg || h.typ !== expected.typ || typeof h.kid !== 'string') return undefined
  return h.kid
}

// A jti of ours: 16 random bytes in base64url (22 characters); room for other issuers' formats.
export const JTI_PATTERN = /^[A-Za-z0-9_-]{16,64}$/

/**
 * The header of every access token the issuer signs (JWT_SIGNING=eddsa), with its kid: `at+jwt`
 * is RFC 9068's type for access tokens, so one cannot pass for another kind of JWT (RFC 8725 3.11).
 */
export const ACCESS_TOKEN_HEADER = { alg: 'EdDSA', typ: 'at+jwt' } as const
