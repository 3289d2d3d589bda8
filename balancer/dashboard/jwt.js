// base64url and JWTs, enough to show a token's parts and to change one. This page never checks
// a signature: only the servers hold JWT_SECRET.
/* global atob, btoa, TextDecoder */

export function fromBase64url (text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4)
  const binary = atob(base64)
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)))
}

export function toBase64url (bytes) {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export function decodeJwt (token) {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  try {
    return { parts, header: JSON.parse(fromBase64url(parts[0])), payloadText: fromBase64url(parts[1]) }
  } catch {
    return null
  }
}
