import { createHmac, randomBytes } from 'node:crypto'

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** Builds a JWT by hand, signed with HMAC-SHA256 over whatever header and claims a test wants. */
export function forgeJwt (claims: Record<string, unknown>, secret: string, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT', kid: 'default' }): string {
  const signingInput = `${b64(header)}.${b64(claims)}`
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`
}

/** Claims our servers accept, before a test spoils one of them. */
export function validClaims (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { sub: 'alice', jti: randomBytes(16).toString('base64url'), iss: 'auth-cluster', aud: 'auth-cluster-api', iat: now, exp: now + 600, ...overrides }
}

/** Replaces the payload of a real token while keeping its signature: what an attacker who edits a token sends. */
export function withEditedPayload (token: string, edit: (claims: Record<string, unknown>) => Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.')
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>
  return `${header}.${b64(edit(claims))}.${signature}`
}

export function unsignedJwt (claims: Record<string, unknown>): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`
}
