import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { hostname } from 'node:os'
import { Type } from 'typebox'
import { ConfigError, readEnv } from '../lib/config.ts'
import { AUTH_MODES, type AuthMode } from './auth/modes.ts'
import { publicSecretProblem } from './published-secrets.ts'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** JWT_SIGNING's values: the shared HMAC secret (the default), or an issuer's Ed25519 keys. */
export const JWT_SIGNINGS = ['hs256', 'eddsa'] as const
export type JwtSigning = typeof JWT_SIGNINGS[number]
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
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379', description: 'must be a redis:// or rediss:// URL' }),
  REDIS_KEY_PREFIX: Type.String({ default: 'session:' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 10000, default: 500, description: 'must be a whole number of milliseconds from 10 to 10000' }),
  JWT_SECRET: Type.Optional(Type.String()),
  JWT_SECRETS: Type.Optional(Type.String()),
  // Read only when neither of the two above is set: Compose mounts the secret its keygen service made here.
  JWT_SECRET_FILE: Type.Optional(Type.String()),
  JWT_CLOCK_TOLERANCE_SECONDS: Type.Integer({ minimum: 0, maximum: 60, default: 5, description: 'must be a whole number of seconds from 0 to 60' }),
  JWT_REVOCATION: Type.Union([Type.Literal('off'), Type.Literal('redis')], { default: 'off' }),
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

/** One HMAC key: `kid` names it in the token header so a server knows which key to check with. */
export interface JwtKey { kid: string, secret: string }

export interface AppConfig {
  mode: AuthMode
  serverId: string
  /** Absolute lifetime of a session or token, from login. */
  sessionTtlSeconds: number
  /** A session unused this long ends (memory and redis; a JWT has only its absolute exp). Never more than the TTL. */
  sessionIdleSeconds: number
  memory: { maxSessions: number }
  redis: { url: string, keyPrefix: string, commandTimeoutMs: number }
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
export const MIN_JWT_SECRET_BYTES = 32
/** The kid a lone JWT_SECRET gets: JWT_SECRET=s is the same as JWT_SECRETS=default:s. */
export const DEFAULT_KID = 'default'
const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/
const TRUST_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

export function loadServerConfig (env: Record<string, string | undefined>): ServerConfig {
  const e = readEnv(ServerEnvSchema, env)
  const problems: string[] = []
  const eddsa = e.AUTH_MODE === 'jwt' && e.JWT_SIGNING === 'eddsa'
  const needsKeys = e.AUTH_MODE === 'jwt' && !eddsa
  const keys = needsKeys ? parseJwtKeys(e.JWT_SECRET, e.JWT_SECRETS, e.JWT_SECRET_FILE, problems) : []
  if (eddsa) eddsaProblems(e, problems)
  const trustProxy = parseTrustProxy(e.TRUST_PROXY, problems)
  if (problems.length > 0) throw new ConfigError(problems)
  const usesRedis = e.AUTH_MODE === 'redis' || (e.AUTH_MODE === 'jwt' && e.JWT_REVOCATION === 'redis')
  return {
    mode: e.AUTH_MODE,
    port: e.PORT,
    host: e.HOST,
    serverId: e.SERVER_ID,
    logLevel: e.LOG_LEVEL,
    sessionTtlSeconds: e.SESSION_TTL_SECONDS,
    sessionIdleSeconds: Math.min(e.SESSION_IDLE_SECONDS, e.SESSION_TTL_SECONDS),
    memory: { maxSessions: e.MAX_MEMORY_SESSIONS },
    redis: { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX, commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS },
    jwt: {
      keys,
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      clockToleranceSeconds: e.JWT_CLOCK_TOLERANCE_SECONDS,
      revocation: e.JWT_REVOCATION,
      signing: e.JWT_SIGNING,
      ...(eddsa && e.JWKS_URL !== undefined ? { jwks: { url: e.JWKS_URL, refreshSeconds: e.JWKS_REFRESH_SECONDS, cooldownSeconds: e.JWKS_COOLDOWN_SECONDS } } : {})
    },
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
 * kid "default"), or, with neither set, JWT_SECRET_FILE: a file holding the secret.
 * Secrets are never echoed in a message: only their position, kid and length.
 */
function parseJwtKeys (single: string | undefined, list: string | undefined, file: string | undefined, problems: string[]): JwtKey[] {
  if (single !== undefined && list !== undefined) {
    problems.push('JWT_SECRET and JWT_SECRETS are both set: set only one (JWT_SECRET=s is the same as JWT_SECRETS=default:s)')
    return []
  }
  if (list === undefined) {
    if (single === undefined) {
      if (file !== undefined) return keyFromFile(file, problems)
      problems.push(`JWT_SECRET is required in jwt mode: set it to the same random value (at least ${MIN_JWT_SECRET_BYTES} bytes) on every server, ${GENERATE.replace('e.g. ', 'e.g. JWT_SECRET=')}; or set JWT_SECRETS=kid:secret,... to rotate keys`)
      return []
    }
    const problem = secretProblem(single)
    if (problem !== undefined) {
      problems.push(`JWT_SECRET ${problem}${problem.startsWith('must') ? '' : '; or leave JWT_SECRET unset: npm start makes one per run, and Compose one per cluster when .env leaves it empty'}`)
      return []
    }
    return [{ kid: DEFAULT_KID, secret: single }]
  }
  const keys: JwtKey[] = []
  const entries = list.split(',')
  entries.forEach((entry, index) => {
    const where = `JWT_SECRETS entry ${index + 1} of ${entries.length}`
    const colon = entry.indexOf(':')
    const kid = colon === -1 ? '' : entry.slice(0, colon).trim()
    const secret = colon === -1 ? '' : entry.slice(colon + 1).trim()
    const problem = secretProblem(secret)
    if (colon === -1 || !KID_PATTERN.test(kid)) {
      problems.push(`${where} must be kid:secret, the kid 1 to 64 letters, digits, dots, dashes or underscores (e.g. JWT_SECRETS=2026-11:newsecret,2026-10:oldsecret)`)
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
function secretProblem (secret: string): string | undefined {
  if (Buffer.byteLength(secret) < MIN_JWT_SECRET_BYTES) return `must be at least ${MIN_JWT_SECRET_BYTES} bytes (got ${Buffer.byteLength(secret)}), ${GENERATE}`
  const known = publicSecretProblem(secret)
  return known === undefined ? undefined : `${known}. Make your own, the same on every server: openssl rand -base64 48`
}

/** The secret in a file (Compose's keygen service writes one to a shared volume), without its trailing newline. */
function keyFromFile (path: string, problems: string[]): JwtKey[] {
  let secret: string
  try {
    secret = readFileSync(path, 'utf8').trim()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    problems.push(`JWT_SECRET_FILE: cannot read ${path} (${code}); set it to a readable file holding the secret, or set JWT_SECRET instead`)
    return []
  }
  if (secret === '') {
    problems.push(`JWT_SECRET_FILE: ${path} is empty; write a secret into it (${GENERATE}), or set JWT_SECRET instead`)
    return []
  }
  const problem = secretProblem(secret)
  if (problem !== undefined) {
    problems.push(`JWT_SECRET_FILE (${path}): the secret ${problem}`)
    return []
  }
  return [{ kid: DEFAULT_KID, secret }]
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
