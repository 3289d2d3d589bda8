/**
 * Every JWT secret this repository has shown in a file a user could copy from, and where.
 * Anyone who has read the repository can sign tokens with these (or, as cookie keys, read and
 * make session cookies), so a server refuses to start with one as either (test/services/config-secrets.test.ts searches the repository for others).
 * The tests now make theirs at run time; a secret written out anywhere belongs on this list.
 */
export const PUBLISHED_JWT_SECRETS: ReadonlyMap<string, string> = new Map([
  ['demo-only-not-secret-replace-me-with-openssl-rand-base64-48', '.env.example\'s demo secret'],
  ['test-secret-0123456789-abcdefghijklmnopq', 'a test secret, test/helpers/service-app.ts'],
  ['another-secret-that-is-32-bytes-long!!', 'a test secret, test/services/auth/jwt.test.ts']
])

/**
 * Why a secret must not be used, in words that never repeat it; undefined for one that may.
 * `leak` ends the sentence "anyone can ...": what a known secret gives away in its mode.
 */
export function publicSecretProblem (secret: string, leak = 'sign tokens with it that your servers accept'): string | undefined {
  const where = PUBLISHED_JWT_SECRETS.get(secret.trim())
  if (where !== undefined) return `is published in this repository (${where}): anyone can ${leak}`
  // How the tests wrote theirs ('a'.repeat(32)); a key with no more entropy than its length.
  if (/^(.)\1*$/su.test(secret)) return 'is one character repeated: anyone can guess it'
  return undefined
}
