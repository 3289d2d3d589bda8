import { BalancerEnvSchema, MAX_THREADS, STRATEGIES, type Strategy } from '../balancer/config.ts'
import { AUTH_MODES, type AuthMode } from '../services/auth/authenticator.ts'
import { JWT_SIGNINGS, SESSION_CACHES, ServerEnvSchema, type JwtSigning, type SessionCacheKind } from '../services/config.ts'
import { DEMO_USERS } from '../services/users.ts'
import { withoutPassword } from '../lib/safe-url.ts'
import { LaunchError, startCluster } from './cluster.ts'
import type { RedisHa } from './lib/redis-ha.ts'
import { parseCommandLine, wholeNumber } from './lib/cli.ts'
import { formatLogLine } from './lib/log-format.ts'

const USAGE = `Usage: npm start -- [--mode ${AUTH_MODES.join('|')}] [--signing hs256|eddsa] [--servers N] [--issuers N] [--port P] [--strategy round-robin|sticky] [--balancer-threads N] [--session-cache ${SESSION_CACHES.join('|')}] [--redis-ha] [--log-level LEVEL]

Starts N app servers as separate processes, the balancer in front of them on port P,
a private redis-server when the servers need Redis and REDIS_URL is unset (redis mode,
JWT_REVOCATION=redis, LOGIN_THROTTLE_STORE=redis, --session-cache redis, --signing eddsa), and a
private PostgreSQL in postgres mode when DATABASE_URL is unset (its data directory is deleted at exit).
  --mode           ${AUTH_MODES.join(', ')} (default jwt; or AUTH_MODE)
  --signing        jwt mode: hs256 (default; or JWT_SIGNING), every server holds the secret; or
                   eddsa: issuers alone hold Ed25519 keys (made for this run, removed on exit), the
                   app servers verify with their JWKS, access tokens live ACCESS_TTL_SECONDS (300)
                   and refresh tokens rotate (POST /token/refresh)
  --issuers        --signing eddsa: how many issuers, 1 to 8 (default 1)
  --servers        how many app servers, 1 to 32 (default 3)
  --port           the balancer's port (default 8080)
  --strategy       round-robin (default), or sticky: a cookie pins each client to one server
  --balancer-threads  threads the balancer proxies on, sharing its port, 1 to 64 (default 1;
                   or BALANCER_THREADS)
  --session-cache  postgres mode: none (default), redis (one shared cache), or local (one per
                   server, told of logouts through PostgreSQL's NOTIFY); or SESSION_CACHE
  --redis-ha       where a private Redis would start: a primary, a replica and three Sentinels
                   instead, the servers finding the primary through the Sentinels
                   (REDIS_SENTINELS), so losing the primary costs a failover, not the store
                   (docs/failover.md). Not with REDIS_URL, nor where no Redis is used
  --log-level      the servers' pino level (default info; or LOG_LEVEL)`

const { values: args, fail } = parseCommandLine(USAGE, {
  mode: { type: 'string', default: process.env.AUTH_MODE ?? 'jwt' },
  signing: { type: 'string' },
  issuers: { type: 'string' },
  servers: { type: 'string', default: '3' },
  port: { type: 'string', default: '8080' },
  strategy: { type: 'string', default: 'round-robin' },
  'balancer-threads': { type: 'string' },
  'session-cache': { type: 'string' },
  'redis-ha': { type: 'boolean', default: false },
  'log-level': { type: 'string' }
})
const mode = args.mode as AuthMode
if (!AUTH_MODES.includes(mode)) fail(`--mode must be one of ${AUTH_MODES.join(', ')} (got "${args.mode}")`)
const servers = wholeNumber(fail, 'servers', args.servers, 1, 32)
// JWT_SIGNING applies to jwt mode only; given as a flag with another mode it is a mistake.
if (args.signing !== undefined && mode !== 'jwt') fail(`--signing applies to --mode jwt (got --mode ${mode})`)
const signingName = args.signing ?? (mode === 'jwt' ? process.env.JWT_SIGNING : undefined) ?? 'hs256'
if (!(JWT_SIGNINGS as readonly string[]).includes(signingName)) fail(`${args.signing === undefined ? 'JWT_SIGNING' : '--signing'} must be one of ${JWT_SIGNINGS.join(', ')} (got "${signingName}")`)
const signing = signingName as JwtSigning
if (args.issuers !== undefined && signing !== 'eddsa') fail('--issuers needs --signing eddsa: only then is there an issuer')
const issuers = args.issuers === undefined ? 1 : wholeNumber(fail, 'issuers', args.issuers, 1, 8)
const port = Number(args.port)
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port must be a port number from 1 to 65535 (got "${args.port}")`)
const strategy = args.strategy as Strategy
if (!STRATEGIES.includes(strategy)) fail(`--strategy must be one of ${STRATEGIES.join(', ')} (got "${args.strategy}")`)
const threadsFrom = args['balancer-threads'] === undefined ? 'BALANCER_THREADS' : '--balancer-threads'
const threadsRaw = args['balancer-threads'] ?? (process.env.BALANCER_THREADS === '' ? undefined : process.env.BALANCER_THREADS) ?? '1'
const balancerThreads = Number(threadsRaw)
if (threadsRaw.trim() === '' || !Number.isInteger(balancerThreads) || balancerThreads < 1 || balancerThreads > MAX_THREADS) fail(`${threadsFrom} must be a whole number from 1 to ${MAX_THREADS} (got "${threadsRaw}")`)
const cacheFrom = args['session-cache'] === undefined ? 'SESSION_CACHE' : '--session-cache'
const sessionCache = (args['session-cache'] ?? (process.env.SESSION_CACHE === '' ? undefined : process.env.SESSION_CACHE) ?? 'none') as SessionCacheKind
if (!SESSION_CACHES.includes(sessionCache)) fail(`${cacheFrom} must be one of ${SESSION_CACHES.join(', ')} (got "${sessionCache}")`)
if (sessionCache !== 'none' && mode !== 'postgres') fail(`${cacheFrom}=${sessionCache} caches postgres mode's sessions: add --mode postgres (the mode is ${mode})`)
// --redis-ha replaces the private Redis: refused where none would start, before anything does.
const redisHa = args['redis-ha'] === true
if (redisHa) {
  const throttle = process.env.LOGIN_THROTTLE_STORE === 'redis' && signing !== 'eddsa'
  const usesRedis = mode === 'redis' || (mode === 'jwt' && (signing === 'eddsa' || process.env.JWT_REVOCATION === 'redis')) || throttle || sessionCache === 'redis'
  if (process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '') fail('--redis-ha starts its own primary, replica and Sentinels, but REDIS_URL is set: unset REDIS_URL, or leave out --redis-ha')
  if (!usesRedis) fail(`--redis-ha: nothing uses Redis with --mode ${mode}${mode === 'jwt' ? ` (signing ${signing})` : ''}: it applies to --mode redis, jwt with JWT_REVOCATION=redis or --signing eddsa, LOGIN_THROTTLE_STORE=redis, or --session-cache redis`)
}
// The levels both kinds of child accept, from their own config schemas: refused here, before
// anything starts, not by the first server to read it.
const levelsOf = (schema: { anyOf: ReadonlyArray<{ const: string }> }): string[] => schema.anyOf.map((l) => l.const)
const serverLevels = levelsOf(ServerEnvSchema.properties.LOG_LEVEL)
const logLevels = serverLevels.filter((l) => levelsOf(BalancerEnvSchema.properties.LOG_LEVEL).includes(l))
const logLevel = args['log-level'] ?? process.env.LOG_LEVEL ?? 'info'
if (!logLevels.includes(logLevel)) fail(`${args['log-level'] === undefined ? 'LOG_LEVEL' : '--log-level'} must be one of ${logLevels.join(', ')} (got "${logLevel}")`)

/** The app servers' tuning variables, handed on as set (each server validates them and names a bad one). */
function passedThrough (): Record<string, string> {
  return fromEnvironment(['SESSION_IDLE_SECONDS', 'JWT_CLOCK_TOLERANCE_SECONDS', 'LOGIN_THROTTLE_WINDOW_SECONDS',
    'LOGIN_MAX_FAILURES_PER_ACCOUNT', 'LOGIN_MAX_FAILURES_PER_ADDRESS', 'TRUST_PROXY', 'REDIS_COMMAND_TIMEOUT_MS',
    'REDIS_KEY_PREFIX', 'REDIS_WAIT_REPLICAS', 'REDIS_WAIT_TIMEOUT_MS', 'MAX_MEMORY_SESSIONS', 'LOGIN_THROTTLE_STORE', 'PG_QUERY_TIMEOUT_MS', 'PG_POOL_SIZE',
    'SESSION_CACHE_TTL_SECONDS', 'SESSION_CACHE_MAX_ENTRIES', 'SESSION_RENEW_EVERY_SECONDS', 'SESSION_CACHE_INVALIDATION', 'JWKS_REFRESH_SECONDS', 'JWKS_COOLDOWN_SECONDS'])
}

/** The issuers' tuning variables (--signing eddsa), handed on as set: each issuer validates them. */
function issuerPassedThrough (): Record<string, string> {
  return fromEnvironment(['ACCESS_TTL_SECONDS', 'REFRESH_TTL_SECONDS', 'REFRESH_IDLE_SECONDS', 'JWT_CLOCK_TOLERANCE_SECONDS',
    'LOGIN_THROTTLE_WINDOW_SECONDS', 'LOGIN_MAX_FAILURES_PER_ACCOUNT', 'LOGIN_MAX_FAILURES_PER_ADDRESS', 'LOGIN_THROTTLE_STORE',
    'TRUST_PROXY', 'REDIS_COMMAND_TIMEOUT_MS', 'REDIS_KEY_PREFIX', 'REDIS_WAIT_REPLICAS', 'REDIS_WAIT_TIMEOUT_MS'])
}

function fromEnvironment (names: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of names) {
    const value = process.env[name]
    if (value !== undefined && value !== '') env[name] = value
  }
  return env
}

// After SIGHUP the terminal is gone and every write to it fails (EIO; EPIPE for a closed pipe):
// that must not stop the launcher before it has stopped its children.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {})

const colour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined
const log = (source: string, line: string): void => { process.stdout.write(`${formatLogLine(source, line, colour)}\n`) }

// A signal during the start must not orphan what has started: exiting runs the
// launcher library's exit hook, which kills every child it spawned.
const onEarlySignal = (signal: NodeJS.Signals): void => {
  process.stderr.write(`\n${signal} while starting: stopping what had started.\n`)
  process.exit(1)
}
// SIGHUP too: the children have process groups of their own (below), so a closed terminal
// reaches only this process, which must stop them.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
for (const signal of SIGNALS) process.once(signal, onEarlySignal)

const eddsa = mode === 'jwt' && signing === 'eddsa'
process.stdout.write(`Starting ${servers} app server${servers === 1 ? '' : 's'}${eddsa ? ` and ${issuers} issuer${issuers === 1 ? '' : 's'}` : ''} in ${mode} mode${eddsa ? ' (signing eddsa)' : ''}...\n`)
let cluster
try {
  cluster = await startCluster({
    mode,
    servers,
    port,
    strategy,
    balancerThreads,
    redisUrl: process.env.REDIS_URL,
    redisHa,
    ...(process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '' ? { databaseUrl: process.env.DATABASE_URL } : {}),
    sessionCache,
    logLevel,
    ...(process.env.SESSION_TTL_SECONDS !== undefined ? { sessionTtlSeconds: Number(process.env.SESSION_TTL_SECONDS) } : {}),
    ...(process.env.JWT_SECRET !== undefined ? { jwtSecret: process.env.JWT_SECRET } : {}),
    ...(process.env.JWT_SECRETS !== undefined ? { jwtSecrets: process.env.JWT_SECRETS } : {}),
    ...(process.env.COOKIE_SECRET !== undefined ? { cookieSecret: process.env.COOKIE_SECRET } : {}),
    ...(process.env.COOKIE_SECRETS !== undefined ? { cookieSecrets: process.env.COOKIE_SECRETS } : {}),
    jwtRevocation: process.env.JWT_REVOCATION === 'redis',
    ...(mode === 'jwt' ? { signing } : {}),
    ...(eddsa ? { issuers, issuerEnv: issuerPassedThrough() } : {}),
    // Any other value is handed on as it is, for the servers to refuse by name.
    ...(process.env.LOGIN_THROTTLE_STORE === 'redis' || process.env.LOGIN_THROTTLE_STORE === 'memory' ? { loginThrottleStore: process.env.LOGIN_THROTTLE_STORE } : {}),
    serverEnv: passedThrough(),
    onLog: log,
    // Ctrl-C reaches this process alone, which stops the balancer (draining what is in flight),
    // then the servers: not every child at once, then each again.
    ownProcessGroups: true
  })
} catch (err) {
  process.stderr.write(`\nCould not start the cluster: ${(err as Error).message}\n`)
  process.exit(err instanceof LaunchError ? 2 : 1)
}

const running = cluster
for (const signal of SIGNALS) process.off(signal, onEarlySignal)
for (const server of [...running.servers, ...running.issuers]) {
  server.onUnexpectedExit = (code, signal) => log('launcher', JSON.stringify({ level: 40, time: Date.now(), msg: `${server.id} exited (${signal ?? `code ${String(code)}`}); the balancer will route around it` }))
}
running.balancer.onUnexpectedExit = (code, signal) => log('launcher', JSON.stringify({ level: 50, time: Date.now(), msg: `the balancer exited (${signal ?? `code ${String(code)}`}); press Ctrl-C and start again` }))

const lessons: Record<AuthMode, string> = {
  memory: 'each server keeps its own sessions: expect 2 of every 3 /feeds to be refused (unknown_session).',
  redis: 'every server reads sessions from Redis: every /feeds succeeds, at the cost of a round trip each.',
  postgres: 'every server reads sessions from PostgreSQL: every /feeds succeeds, one UPDATE ... RETURNING each (a read that writes).',
  jwt: eddsa
    ? `the issuer${issuers === 1 ? ' alone signs' : 's alone sign'} (Ed25519); the app servers verify with the public keys (JWKS) and hold no secret: every /feeds succeeds. Access tokens live ${process.env.ACCESS_TTL_SECONDS ?? '300'} s (ACCESS_TTL_SECONDS); POST /token/refresh for a new pair.`
    : 'every server checks the token\'s signature with the shared secret: every /feeds succeeds, no shared state.',
  cookie: 'the whole session is in the cookie, encrypted with a key every server holds: every /feeds succeeds, no shared state, nothing readable.'
}
const refreshHint = eddsa ? `    curl -s -b /tmp/jar -c /tmp/jar -X POST ${running.url}/token/refresh     # a new pair; the old refresh token is retired\n` : ''
const invalidation = process.env.SESSION_CACHE_INVALIDATION === 'none' ? 'none' : 'pubsub'
const cacheLessons: Record<Exclude<SessionCacheKind, 'none'>, string> = {
  redis: 'Session cache: redis, one shared cache in front of the table: most reads are a Redis GET, not an UPDATE.',
  local: invalidation === 'pubsub'
    ? 'Session cache: local, one per server, told of logouts on the others through PostgreSQL\'s NOTIFY.'
    : 'Session cache: local, one per server, told of nothing (SESSION_CACHE_INVALIDATION=none): after a logout the other servers accept the session until their entry is due.'
}
const users = Object.entries(DEMO_USERS).map(([u, p]) => `${u} / ${p}`).join(', ')
process.stdout.write(`
  Cluster up in ${mode} mode: ${lessons[mode]}${strategy === 'sticky' ? '\n  Sticky strategy: the balancer pins each client to one server with a cookie (lb).' : ''}${sessionCache === 'none' ? '' : `\n  ${cacheLessons[sessionCache]}`}

  dashboard  ${running.url}/_balancer/   (open it in a browser: live traffic, buttons, the JWT decoded)
  balancer   ${running.url}   (upstreams: ${running.url}/_balancer/stats)${balancerThreads > 1 ? `, on ${balancerThreads} threads` : ''}
${running.servers.map((s) => `  ${s.id.padEnd(9)}  ${s.url}`).join('\n')}
${running.issuers.map((i) => `  ${i.id.padEnd(9)}  ${i.url}   (JWKS: ${i.url}/.well-known/jwks.json)\n`).join('')}${running.keysDir !== undefined ? `  keys       ${running.keysDir}   (the issuers' private keys: removed on exit)\n` : ''}${running.redisHa !== undefined ? haLines(running.redisHa) : running.redis !== undefined ? `  redis      ${running.redis.url}   (private: removed on exit)\n` : running.redisUrl !== undefined ? `  redis      ${running.redisUrl}\n` : ''}${running.postgres !== undefined ? `  postgres   ${running.postgres.url}   (private, from ${running.postgres.binaries.source}; removed on exit with its data in ${running.postgres.dataDir})\n` : running.databaseUrl !== undefined ? `  postgres   ${withoutPassword(running.databaseUrl)}\n` : ''}
  Demo users: ${users}

  Try it:
    curl -s -c /tmp/jar -H 'content-type: application/json' -d '{"username":"alice","password":"wonderland"}' ${running.url}/login
    for i in 1 2 3 4 5 6; do curl -s -b /tmp/jar -c /tmp/jar ${running.url}/feeds; echo; done
${refreshHint}
  Ctrl-C stops everything.

`)

/** The --redis-ha processes, one line each, under the app servers. */
function haLines (ha: RedisHa): string {
  const nodes = [ha.primary, ha.replica, ...ha.sentinels]
  return `${nodes.map((n) => `  ${n.name.padEnd(13)}  redis://127.0.0.1:${n.port}${n === ha.primary ? '   (Sentinel name ' + ha.name + ')' : ''}`).join('\n')}\n  (REDIS_SENTINELS=${ha.sentinelList}; all private, removed on exit; kill redis-primary to watch a failover)\n`
}

let stopping = false
async function shutdown (signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  const stores = [running.redis !== undefined ? 'redis' : '', running.redisHa !== undefined ? 'the Redis primary, replica and Sentinels' : '', running.postgres !== undefined ? 'postgres' : ''].filter((s) => s !== '')
  process.stdout.write(`\n${signal}: stopping the balancer, the servers${running.issuers.length > 0 ? ', the issuers' : ''}${stores.map((s) => ` and ${s}`).join('')}...\n`)
  await running.stop()
  process.stdout.write('All stopped.\n')
  process.exit(0)
}
for (const signal of SIGNALS) {
  process.on(signal, () => {
    shutdown(signal).catch((err: unknown) => {
      process.stderr.write(`could not stop cleanly: ${String(err)}\n`)
      process.exit(1)
    })
  })
}
