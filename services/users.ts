import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number, options: { N: number, r: number, p: number }) => Promise<Buffer>

// OWASP's scrypt floor (N=2^17 is their first choice; 2^14 keeps logins under load tests cheap
// while still costing an attacker 16 MiB and tens of milliseconds per guess).
const SCRYPT = { N: 2 ** 14, r: 8, p: 1 }
const KEY_LENGTH = 32

/** The post's "database": three demo users. Passwords live here only to be hashed at start. */
export const DEMO_USERS: Readonly<Record<string, string>> = {
  alice: 'wonderland',
  bob: 'builder',
  carol: 'lighthouse'
}

interface PasswordHash { salt: Buffer, hash: Buffer }

async function hashPassword (password: string): Promise<PasswordHash> {
  const salt = randomBytes(16)
  return { salt, hash: await scryptAsync(password, salt, KEY_LENGTH, SCRYPT) }
}

export interface UserStore {
  /** Resolves to the username when the pair matches, or null, taking the same time for an unknown user. */
  verify (username: string, password: string): Promise<string | null>
}

export async function createUserStore (users: Readonly<Record<string, string>> = DEMO_USERS): Promise<UserStore> {
  const hashes = new Map<string, PasswordHash>()
  for (const [name, password] of Object.entries(users)) hashes.set(name, await hashPassword(password))
  // An unknown user is checked against a real hash too, so the answer's timing does not say which users exist.
  const decoy = await hashPassword(randomBytes(16).toString('hex'))

  return {
    async verify (username, password) {
      const stored = hashes.get(username)
      const { salt, hash } = stored ?? decoy
      const candidate = await scryptAsync(password, salt, KEY_LENGTH, SCRYPT)
      return timingSafeEqual(candidate, hash) && stored !== undefined ? username : null
    }
  }
}
