import { createPublicKey, type KeyObject } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { SessionStoreUnavailableError } from './authenticator.ts'

/** An Ed25519 public key, imported once per fetch. */
export type VerifyKey = KeyObject

export type FetchReason = 'start' | 'interval' | 'unknown_kid' | 'keyless'

export interface JwksCacheOptions {
  /** JWKS_URL: configuration, never a URL a token names (no jku, no x5u, no iss-derived URL). */
  url: string
  /** Fetched again this often in the background (JWKS_REFRESH_SECONDS), never on a request's path. */
  refreshMs: number
  /** A kid not in the cache fetches again at most once per this (JWKS_COOLDOWN_SECONDS), counted from the last attempt, failed or not. */
  cooldownMs: number
  /** How long one fetch may take; a request waiting on an unknown kid waits at most this. */
  timeoutMs: number
  log: FastifyBaseLogger
  /** Each fetch, as it ends (metrics). */
  onFetch?: (reason: FetchReason, result: 'ok' | 'failed') => void
  /** The clock, in milliseconds; tests move their own. */
  now?: () => number
}

export interface JwksCache {
  /**
   * The key a kid names. An unknown kid fetches the set again (joined with any fetch in flight)
   * unless one was tried within the cooldown, then answers from whatever the cache holds:
   * undefined when the kid is still unknown. Throws SessionStoreUnavailableError only while no
   * key set was ever loaded: then nothing can be told.
   */
  keyFor (kid: string): Promise<VerifyKey | undefined>
  /** 'up' when the last fetch worked; 'down' when it failed (tokens are still verified from the cache). */
  status (): 'up' | 'down'
  /** The kids in the cache, in the set's order. */
  kids (): string[]
  /** Fetches now (joining a fetch in flight); true when the set was replaced. */
  refresh (reason: FetchReason): Promise<boolean>
  /** The first fetch (a failure is not fatal: a keyless server tries again every second), then the interval. */
  start (): Promise<void>
  close (): void
}

// The largest JWKS we read: an issuer's set holds two or three keys of about 150 bytes.
const MAX_JWKS_BYTES = 64 * 1024
// A keyless server (its first fetch failed: the issuer was not up yet) tries again this often.
const KEYLESS_RETRY_MS = 1000
const KID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/

/**
 * The issuer's public keys, fetched from JWKS_URL and kept in memory. Why not one of the two
 * well-kept caches. jose's createRemoteJWKSet (6.2): once its set is older than `cacheMaxAge` it
 * fetches on the request's path, and if that fetch fails the verification fails, so an issuer
 * down for longer than that fails every read (measured: the first verify after the issuer stopped
 * and the set went stale threw "fetch failed"); and its cooldown counts from the last *successful*
 * fetch, so while the issuer is down every token with an unknown kid fetches again. get-jwks (11),
 * the cache @fastify/jwt documents: it converts keys with jwk-to-pem, which knows RSA and EC, not
 * Ed25519; it fetches on every unknown kid, with no cooldown; its stale keys outlive their TTL by
 * one TTL only; and its `timeout` is no option of Node's fetch (measured: a hung issuer held a
 * lookup for as long as we waited). Here the set is refreshed only in the background or for an
 * unknown kid, at most once per cooldown from the last attempt, and a failed fetch keeps the set:
 * reads go on from the cache for as long as the issuer is away, which the access tokens' short
 * life (ACCESS_TTL_SECONDS) bounds.
 */
export function createJwksCache (options: JwksCacheOptions): JwksCache {
  const { url, refreshMs, cooldownMs, timeoutMs, log } = options
  const now = options.now ?? Date.now
  const onFetch = options.onFetch ?? (() => {})
  let keys = new Map<string, VerifyKey>()
  let loaded = false
  let state: 'up' | 'down' = 'down'
  let lastAttempt = -Infinity
  let lastError = ''
  let pending: Promise<boolean> | undefined
  let interval: NodeJS.Timeout | undefined
  let keylessRetry: NodeJS.Timeout | undefined
  let closed = false

  async function fetchSet (): Promise<Map<string, VerifyKey>> {
    // redirect 'error': the set comes from the URL configured, not from wherever it points.
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error', headers: { accept: 'application/jwk-set+json, application/json' } })
    if (res.status !== 200) {
      await res.body?.cancel()
      throw new Error(`JWKS_URL answered ${res.status}`)
    }
    return importSet(JSON.parse(await readCapped(res)) as unknown, keys, log)
  }

  function refresh (reason: FetchReason): Promise<boolean> {
    if (pending !== undefined) return pending
    lastAttempt = now()
    pending = fetchSet().then((next) => {
      keys = next
      loaded = true
      if (state === 'down') log.info({ jwks: url, kids: [...next.keys()], reason }, 'JWKS loaded')
      else log.debug({ jwks: url, kids: [...next.keys()], reason }, 'JWKS refreshed')
      state = 'up'
      lastError = ''
      onFetch(reason, 'ok')
      return true
    }, (err: unknown) => {
      state = 'down'
      const message = err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err)
      // Once per distinct error, not once per attempt.
      if (message !== lastError) log.warn({ jwks: url, err: message, reason, kept: [...keys.keys()] }, loaded ? 'JWKS fetch failed: verifying with the keys already held' : 'JWKS fetch failed: no keys yet')
      lastError = message
      onFetch(reason, 'failed')
      return false
    }).finally(() => {
      pending = undefined
      if (!loaded) scheduleKeylessRetry()
    })
    return pending
  }

  function scheduleKeylessRetry (): void {
    if (closed || keylessRetry !== undefined) return
    keylessRetry = setTimeout(() => {
      keylessRetry = undefined
      if (!loaded) refresh('keyless').catch(() => {})
    }, KEYLESS_RETRY_MS)
    keylessRetry.unref()
  }

  return {
    async keyFor (kid) {
      const known = keys.get(kid)
      if (known !== undefined) return known
      // A kid we do not hold: a key published since our last refresh, or a forgery. Either way
      // one fetch, shared by every request that asks meanwhile, at most once per cooldown.
      if (pending !== undefined) await pending
      else if (now() - lastAttempt >= cooldownMs) await refresh('unknown_kid')
      if (!loaded) throw new SessionStoreUnavailableError(new Error(`no keys from ${url} yet`))
      return keys.get(kid)
    },
    status: () => state,
    kids: () => [...keys.keys()],
    refresh,
    async start () {
      await refresh('start')
      interval = setInterval(() => { refresh('interval').catch(() => {}) }, refreshMs)
      interval.unref()
    },
    close () {
      closed = true
      clearInterval(interval)
      clearTimeout(keylessRetry)
    }
  }
}

/** The body as text, refused past MAX_JWKS_BYTES. */
async function readCapped (res: Response): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0')
  if (declared > MAX_JWKS_BYTES) {
    await res.body?.cancel()
    throw new Error(`the JWKS is ${declared} bytes, more than ${MAX_JWKS_BYTES}`)
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body ?? []) {
    size += (chunk as Uint8Array).byteLength
    if (size > MAX_JWKS_BYTES) throw new Error(`the JWKS is more than ${MAX_JWKS_BYTES} bytes`)
    chunks.push(chunk as Uint8Array)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * The Ed25519 signing keys of a JWKS, by kid; a key held already under the same kid, with the
 * same public value, is kept as the same object (a verifier made for it stays good). A key is taken only if it is exactly what the
 * issuer publishes: kty OKP, crv Ed25519, alg EdDSA (or none), use sig (or none), a kid, and no
 * private part; others are skipped with a warning. A set with no usable key, or one that is not
 * a set, is a failed fetch: the keys held are kept.
 */
function importSet (body: unknown, held: ReadonlyMap<string, VerifyKey>, log: FastifyBaseLogger): Map<string, VerifyKey> {
  const list = (body as { keys?: unknown } | null)?.keys
  if (!Array.isArray(list)) throw new Error('the JWKS has no "keys" array')
  const keys = new Map<string, VerifyKey>()
  for (const jwk of list as unknown[]) {
    const k = jwk as Record<string, unknown> | null
    const kid = k?.kid
    const problem = k === null || typeof k !== 'object'
      ? 'not an object'
      : 'd' in k
        ? 'it holds a private part (d): the issuer is publishing its private key'
        : k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string'
          ? `kty ${String(k.kty)} crv ${String(k.crv)}: only Ed25519 (OKP) keys are used`
          : (k.alg !== undefined && k.alg !== 'EdDSA') || (k.use !== undefined && k.use !== 'sig')
              ? `alg ${String(k.alg)} use ${String(k.use)}: only EdDSA signing keys are used`
              : typeof kid !== 'string' || !KID_PATTERN.test(kid)
                ? 'no usable kid'
                : keys.has(kid) ? `kid ${kid} twice` : undefined
    if (problem !== undefined) {
      log[problem.includes('private') ? 'error' : 'warn']({ kid: typeof kid === 'string' ? kid : undefined }, `JWKS key skipped: ${problem}`)
      continue
    }
    const x = k?.x as string
    const same = held.get(kid as string)
    if (same !== undefined && (same.export({ format: 'jwk' }) as { x?: string }).x === x) {
      keys.set(kid as string, same)
      continue
    }
    try {
      // Node's own JWK import checks the point is an Ed25519 public key.
      keys.set(kid as string, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' }))
    } catch (err) {
      log.warn({ kid, err: (err as Error).message }, 'JWKS key skipped: it does not import as an Ed25519 public key')
    }
  }
  if (keys.size === 0) throw new Error('the JWKS holds no usable Ed25519 key')
  return keys
}
