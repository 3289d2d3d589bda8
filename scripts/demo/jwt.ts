import { createHmac, randomBytes, sign, timingSafeEqual, type KeyObject } from 'node:crypto'

/** What anyone holding a JWT can read from it: no key needed. */
export interface DecodedJwt {
  parts: [string, string, string]
  header: Record<string, unknown>
  payload: Record<string, unknown>
  /** The payload exactly as its bytes decode, for showing and for editing one character. */
  payloadText: string
}

export function decodeJwt (token: string): DecodedJwt {
  const parts = token.split('.')
  if (parts.length !== 3) throw new Error('a JWT has three parts separated by dots')
  const [header = '', payload = '', signature = ''] = parts
  const payloadText = Buffer.from(payload, 'base64url').toString('utf8')
  return {
    parts: [header, payload, signature],
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(payloadText) as Record<string, unknown>,
    payloadText
  }
}

/** HMAC-SHA256 over `header.payload`, as HS256 defines the signature. */
export function hs256 (signingInput: string, secret: string): string {
  return createHmac('sha256', secret).update(signingInput).digest('base64url')
}

/** Whether the token's signature is the HMAC of its first two parts under `secret`. */
export function signatureMatches (token: string, secret: string): boolean {
  const { parts } = decodeJwt(token)
  const expected = Buffer.from(hs256(`${parts[0]}.${parts[1]}`, secret))
  const actual = Buffer.from(parts[2])
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

export interface Tampered {
  token: string
  /** The character's index in the payload's JSON text. */
  at: number
  from: string
  to: string
  payloadBefore: string
  payloadAfter: string
}

/**
 * Changes one character of the payload, the first digit of `exp` (pushing the
 * expiry decades ahead), and keeps the original signature: what someone who
 * edits a token sends.
 */
export function tamperExp (token: string): Tampered {
  const { parts, payloadText } = decodeJwt(token)
  const match = /"exp":(\d)/.exec(payloadText)
  if (match === null) throw new Error('the token has no exp claim')
  const at = match.index + '"exp":'.length
  const from = payloadText[at] ?? '0'
  const to = from === '9' ? '8' : String(Number(from) + 1)
  const payloadAfter = payloadText.slice(0, at) + to + payloadText.slice(at + 1)
  return {
    token: `${parts[0]}.${Buffer.from(payloadAfter).toString('base64url')}.${parts[2]}`,
    at,
    from,
    to,
    payloadBefore: payloadText,
    payloadAfter
  }
}

/** The same header and claims, signed with a random secret that no server holds. */
export function signWithWrongSecret (token: string): string {
  const { parts } = decodeJwt(token)
  return `${parts[0]}.${parts[1]}.${hs256(`${parts[0]}.${parts[1]}`, randomBytes(48).toString('base64url'))}`
}

/** The same claims with `alg: none` and no signature at all: the oldest JWT trick. */
export function unsigned (token: string): string {
  const { parts } = decodeJwt(token)
  return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${parts[1]}.`
}

const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A token with this header and these claims, its HS256 signature keyed with `key`: whatever bytes the signer holds. */
export function signHs256 (header: Record<string, unknown>, claims: Record<string, unknown>, key: string | Buffer): string {
  const input = `${part(header)}.${part(claims)}`
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
}

/** A token with this header and these claims, signed with an Ed25519 private key (alg EdDSA, RFC 8037). */
export function signEd25519 (header: Record<string, unknown>, claims: Record<string, unknown>, privateKey: KeyObject): string {
  const input = `${part(header)}.${part(claims)}`
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`
}

/**
 * The claims of `token` made over for another user: `sub` replaced, a fresh `jti`, issued now and
 * living `lifetimeSeconds`; `iss`, `aud` and anything else kept as the real token had them.
 */
export function claimsFor (token: string, sub: string, lifetimeSeconds: number): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { ...decodeJwt(token).payload, sub, jti: randomBytes(16).toString('base64url'), iat: now, exp: now + lifetimeSeconds }
}
