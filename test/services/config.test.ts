import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError } from '../../lib/config.ts'
import { DEFAULT_KID, JWT_AUDIENCE, JWT_ISSUER, MIN_JWT_SECRET_BYTES, loadServerConfig } from '../../services/config.ts'

// Made per run: a secret written out in a test is one a user could copy, and the servers refuse those.
const SECRET_32 = randomBytes(24).toString('base64')

/** Runs loadServerConfig and returns the ConfigError it throws (fails the test if it does not). */
function refusal (t: Test, env: Record<string, string>): ConfigError | undefined {
  try {
    loadServerConfig(env)
  } catch (err) {
    t.type(err, ConfigError, 'a ConfigError, not some other error')
    return err as ConfigError
  }
  t.fail(`accepted ${JSON.stringify(env)}`)
  return undefined
}

t.test('defaults: jwt mode on port 3000 named after the host, one-hour sessions', async (t) => {
  const config = loadServerConfig({ JWT_SECRET: SECRET_32 })
  t.same(config, {
    mode: 'jwt',
    port: 3000,
    host: '127.0.0.1',
    serverId: hostname(),
    logLevel: 'info',
    sessionTtlSeconds: 3600,
    sessionIdleSeconds: 900,
    memory: { maxSessions: 1_000_000 },
    redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'session:', commandTimeoutMs: 500, sentinels: [], sentinelName: 'mymaster', waitReplicas: 0, waitTimeoutMs: 200 },
    postgres: { url: 'postgres://postgres@127.0.0.1:5432/postgres', queryTimeoutMs: 500, poolSize: 4 },
    sessionCache: { kind: 'none', ttlSeconds: 60, maxEntries: 10_000, renewEveryMs: 60_000, invalidation: 'pubsub' },
    jwt: { keys: [{ kid: DEFAULT_KID, secret: SECRET_32 }], issuer: JWT_ISSUER, audience: JWT_AUDIENCE, clockToleranceSeconds: 5, revocation: 'off', signing: 'hs256' },
    cookie: { keys: [] },
    loginThrottle: { windowSeconds: 60, maxFailuresPerAccount: 5, maxFailuresPerAddress: 20, store: 'memory' },
    trustProxy: ['loopback', 'uniquelocal']
  })
})

t.test('an empty variable counts as unset and gets the default', async (t) => {
  const config = loadServerConfig({ AUTH_MODE: '', PORT: '', SERVER_ID: '', SESSION_TTL_SECONDS: '', JWT_SECRET: SECRET_32 })
  t.equal(config.mode, 'jwt')
  t.equal(config.port, 3000)
  t.equal(config.serverId, hostname())
  t.equal(config.sessionTtlSeconds, 3600)
})

t.test('values are read from the env object given, as numbers where numbers are meant', async (t) => {
  const config = loadServerConfig({
    AUTH_MODE: 'redis',
    PORT: '8081',
    HOST: '0.0.0.0',
    SERVER_ID: 'app-7.eu_west-1',
    REDIS_URL: 'rediss://user:pw@redis.example:6380/2',
    REDIS_KEY_PREFIX: 'sess:',
    REDIS_COMMAND_TIMEOUT_MS: '250',
    SESSION_TTL_SECONDS: '60',
    MAX_MEMORY_SESSIONS: '10',
    LOG_LEVEL: 'warn'
  })
  t.equal(config.mode, 'redis')
  t.equal(config.port, 8081)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.serverId, 'app-7.eu_west-1')
  t.same(config.redis, { url: 'rediss://user:pw@redis.example:6380/2', keyPrefix: 'sess:', commandTimeoutMs: 250, sentinels: [], sentinelName: 'mymaster', waitReplicas: 0, waitTimeoutMs: 200 })
  t.equal(config.sessionTtlSeconds, 60)
  t.equal(config.memory.maxSessions, 10)
  t.equal(config.logLevel, 'warn')
})

t.test('a bad AUTH_MODE is refused, naming AUTH_MODE and the modes allowed', async (t) => {
  for (const value of ['cookies', 'MEMORY', 'jwt ', 'session']) {
    const err = refusal(t, { AUTH_MODE: value, JWT_SECRET: SECRET_32 })
    t.match(err?.problems, [/^AUTH_MODE must be one of memory, redis, postgres, jwt, cookie/], `AUTH_MODE=${JSON.stringify(value)}`)
    t.match(err?.message, 'AUTH_MODE')
  }
})

t.test('a bad PORT is refused, naming PORT', async (t) => {
  for (const value of ['abc', '70000', '65536', '-1', 'http']) {
    const err = refusal(t, { AUTH_MODE: 'memory', PORT: value })
    t.match(err?.problems, [/^PORT /], `PORT=${value}`)
    t.match(err?.message, /PORT must be a port number/)
  }
  t.equal(loadServerConfig({ AUTH_MODE: 'memory', PORT: '0' }).port, 0, 'port 0 (any free port) is allowed')
  t.equal(loadServerConfig({ AUTH_MODE: 'memory', PORT: '65535' }).port, 65535)
})

t.test('a bad SESSION_TTL_SECONDS is refused, naming SESSION_TTL_SECONDS', async (t) => {
  for (const value of ['0', '-5', 'soon', '2592001']) {
    const err = refusal(t, { AUTH_MODE: 'memory', SESSION_TTL_SECONDS: value })
    t.match(err?.problems, [/^SESSION_TTL_SECONDS /], `SESSION_TTL_SECONDS=${value}`)
  }
})

t.test('a bad SERVER_ID is refused, naming SERVER_ID', async (t) => {
  for (const value of ['has space', 'a/b', 'x'.repeat(65), 'é', 'a;b']) {
    const err = refusal(t, { AUTH_MODE: 'memory', SERVER_ID: value })
    t.match(err?.problems, [/^SERVER_ID must be 1 to 64 letters/], `SERVER_ID=${JSON.stringify(value)}`)
  }
  t.equal(loadServerConfig({ AUTH_MODE: 'memory', SERVER_ID: 'x'.repeat(64) }).serverId, 'x'.repeat(64), '64 characters is fine')
})

t.test('other bad variables are named too', async (t) => {
  t.match(refusal(t, { AUTH_MODE: 'memory', REDIS_URL: 'http://localhost:6379' })?.problems, [/^REDIS_URL /])
  t.match(refusal(t, { AUTH_MODE: 'memory', MAX_MEMORY_SESSIONS: '0' })?.problems, [/^MAX_MEMORY_SESSIONS /])
  t.match(refusal(t, { AUTH_MODE: 'memory', LOG_LEVEL: 'loud' })?.problems, [/^LOG_LEVEL must be one of/])
  t.match(refusal(t, { AUTH_MODE: 'memory', REDIS_COMMAND_TIMEOUT_MS: '5' })?.problems, [/^REDIS_COMMAND_TIMEOUT_MS /])
  t.match(refusal(t, { AUTH_MODE: 'postgres', DATABASE_URL: 'mysql://db/x' })?.problems, ['DATABASE_URL must be a postgres:// or postgresql:// URL (got "mysql://db/x")'])
  t.match(refusal(t, { AUTH_MODE: 'postgres', PG_QUERY_TIMEOUT_MS: '5' })?.problems, [/^PG_QUERY_TIMEOUT_MS must be a whole number of milliseconds from 10 to 10000/])
  t.match(refusal(t, { AUTH_MODE: 'postgres', PG_POOL_SIZE: '0' })?.problems, [/^PG_POOL_SIZE must be a whole number from 1 to 100/])
})

t.test('postgres mode: DATABASE_PASSWORD_FILE puts the password it holds into DATABASE_URL, or names what is wrong', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'database-password-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'password')
  writeFileSync(file, 'p@ss/word:1\n')
  const config = loadServerConfig({ AUTH_MODE: 'postgres', DATABASE_URL: 'postgres://auth@db:5432/sessions', DATABASE_PASSWORD_FILE: file })
  t.equal(config.postgres.url, 'postgres://auth:p%40ss%2Fword%3A1@db:5432/sessions', 'escaped, so any character may be in it')
  const { parse } = await import('pg-connection-string')
  t.equal(parse(config.postgres.url).password, 'p@ss/word:1', 'and pg reads it back as written')
  t.equal(loadServerConfig({ AUTH_MODE: 'memory', DATABASE_PASSWORD_FILE: join(dir, 'missing') }).mode, 'memory', 'read only in postgres mode')
  t.match(refusal(t, { AUTH_MODE: 'postgres', DATABASE_URL: 'postgres://auth:x@db/s', DATABASE_PASSWORD_FILE: file })?.problems, ['DATABASE_URL holds a password and DATABASE_PASSWORD_FILE is set too: set only one'])
  t.match(refusal(t, { AUTH_MODE: 'postgres', DATABASE_PASSWORD_FILE: join(dir, 'missing') })?.problems, [`DATABASE_PASSWORD_FILE: cannot read ${join(dir, 'missing')} (ENOENT); set it to a readable file holding the database password, or leave it unset`])
  writeFileSync(file, '\n')
  t.match(refusal(t, { AUTH_MODE: 'postgres', DATABASE_PASSWORD_FILE: file })?.problems, [`DATABASE_PASSWORD_FILE: ${file} is empty; write the database password into it, or leave it unset`])
})

t.test('postgres mode: the database, the timeout of a whole store call, the pool; login counters in memory unless told', async (t) => {
  const config = loadServerConfig({ AUTH_MODE: 'postgres', DATABASE_URL: 'postgresql://app:pw@db.example:5433/sessions', PG_QUERY_TIMEOUT_MS: '250', PG_POOL_SIZE: '8' })
  t.same(config.postgres, { url: 'postgresql://app:pw@db.example:5433/sessions', queryTimeoutMs: 250, poolSize: 8 })
  t.equal(config.loginThrottle.store, 'memory', 'no PostgreSQL throttle store: memory by default')
  t.equal(loadServerConfig({ AUTH_MODE: 'postgres', LOGIN_THROTTLE_STORE: 'redis' }).loginThrottle.store, 'redis', 'or Redis, when asked')
})

t.test('several bad variables are all reported at once', async (t) => {
  const err = refusal(t, { AUTH_MODE: 'memory', PORT: 'x', SERVER_ID: 'a b', SESSION_TTL_SECONDS: '0' })
  t.equal(err?.problems.length, 3)
  t.match(err?.message, /PORT[\s\S]*SERVER_ID[\s\S]*SESSION_TTL_SECONDS/)
})

t.test('fractional and hex numbers are refused, not truncated', async (t) => {
  t.match(refusal(t, { AUTH_MODE: 'memory', PORT: '3.5' })?.problems, [/^PORT must be a port number/])
  t.match(refusal(t, { AUTH_MODE: 'memory', SESSION_TTL_SECONDS: '1.5' })?.problems, [/^SESSION_TTL_SECONDS/])
  t.match(refusal(t, { AUTH_MODE: 'memory', PORT: '0x50' })?.problems, [/^PORT/])
})

t.test('jwt mode refuses to start without JWT_SECRET', async (t) => {
  const err = refusal(t, { AUTH_MODE: 'jwt' })
  t.match(err?.problems, [/^JWT_SECRET is required in jwt mode/])
  t.match(refusal(t, {})?.message, /JWT_SECRET/, 'jwt is the default mode, so no env at all is refused too')
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRET: '' })?.message, /JWT_SECRET is required/, 'an empty secret is no secret')
})

t.test(`jwt mode refuses a JWT_SECRET under ${MIN_JWT_SECRET_BYTES} bytes, counting bytes not characters`, async (t) => {
  const err = refusal(t, { AUTH_MODE: 'jwt', JWT_SECRET: 'a'.repeat(31) })
  t.match(err?.problems, [/^JWT_SECRET must be at least 32 bytes \(got 31\)/])
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET_32 }).jwt.keys, [{ kid: DEFAULT_KID, secret: SECRET_32 }], '32 bytes is enough')
  // 16 two-byte characters are 32 bytes; 15 of them and one ASCII letter are 31.
  const accented = [...randomBytes(16)].map((b) => String.fromCharCode(0xc0 + (b % 64))).join('')
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: accented }).jwt.keys, [{ kid: DEFAULT_KID, secret: accented }])
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRET: accented.slice(1) + 'a' })?.message, /JWT_SECRET must be at least 32 bytes \(got 31\)/)
})

t.test('memory and redis modes need no secret', async (t) => {
  t.equal(loadServerConfig({ AUTH_MODE: 'memory' }).mode, 'memory')
  t.equal(loadServerConfig({ AUTH_MODE: 'redis' }).mode, 'redis')
  t.equal(loadServerConfig({ AUTH_MODE: 'memory', JWT_SECRET: 'short' }).mode, 'memory', 'nor do they check one that is set')
})

t.test('the secret and the claims are the same on every server: they come from the env and constants only', async (t) => {
  const a = loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET_32, SERVER_ID: 'a' })
  const b = loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET_32, SERVER_ID: 'b' })
  t.same(a.jwt, b.jwt)
  t.same(a.jwt, { keys: [{ kid: 'default', secret: SECRET_32 }], issuer: 'auth-cluster', audience: 'auth-cluster-api', clockToleranceSeconds: 5, revocation: 'off', signing: 'hs256' })
})

const SECRET_B = randomBytes(30).toString('base64')

t.test('JWT_SECRETS: kid:secret pairs, newest first, each at least 32 bytes', async (t) => {
  const config = loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRETS: `2026-11:${SECRET_B}, 2026-10:${SECRET_32}` })
  t.same(config.jwt.keys, [{ kid: '2026-11', secret: SECRET_B }, { kid: '2026-10', secret: SECRET_32 }])
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRETS: `k:${SECRET_32}:with:colons` }).jwt.keys, [{ kid: 'k', secret: `${SECRET_32}:with:colons` }], 'only the first colon separates')
})

// Compose passes every variable, the unused ones empty (JWT_SECRETS: ${JWT_SECRETS:-}).
t.test('an empty JWT_SECRET or JWT_SECRETS is unset: the other one alone is the key set', async (t) => {
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET_32, JWT_SECRETS: '' }).jwt.keys, [{ kid: DEFAULT_KID, secret: SECRET_32 }])
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: '', JWT_SECRETS: `k:${SECRET_B}` }).jwt.keys, [{ kid: 'k', secret: SECRET_B }])
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRET: '', JWT_SECRETS: '' })?.problems, [/^JWT_SECRET is required in jwt mode/], 'both empty: no key at all')
  t.same(loadServerConfig({ AUTH_MODE: 'memory', JWT_SECRET: '', JWT_SECRETS: '' }).jwt.keys, [], 'memory mode needs neither')
})

t.test('bad JWT_SECRETS are named, by position and kid, without echoing a secret', async (t) => {
  const short = refusal(t, { AUTH_MODE: 'jwt', JWT_SECRETS: `new:${SECRET_B},old:tooshortsecret` })
  t.match(short?.problems, [/^JWT_SECRETS entry 2 of 2 \(kid "old"\): the secret must be at least 32 bytes \(got 14\)/])
  t.notMatch(short?.message, 'tooshortsecret', 'the secret itself is not in the message')
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRETS: SECRET_B })?.problems, [/^JWT_SECRETS entry 1 of 1 must be kid:secret/])
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRETS: `bad kid:${SECRET_B}` })?.problems, [/^JWT_SECRETS entry 1 of 1 must be kid:secret/])
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRETS: `a:${SECRET_B},a:${SECRET_32}` })?.problems, [/kid "a" is listed twice/])
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRETS: `a:${SECRET_B},` })?.problems, [/^JWT_SECRETS entry 2 of 2/], 'a trailing comma is an empty entry')
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET_32, JWT_SECRETS: `a:${SECRET_B}` })?.problems, [/JWT_SECRET and JWT_SECRETS are both set/])
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRETS: 'x:1,y:2' })?.problems.length, 2, 'every bad entry is reported')
})

t.test('session, throttle, clock and proxy settings', async (t) => {
  const config = loadServerConfig({
    AUTH_MODE: 'redis',
    SESSION_TTL_SECONDS: '600',
    SESSION_IDLE_SECONDS: '120',
    LOGIN_THROTTLE_WINDOW_SECONDS: '30',
    LOGIN_MAX_FAILURES_PER_ACCOUNT: '3',
    LOGIN_MAX_FAILURES_PER_ADDRESS: '10',
    JWT_CLOCK_TOLERANCE_SECONDS: '0',
    JWT_REVOCATION: 'redis',
    TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1,uniquelocal'
  })
  t.equal(config.sessionIdleSeconds, 120)
  t.same(config.loginThrottle, { windowSeconds: 30, maxFailuresPerAccount: 3, maxFailuresPerAddress: 10, store: 'redis' })
  t.equal(config.jwt.clockToleranceSeconds, 0)
  t.equal(config.jwt.revocation, 'redis')
  t.same(config.trustProxy, ['10.0.0.0/8', '127.0.0.1', '::1', 'uniquelocal'])
  t.equal(loadServerConfig({ AUTH_MODE: 'memory', SESSION_TTL_SECONDS: '60' }).sessionIdleSeconds, 60, 'the idle timeout never outlasts the absolute one')
})

t.test('LOGIN_THROTTLE_STORE: by default Redis where the server already uses it, memory elsewhere; either when set', async (t) => {
  const store = (env: Record<string, string>): string => loadServerConfig({ JWT_SECRET: SECRET_32, ...env }).loginThrottle.store
  t.equal(store({ AUTH_MODE: 'memory' }), 'memory')
  t.equal(store({ AUTH_MODE: 'jwt' }), 'memory')
  t.equal(store({ AUTH_MODE: 'redis' }), 'redis')
  t.equal(store({ AUTH_MODE: 'jwt', JWT_REVOCATION: 'redis' }), 'redis')
  t.equal(store({ AUTH_MODE: 'memory', JWT_REVOCATION: 'redis' }), 'memory', 'revocation is a jwt-mode setting')
  t.equal(store({ AUTH_MODE: 'jwt', LOGIN_THROTTLE_STORE: '' }), 'memory', 'empty is unset (Compose passes it so)')
  t.equal(store({ AUTH_MODE: 'memory', LOGIN_THROTTLE_STORE: 'redis' }), 'redis')
  t.equal(store({ AUTH_MODE: 'jwt', LOGIN_THROTTLE_STORE: 'redis' }), 'redis')
  t.equal(store({ AUTH_MODE: 'redis', LOGIN_THROTTLE_STORE: 'memory' }), 'memory', 'a redis-mode server may still count alone')
  t.match(refusal(t, { AUTH_MODE: 'memory', LOGIN_THROTTLE_STORE: 'postgres' })?.problems, [/^LOGIN_THROTTLE_STORE must be one of memory, redis \(got "postgres"\)/])
})

t.test('bad session, throttle, clock and proxy settings are named', async (t) => {
  t.match(refusal(t, { AUTH_MODE: 'memory', SESSION_IDLE_SECONDS: '0' })?.problems, [/^SESSION_IDLE_SECONDS /])
  t.match(refusal(t, { AUTH_MODE: 'memory', LOGIN_MAX_FAILURES_PER_ACCOUNT: '0' })?.problems, [/^LOGIN_MAX_FAILURES_PER_ACCOUNT /])
  t.match(refusal(t, { AUTH_MODE: 'memory', LOGIN_THROTTLE_WINDOW_SECONDS: 'soon' })?.problems, [/^LOGIN_THROTTLE_WINDOW_SECONDS /])
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET_32, JWT_CLOCK_TOLERANCE_SECONDS: '3600' })?.problems, [/^JWT_CLOCK_TOLERANCE_SECONDS /])
  t.match(refusal(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET_32, JWT_REVOCATION: 'yes' })?.problems, [/^JWT_REVOCATION must be one of off, redis/])
  for (const value of ['balancer', '10.0.0.0/33', '127.0.0.1/8/8', '1.2.3', '*']) {
    t.match(refusal(t, { AUTH_MODE: 'memory', TRUST_PROXY: value })?.problems, [/^TRUST_PROXY must be/], `TRUST_PROXY=${value}`)
  }
})
