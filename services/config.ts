import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { hostname } from 'node:os'
import { Type } from 'typebox'
import { ConfigError, readEnv } from '../lib/config.ts'
import { AUTH_MODES, type AuthMode } from './auth/modes.ts'
import { publicSecretProblem } from './published-secrets.ts'
import { RedisEnv, redisSettings, type RedisSettings } from './redis-config.ts'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** JWT_SIGNING's values: the shared HMAC secret (the default), or an issuer's Ed25519 keys. */
export const JWT_SIGNINGS = ['hs256', 'eddsa'] as const
export type JwtSigning = typeof JWT_SIGNINGS[number]
export const SESSION_CACHES = ['none', 'redis', 'local'] as const
export type SessionCacheKind = typeof SESSION_CACHES[number]
export const SESSION_CACHE_INVALIDATIONS = ['none', 'pubsub'] as const
/** The most a renewal waits when SESSION_RENEW_EVERY_SECONDS is unset. */
const DEFAULT_RENEW_EVERY_MS = 60_000
const seconds = (max: number, what: string, fallback: number) =>
  Type.Integer({ minimum: 1, maximum: max, default: fallback, description: `must be a whole number of seconds from 1 to ${max}${what}` })
const count = (fallback: number) =>
  Type.Integer({ minimum: 1, maximum: 1_000_000, default: fallback, description: 'must be a whole number from 1 to 1000000' })

/** Every variable the app server reads, with its default: what Compose and .env.example must offer (test/docker checks). */
export const ServerEnvSchema = Type.Object({
  AUTH_MODE: Type.Union(AUTH_MODES.map((m) => Type.Literal(m)), { default: 'jwt' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'must be a port number from 0 to 65535' }),
  HOST: Type.String({ default: '127.0.0.1' }),
  SERVER_ID: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$', default: hostname(), description: 'must be 1 to 64 letters, digits, dots, dashes or underscores' }),
  // REDIS_URL, REDIS_KEY_PREFIX, REDIS_COMMAND_TIMEOUT_MS, REDIS_SENTINELS, REDIS_SENTINEL_NAME,
  // REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT_MS: shared with the issuer (./redis-config.ts).
  ...RedisEnv,
  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://', default: 'postgres://postgres@127.0.0.1:5432/postgres', description: 'must be a postgres:// or postgresql:// URL' }),
  // Read only in postgres mode, and only when DATABASE_URL holds no password: a mounted Secret, kept out of the environment.
  DATABASE_PASSWORD_FILE: Type.Optional(Type.String()),
  // The whole of one store call: waiting for a pooled connection, then the query.
  PG_QUERY_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 10000, default: 500, description: 'must be a whole number of milliseconds from 10 to 10000' }),
  PG_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 100, default: 4, description: 'must be a whole number from 1 to 100' }),
  // postgres mode's cache in front of the sessions table (auth/stores/cached.ts): none, a shared
  // Redis (REDIS_URL), or a bounded LRU in each server.
  SESSION_CACHE: Type.Union(SESSION_CACHES.map((c) => Type.Literal(c)), { default: 'none' }),
  SESSION_CACHE_TTL_SECONDS: seconds(86400, ' (a day)', 60),
  SESSION_CACHE_MAX_ENTRIES: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10_000, description: 'must be a whole number from 1 to 10000000' }),
  // No default here: unset, it is 60 s or half SESSION_IDLE_SECONDS, whichever is less (loadServerConfig).
  SESSION_RENEW_EVERY_SECONDS: Type.Optional(Type.Integer({ minimum: 1, maximum: 2592000, description: 'must be a whole number of seconds from 1 to 2592000 (30 days)' })),
  // The local cache only: how a logout on one server reaches the others' caches.
  SESSION_CACHE_INVALIDATION: Type.Union(SESSION_CACHE_INVALIDATIONS.map((c) => Type.Literal(c)), { default: 'pubsub' }),
  JWT_SECRET: Type.Optional(Type.String()),
  JWT_SECRETS: Type.Optional(Type.String()),
  // Read only when neither of the two above is set: Compose mounts the secret its keygen service made here.
  JWT_SECRET_FILE: Type.Optional(Type.String()),
  JWT_CLOCK_TOLERANCE_SECONDS: Type.Integer({ minimum: 0, maximum: 60, default: 5, description: 'must be a whole number of seconds from 0 to 60' }),
  JWT_REVOCATION: Type.Union([Type.Literal('off'), Type.Literal('redis')], { default: 'off' }),
  // cookie mode's keys, in the same three forms as the JWT's.
  COOKIE_SECRET: Type.Optional(Type.String()),
  COOKIE_SECRETS: Type.Optional(Type.String()),
  COOKIE_SECRET_FILE: Type.Optional(Type.String()),
  // jwt mode's signing: hs256, the secret every server shares (the post's), or eddsa, where an
  // issuer process alone holds private keys and the app servers verify with its JWKS.
  JWT_SIGNING: Type.Union(JWT_SIGNINGS.map((s) => Type.Literal(s)), { default: 'hs256' }),
  // eddsa: where the issuer publishes its public keys. Configuration, never taken from a token.
  JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$', description: 'must be an http:// or https:// URL, e.g. http://127.0.0.1:3100/.well-known/jwks.json' })),
  JWKS_REFRESH_SECONDS: seconds(3600, ' (an hour)', 60),
  JWKS_COOLDOWN_SECONDS: seconds(3600, ' (an hour)', 30),
  SESSION_TTL_SECONDS: seconds(2592000, ' (30 days)', 3600),
  SESSION_IDLE_SECONDS: seconds(2592000, ' (30 days)', 900),
  LOGIN_THROTTLE_WINDOW_SECONDS: seconds(86400, ' (a day)', 60),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: count(5),
  LOGIN_MAX_FAILURES_PER_ADDRESS: count(20),
  // No default here: it follows the mode (loadServerConfig), so a server that already uses Redis shares its counters.
  LOGIN_THROTTLE_STORE: Type.Optional(Type.Union([Type.Literal('memory'), Type.Literal('redis')])),
  // Loopback and private ranges, as Rails trusts by default: the balancer reaches the app servers
  // from one of these (127.0.0.1 locally, a private address in Compose).
  TRUST_PROXY: Type.String({ default: 'loopback,uniquelocal' }),
  MAX_MEMORY_SESSIONS: Type.Integer({ minimum: 1, default: 1_000_000, description: 'must be a positive whole number' }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' })
})

/**
 * One shared secret with its name: a JWT's HMAC key (`kid` in the token header picks it) or a
 * cookie key (cookie mode derives its encryption key and key id from it).
 */
export interface SecretKey { kid: string, secret: string }
export type JwtKey = SecretKey

export interface AppConfig {
  mode: AuthMode
  serverId: string
  /** Absolute lifetime of a session or token, from login. */
  sessionTtlSeconds: number
  /** A session unused this long ends (memory, redis and postgres; a JWT has only its absolute exp). Never more than the TTL. */
  sessionIdleSeconds: number
  memory: { maxSessions: number }
  /** Redis: where (one server, or the primary the Sentinels name), every command's bound, and WAIT. */
  redis: RedisSettings
  /** postgres mode: the database, how long one store call may take in all, and how many connections each server keeps. */
  postgres: { url: string, queryTimeoutMs: number, poolSize: number }
  /**
   * postgres mode: a cache in front of the sessions table (auth/stores/cached.ts). An entry lives
   * `ttlSeconds` at most; a session read from it renews its idle end in the database at most
   * every `renewEveryMs` (so it may end up to that much before SESSION_IDLE_SECONDS after its
   * last use, never after); the local cache holds `maxEntries` per server and hears of logouts
   * on other servers through PostgreSQL's NOTIFY (`invalidation: 'pubsub'`) or not at all.
   */
  sessionCache: { kind: SessionCacheKind, ttlSeconds: number, maxEntries: number, renewEveryMs: number, invalidation: 'none' | 'pubsub' }
  jwt: {
    /**
     * Tokens are signed with keys[0]; every key listed is accepted until it is removed. A new key
     * is added last on every server first, then moved to the front (two passes; see README).
     */
    keys: JwtKey[]
    issuer: string
    audience: string
    clockToleranceSeconds: number
    /** 'redis': logout records the token's jti in Redis until its exp, and every server checks it. */
    revocation: 'off' | 'redis'
    /** hs256: the shared secrets above. eddsa: no secret here; the issuer's public keys from `jwks`. */
    signing: JwtSigning
    /** eddsa: where the public keys are, and how often they are fetched again. */
    jwks?: JwksSettings
  }
  cookie: {
    /** Values are sealed with keys[0]; every key listed opens them until it is removed (the same two passes as jwt.keys). */
    keys: SecretKey[]
  }
  /**
   * Failed logins allowed per account and per client address in each window, before a 429;
   * counted in this process (memory) or in Redis at redis.url, shared by every server.
   */
  loginThrottle: { windowSeconds: number, maxFailuresPerAccount: number, maxFailuresPerAddress: number, store: 'memory' | 'redis' }
  /** Addresses (or loopback, linklocal, uniquelocal, or CIDR ranges) whose X-Forwarded-For is believed. */
  trustProxy: string[]
}

/** Where an app server in eddsa mode finds the issuer's public keys (auth/jwks-cache.ts). */
export interface JwksSettings {
  url: string
  /** Fetched again this often, in the background; the issuer signs with a new key only after this (and a margin). */
  refreshSeconds: number
  /** A token naming a kid not in the cache fetches the set again, at most once per this. */
  cooldownSeconds: number
}

export interface ServerConfig extends AppConfig {
  port: number
  host: string
  logLevel: string
}

/** The JWT claims every server signs and insists on; not secret, so not configurable per server. */
export const JWT_ISSUER = 'auth-cluster'
export const JWT_AUDIENCE = 'auth-cluster-api'
/** The floor for every shared secret, JWT or cookie: 256 bits, the size of the keys made from it. */
export const MIN_SECRET_BYTES = 32
export const MIN_JWT_SECRET_BYTES = MIN_SECRET_BYTES
/** The kid a lone JWT_SECRET gets: JWT_SECRET=s is the same as JWT_SECRETS=default:s. */
export const DEFAULT_KID = 'default'
const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/
const TRUST_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

export function loadServerConfig (env: Record<string, string | undefined>): ServerConfig {
  const e = readEnv(ServerEnvSchema, env)
  const problems: string[] = []
  const eddsa = e.AUTH_MODE === 'jwt' && e.JWT_SIGNING === 'eddsa'
  const keys = e.AUTH_MODE === 'jwt' && !eddsa ? parseKeys(JWT_KEY_VARIABLES, e.JWT_SECRET, e.JWT_SECRETS, e.JWT_SECRET_FILE, problems) : []
  const cookieKeys = e.AUTH_MODE === 'cookie' ? parseKeys(COOKIE_KEY_VARIABLES, e.COOKIE_SECRET, e.COOKIE_SECRETS, e.COOKIE_SECRET_FILE, problems) : []
  if (eddsa) eddsaProblems(e, problems)
  const trustProxy = parseTrustProxy(e.TRUST_PROXY, problems)
  const databaseUrl = e.AUTH_MODE === 'postgres' ? withPasswordFrom(e.DATABASE_URL, e.DATABASE_PASSWORD_FILE, problems) : e.DATABASE_URL
  const sessionIdleSeconds = Math.min(e.SESSION_IDLE_SECONDS, e.SESSION_TTL_SECONDS)
  const renewEveryMs = renewEvery(e.SESSION_CACHE, e.SESSION_RENEW_EVERY_SECONDS, sessionIdleSeconds, problems)
  if (e.SESSION_CACHE !== 'none' && e.AUTH_MODE !== 'postgres') {
    problems.push(`SESSION_CACHE=${e.SESSION_CACHE} caches postgres mode's sessions, and AUTH_MODE is ${e.AUTH_MODE}: set AUTH_MODE=postgres, or SESSION_CACHE=none`)
  }
  const redis = redisSettings(e, problems)
  if (problems.length > 0) throw new ConfigError(problems)
  const usesRedis = e.AUTH_MODE === 'redis' || (e.AUTH_MODE === 'jwt' && e.JWT_REVOCATION === 'redis')
  return {
    mode: e.AUTH_MODE,
    port: e.PORT,
    host: e.HOST,
    serverId: e.SERVER_ID,
    logLevel: e.LOG_LEVEL,
    sessionTtlSeconds: e.SESSION_TTL_SECONDS,
    sessionIdleSeconds,
    memory: { maxSessions: e.MAX_MEMORY_SESSIONS },
    redis,
    postgres: { url: databaseUrl, queryTimeoutMs: e.PG_QUERY_TIMEOUT_MS, poolSize: e.PG_POOL_SIZE },
    sessionCache: { kind: e.SESSION_CACHE, ttlSeconds: e.SESSION_CACHE_TTL_SECONDS, maxEntries: e.SESSION_CACHE_MAX_ENTRIES, renewEveryMs, invalidation: e.SESSION_CACHE_INVALIDATION },
    jwt: {
      keys,
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      clockToleranceSeconds: e.JWT_CLOCK_TOLERANCE_SECONDS,
      revocation: e.JWT_REVOCATION,
      signing: e.JWT_SIGNING,
      ...(eddsa && e.JWKS_URL !== undefined ? { jwks: { url: e.JWKS_URL, refreshSeconds: e.JWKS_REFRESH_SECONDS, cooldownSeconds: e.JWKS_COOLDOWN_SECONDS } } : {})
    },
    cookie: { keys: cookieKeys },
    loginThrottle: {
      windowSeconds: e.LOGIN_THROTTLE_WINDOW_SECONDS,
      maxFailuresPerAccount: e.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      maxFailuresPerAddress: e.LOGIN_MAX_FAILURES_PER_ADDRESS,
      store: e.LOGIN_THROTTLE_STORE ?? (usesRedis ? 'redis' : 'memory')
    },
    trustProxy
  }
}

const GENERATE = 'e.g. $(openssl rand -base64 48)'

/** The names of one mode's three key variables, and what a leaked key lets anyone do. */
interface KeyVariables {
  mode: AuthMode
  single: string
  list: string
  file: string
  /** Ends the sentence "anyone can ...". */
  leak: string
}

const JWT_KEY_VARIABLES: KeyVariables = { mode: 'jwt', single: 'JWT_SECRET', list: 'JWT_SECRETS', file: 'JWT_SECRET_FILE', leak: 'sign tokens with it that your servers accept' }
const COOKIE_KEY_VARIABLES: KeyVariables = { mode: 'cookie', single: 'COOKIE_SECRET', list: 'COOKIE_SECRETS', file: 'COOKIE_SECRET_FILE', leak: 'read every session cookie made with it, and make ones your servers accept' }

/**
 * An app server in eddsa mode verifies only: it must know where the JWKS is, and must hold no
 * secret at all (one that could sign would undo the point of an issuer). JWT_SECRET_FILE is not
 * read in this mode (Compose names it for every mode), so it is not refused.
 */
function eddsaProblems (e: { JWKS_URL?: string | undefined, JWT_SECRET?: string | undefined, JWT_SECRETS?: string | undefined, JWT_REVOCATION: string }, problems: string[]): void {
  if (e.JWKS_URL === undefined) {
    problems.push('JWKS_URL is required in jwt mode with JWT_SIGNING=eddsa: where the issuer publishes its public keys, e.g. JWKS_URL=http://127.0.0.1:3100/.well-known/jwks.json')
  }
  for (const name of ['JWT_SECRET', 'JWT_SECRETS'] as const) {
    if (e[name] !== undefined) problems.push(`${name} is set, but with JWT_SIGNING=eddsa an app server holds no secret (it verifies with the issuer's public keys from JWKS_URL): unset ${name}`)
  }
  if (e.JWT_REVOCATION === 'redis') {
    problems.push('JWT_REVOCATION=redis is for JWT_SIGNING=hs256: with eddsa, access tokens live ACCESS_TTL_SECONDS (the issuer\'s) and logout revokes the refresh token family; set JWT_REVOCATION=off')
  }
}

/**
 * JWT_SECRETS=kid:secret,kid:secret (the first signs, all verify) or JWT_SECRET=secret (one key,
 * kid "default"), or, with neither set, JWT_SECRET_FILE: a file holding the secret. cookie mode
 * reads COOKIE_SECRETS, COOKIE_SECRET and COOKIE_SECRET_FILE the same way (the first seals).
 * Secrets are never echoed in a message: only their position, kid and length.
 */
function parseKeys (names: KeyVariables, single: string | undefined, list: string | undefined, file: string | undefined, problems: string[]): SecretKey[] {
  if (single !== undefined && list !== undefined) {
    problems.push(`${names.single} and ${names.list} are both set: set only one (${names.single}=s is the same as ${names.list}=default:s)`)
    return []
  }
  if (list === undefined) {
    if (single === undefined) {
      if (file !== undefined) return keyFromFile(names, file, problems)
      problems.push(`${names.single} is required in ${names.mode} mode: set it to the same random value (at least ${MIN_SECRET_BYTES} bytes) on every server, ${GENERATE.replace('e.g. ', `e.g. ${names.single}=`)}; or set ${names.list}=kid:secret,... to rotate keys`)
      return []
    }
    const problem = secretProblem(names, single)
    if (problem !== undefined) {
      problems.push(`${names.single} ${problem}${problem.startsWith('must') ? '' : `; or leave ${names.single} unset: npm start makes one per run, and Compose one per cluster when .env leaves it empty`}`)
      return []
    }
    return [{ kid: DEFAULT_KID, secret: single }]
  }
  const keys: SecretKey[] = []
  const entries = list.split(',')
  entries.forEach((entry, index) => {
    const where = `${names.list} entry ${index + 1} of ${entries.length}`
    const colon = entry.indexOf(':')
    const kid = colon === -1 ? '' : entry.slice(0, colon).trim()
    const secret = colon === -1 ? '' : entry.slice(colon + 1).trim()
    const problem = secretProblem(names, secret)
    if (colon === -1 || !KID_PATTERN.test(kid)) {
      problems.push(`${where} must be kid:secret, the kid 1 to 64 letters, digits, dots, dashes or underscores (e.g. ${names.list}=2026-11:newsecret,2026-10:oldsecret)`)
    } else if (problem !== undefined) {
      problems.push(`${where} (kid ${JSON.stringify(kid)}): the secret ${problem}`)
    } else if (keys.some((k) => k.kid === kid)) {
      problems.push(`${where}: the kid ${JSON.stringify(kid)} is listed twice; each key needs its own kid`)
    } else {
      keys.push({ kid, secret })
    }
  })
  return keys
}

/** Too short, or one anybody could know: what is wrong with a secret, ending with how to make one. */
function secretProblem (names: KeyVariables, secret: string): string | undefined {
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) return `must be at least ${MIN_SECRET_BYTES} bytes (got ${Buffer.byteLength(secret)}), ${GENERATE}`
  const known = publicSecretProblem(secret, names.leak)
  return known === undefined ? undefined : `${known}. Make your own, the same on every server: openssl rand -base64 48`
}

/** The secret in a file (Compose's keygen service writes one to a shared volume), without its trailing newline. */
function keyFromFile (names: KeyVariables, path: string, problems: string[]): SecretKey[] {
  let secret: string
  try {
    secret = readFileSync(path, 'utf8').trim()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    problems.push(`${names.file}: cannot read ${path} (${code}); set it to a readable file holding the secret, or set ${names.single} instead`)
    return []
  }
  if (secret === '') {
    problems.push(`${names.file}: ${path} is empty; write a secret into it (${GENERATE}), or set ${names.single} instead`)
    return []
  }
  const problem = secretProblem(names, secret)
  if (problem !== undefined) {
    problems.push(`${names.file} (${path}): the secret ${problem}`)
    return []
  }
  return [{ kid: DEFAULT_KID, secret }]
}

/**
 * DATABASE_URL with the password DATABASE_PASSWORD_FILE holds (its first line), when that is
 * set: a file, like JWT_SECRET_FILE, so the password is not in the process's environment.
 */
function withPasswordFrom (url: string, file: string | undefined, problems: string[]): string {
  if (file === undefined) return url
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    problems.push('DATABASE_URL is not a URL (postgres://user@host:5432/database)')
    return url
  }
  if (parsed.password !== '') {
    problems.push('DATABASE_URL holds a password and DATABASE_PASSWORD_FILE is set too: set only one')
    return url
  }
  let password: string
  try {
    password = readFileSync(file, 'utf8').split('\n')[0]?.trim() ?? ''
  } catch (err) {
    problems.push(`DATABASE_PASSWORD_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); set it to a readable file holding the database password, or leave it unset`)
    return url
  }
  if (password === '') {
    problems.push(`DATABASE_PASSWORD_FILE: ${file} is empty; write the database password into it, or leave it unset`)
    return url
  }
  parsed.password = encodeURIComponent(password)
  return parsed.toString()
}

/**
 * How often a cached session renews its idle end in the database, at most. It must be shorter
 * than the idle timeout: a session renewed only every SESSION_IDLE_SECONDS or more would end
 * while in use (its idle end passes before its next renewal). Unset: 60 s, or half the idle
 * timeout when that is shorter.
 */
function renewEvery (cache: SessionCacheKind, seconds: number | undefined, idleSeconds: number, problems: string[]): number {
  if (seconds === undefined) return Math.min(DEFAULT_RENEW_EVERY_MS, idleSeconds * 500)
  if (cache !== 'none' && seconds >= idleSeconds) {
    problems.push(`SESSION_RENEW_EVERY_SECONDS (${seconds}) must be less than the idle timeout, SESSION_IDLE_SECONDS (${idleSeconds}): a session renewed that seldom would end while in use. A tenth of it or less keeps the idle timeout within 10%`)
  }
  return seconds * 1000
}

/** TRUST_PROXY: comma-separated IP addresses, CIDR ranges, or loopback / linklocal / uniquelocal. */
export function parseTrustProxy (value: string, problems: string[]): string[] {
  const entries = value.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const bad = entries.filter((entry) => {
    if (TRUST_NAMES.has(entry)) return false
    const [address = '', bits, ...rest] = entry.split('/')
    const family = isIP(address)
    if (family === 0 || rest.length > 0) return true
    if (bits === undefined) return false
    const n = Number(bits)
    return !/^\d+$/.test(bits) || n > (family === 4 ? 32 : 128)
  })
  if (entries.length === 0 || bad.length > 0) {
    problems.push(`TRUST_PROXY must be a comma-separated list of addresses or CIDR ranges of the proxies in front of this server, or loopback, linklocal, uniquelocal (got ${JSON.stringify(value)})`)
  }
  return entries
}
