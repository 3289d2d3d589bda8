import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { linkSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'

// The issuer's Ed25519 keys, one file each in ISSUER_KEYS_DIR, and which of them signs and which
// are published, decided from the files and the clock alone: several issuers reading one
// directory agree without talking to each other.
//
// A key's life (RFC 7517 leaves rotation to us; this is the usual publish-then-sign schedule):
//   1. published: written with a `signFrom` in the future; in the JWKS at once, signing nothing,
//      so every app server can fetch it before any token needs it;
//   2. signing: from `signFrom` on, the newest key whose `signFrom` has come signs every token;
//   3. retired: once its successor has signed for ACCESS_TTL_SECONDS plus the clock tolerance,
//      the last token it signed has expired: out of the JWKS, and its file deleted.

/** A key's file: a private JWK (RFC 7517, RFC 8037) plus `signFrom`, in seconds since the epoch. */
export interface KeyFile {
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
  d: string
  kid: string
  alg: 'EdDSA'
  use: 'sig'
  signFrom: number
}

/** What the JWKS publishes of a key: the public part only (never `d`). */
export interface PublicJwk {
  kid: string
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
  alg: 'EdDSA'
  use: 'sig'
}

export interface IssuerKey {
  kid: string
  /** When it starts signing, in milliseconds since the epoch. */
  signFrom: number
  privateKey: KeyObject
  publicKey: KeyObject
  jwk: PublicJwk
  /** Its file's name in the directory. */
  file: string
}

const KEY_FILE = /^[A-Za-z0-9_-]+\.json$/

/**
 * RFC 7638's thumbprint of an Ed25519 public key (RFC 8037 3): the SHA-256 of its required
 * members in lexicographic order, no whitespace, base64url. A kid that names exactly one key,
 * whoever computes it.
 */
export function thumbprint (x: string): string {
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url')
}

/**
 * Makes a new Ed25519 key and writes it to `path` (a file name of your choosing, or, with
 * `intoDir`, `<kid>.json` in that directory), readable by its owner only. Written aside and
 * linked into place: a reader never sees half a key, and an existing file is never replaced.
 */
export async function writeNewKey (target: { intoDir: string } | { path: string }, signFromMs: number): Promise<{ kid: string, path: string, signFrom: number }> {
  const { privateKey } = generateKeyPairSync('ed25519')
  const jwk = privateKey.export({ format: 'jwk' }) as { kty: 'OKP', crv: 'Ed25519', x: string, d: string }
  // RFC 7638: the kid is the key's own thumbprint, so it names exactly one key, whoever made it.
  const kid = thumbprint(jwk.x)
  // Whole seconds, rounded up: a key never signs earlier than it was asked to.
  const signFrom = Math.ceil(signFromMs / 1000)
  const file: KeyFile = { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d, kid, alg: 'EdDSA', use: 'sig', signFrom }
  const path = 'intoDir' in target ? join(target.intoDir, `${kid}.json`) : target.path
  const aside = `${path}.${process.pid}.new`
  writeFileSync(aside, `${JSON.stringify(file)}\n`, { mode: 0o600 })
  try {
    linkSync(aside, path)
  } finally {
    unlinkSync(aside)
  }
  return { kid, path, signFrom: signFrom * 1000 }
}

/**
 * The seconds between publishing a key and signing with it: every app server must have fetched
 * it first. An issuer notices a new file within a second (it rescans, or at once on SIGHUP); an
 * app server fetches the JWKS every `jwksRefreshSeconds`, a fetch taking up to a second; and the
 * clocks may disagree by the tolerance.
 */
export function activationDelaySeconds (jwksRefreshSeconds: number, clockToleranceSeconds: number): number {
  return 1 + jwksRefreshSeconds + 1 + clockToleranceSeconds
}

/** Reads and checks one key file; throws an Error saying what is wrong with it. */
export async function readKeyFile (path: string): Promise<Omit<IssuerKey, 'file'>> {
  let parsed: Partial<KeyFile>
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<KeyFile>
  } catch (err) {
    throw new Error(`cannot read it as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (parsed.kty !== 'OKP' || parsed.crv !== 'Ed25519' || typeof parsed.x !== 'string' || typeof parsed.d !== 'string') {
    throw new Error('it is not an Ed25519 private key (a JWK with kty OKP, crv Ed25519, x and d)')
  }
  if (typeof parsed.signFrom !== 'number' || !Number.isInteger(parsed.signFrom) || parsed.signFrom < 0) {
    throw new Error('signFrom must be a whole number of seconds since the epoch')
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: parsed.x, d: parsed.d }, format: 'jwk' })
  } catch (err) {
    throw new Error(`its key does not import (${(err as Error).message})`)
  }
  // The public half is derived from the private one, never taken on trust from the file.
  const publicKey = createPublicKey(privateKey)
  const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x
  if (x !== parsed.x) throw new Error('its x is not the public half of its d')
  const kid = thumbprint(x)
  if (parsed.kid !== undefined && parsed.kid !== kid) throw new Error(`its kid ${JSON.stringify(parsed.kid)} is not the key's thumbprint (${kid})`)
  return { kid, signFrom: parsed.signFrom * 1000, privateKey, publicKey, jwk: { kid, kty: 'OKP', crv: 'Ed25519', x, alg: 'EdDSA', use: 'sig' } }
}

export interface KeyRingOptions {
  dir: string
  /** ACCESS_TTL_SECONDS plus the clock tolerance, in ms: how long a superseded key stays published. */
  retireAfterMs: number
  log: FastifyBaseLogger
  /** The clock, in milliseconds since the epoch; tests move their own. */
  now?: () => number
}

export interface KeyRing {
  /** The key that signs now: the newest whose signFrom has come (the earliest, if none has yet). */
  signing (): IssuerKey
  /** Every key not retired, oldest first: what the JWKS holds (future keys included). */
  published (): IssuerKey[]
  /** A published key by kid. */
  byKid (kid: string): IssuerKey | undefined
  /** Reads the directory again: new files are taken, removed ones dropped, retired ones deleted. */
  rescan (): Promise<void>
}

/**
 * The keys in `dir`, read now and again on every rescan. Throws when the directory cannot be
 * read or holds no usable key (the issuer cannot start without one); a bad file is skipped
 * with a warning naming it.
 */
export async function loadKeyRing (options: KeyRingOptions): Promise<KeyRing> {
  const { dir, retireAfterMs, log } = options
  const now = options.now ?? Date.now
  // By file name, with what the file was when read: a file replaced in place is read again.
  let loaded = new Map<string, { stamp: string, key: IssuerKey | undefined }>()
  let sorted: IssuerKey[] = []
  let lastSigning: string | undefined
  const warned = new Set<string>()

  async function rescan (): Promise<void> {
    const names = readdirSync(dir).filter((name) => KEY_FILE.test(name))
    const next = new Map<string, { stamp: string, key: IssuerKey | undefined }>()
    for (const name of names) {
      let stamp: string
      try {
        const stat = statSync(join(dir, name))
        stamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}`
      } catch {
        continue // deleted since the listing (another issuer retired it)
      }
      const before = loaded.get(name)
      if (before?.stamp === stamp) {
        next.set(name, before)
        continue
      }
      try {
        const key = { ...await readKeyFile(join(dir, name)), file: name }
        next.set(name, { stamp, key })
        if (before === undefined) log.info({ kid: key.kid, file: name, signFrom: new Date(key.signFrom).toISOString() }, 'issuer key found')
      } catch (err) {
        next.set(name, { stamp, key: undefined })
        if (!warned.has(`${name}:${stamp}`)) log.warn({ file: join(dir, name), err: (err as Error).message }, 'issuer key file skipped')
        warned.add(`${name}:${stamp}`)
      }
    }
    loaded = next
    // One kid may sit in two files (a copy): the first by name is kept.
    const byKid = new Map<string, IssuerKey>()
    for (const [, { key }] of [...loaded.entries()].sort(([a], [b]) => a < b ? -1 : 1)) if (key !== undefined && !byKid.has(key.kid)) byKid.set(key.kid, key)
    sorted = [...byKid.values()].sort((a, b) => a.signFrom - b.signFrom || (a.kid < b.kid ? -1 : 1))
    prune()
  }

  /** Index of the key signing at `at`: the last whose signFrom has come, or the first. */
  function signingIndex (at: number): number {
    let index = 0
    for (let i = 0; i < sorted.length; i++) if ((sorted[i] as IssuerKey).signFrom <= at) index = i
    return index
  }

  /**
   * How many of the oldest keys are retired: those whose successor has signed for retireAfterMs,
   * so that every token they signed has expired. Never the signing key (its successor, if any,
   * has not begun).
   */
  function retiredCount (at: number): number {
    let count = 0
    for (let i = 0; i + 1 < sorted.length; i++) {
      if ((sorted[i + 1] as IssuerKey).signFrom + retireAfterMs <= at) count = i + 1
    }
    return count
  }

  function published (): IssuerKey[] {
    return sorted.slice(retiredCount(now()))
  }

  function prune (): void {
    const at = now()
    const retired = sorted.slice(0, retiredCount(at))
    for (const key of retired) {
      try {
        unlinkSync(join(dir, key.file))
        log.info({ kid: key.kid, file: key.file }, 'issuer key retired: its last token has expired; file deleted')
      } catch (err) {
        // Another issuer deleted it first, or the directory is read-only (a Kubernetes Secret):
        // it stays retired all the same, by the same rule, on every issuer.
        const code = (err as NodeJS.ErrnoException).code
        if (code !== 'ENOENT' && !warned.has(`retired:${key.kid}`)) log.info({ kid: key.kid, file: key.file, code }, 'issuer key retired: its last token has expired (file kept: cannot delete it here)')
        warned.add(`retired:${key.kid}`)
      }
    }
  }

  await rescan()
  if (sorted.length === 0) throw new Error(`ISSUER_KEYS_DIR ${dir} holds no usable Ed25519 key: make one with node scripts/make-issuer-key.ts ${dir}`)

  return {
    signing () {
      const at = now()
      const key = sorted[signingIndex(at)] as IssuerKey
      if (key.kid !== lastSigning) {
        if (lastSigning !== undefined) log.info({ kid: key.kid, previous: lastSigning }, 'issuer key now signing')
        lastSigning = key.kid
      }
      return key
    },
    published,
    byKid: (kid) => published().find((k) => k.kid === kid),
    rescan
  }
}
