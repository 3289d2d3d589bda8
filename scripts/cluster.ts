import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { Strategy } from '../balancer/config.ts'
import type { AuthMode } from '../services/auth/authenticator.ts'
import type { JwtSigning, SessionCacheKind } from '../services/config.ts'
import { answerControlRequests } from './lib/cluster-control.ts'
import { compileCacheEnv } from './lib/compile-cache.ts'
import { ISSUER_ROUTES, issuerProcesses, makeKeysDir, rotateKey, type Issuer, type KeysDir } from './lib/issuers.ts'
import { ManagedProcess, isAddressInUse, type LogSink } from './lib/managed-process.ts'
import { checkPort, portRefusal } from './lib/ports.ts'
import { PostgresMissingError, startPostgresProcess, type PostgresProcess } from './lib/postgres-process.ts'
import { httpOk } from './lib/probes.ts'
import { startRedisHa, type RedisHa } from './lib/redis-ha.ts'
import { startRedisProcess, type RedisProcess } from './lib/redis-process.ts'

const SERVER_ENTRY = fileURLToPath(new URL('../services/server.ts', import.meta.url))
const BALANCER_ENTRY = fileURLToPath(new URL('../balancer/server.ts', import.meta.url))

export interface ClusterOptions {
  mode: AuthMode
  /** How many app servers; default 3. */
  servers?: number
  /** The balancer's port; default 0, a free one. */
  port?: number
  /** Use this Redis wherever the servers need one instead of starting a private redis-server. */
  redisUrl?: string
  /**
   * Wherever a private Redis would be started, start a primary, a replica and three Sentinels
   * instead (scripts/lib/redis-ha.ts), and have the servers (and issuers) find the primary
   * through the Sentinels (REDIS_SENTINELS). Refused with redisUrl, or where no Redis is used.
   */
  redisHa?: boolean
  /** postgres mode: use this database (DATABASE_URL) instead of starting a private PostgreSQL. */
  databaseUrl?: string
  /** postgres mode: SESSION_CACHE, a cache in front of the sessions table; 'redis' starts a private redis-server when no redisUrl is given. */
  sessionCache?: SessionCacheKind
  /** Shared by every server in jwt mode; default a fresh random one per cluster. */
  jwtSecret?: string
  /** jwt mode: JWT_SECRETS (kid:secret,... newest first) instead of one JWT_SECRET. */
  jwtSecrets?: string
  /** Shared by every server in cookie mode; default a fresh random one per cluster. */
  cookieSecret?: string
  /** cookie mode: COOKIE_SECRETS (kid:secret,... the first seals) instead of one COOKIE_SECRET. */
  cookieSecrets?: string
  /** jwt mode: JWT_REVOCATION=redis, so logout revokes tokens everywhere (starts a private redis-server when no redisUrl is given). */
  jwtRevocation?: boolean
  /**
   * jwt mode's JWT_SIGNING: hs256 (default), the secret every server shares; or eddsa: issuer
   * processes alone hold private keys (a temporary directory of this run's), the app servers get
   * only JWKS_URL, the balancer routes the issuer's paths to them, and a private redis-server
   * keeps their refresh tokens when no redisUrl is given.
   */
  signing?: JwtSigning
  /** eddsa: how many issuers (issuer-1 ... issuer-N), sharing the keys; default 1. */
  issuers?: number
  /** eddsa: extra environment for every issuer (ACCESS_TTL_SECONDS, REFRESH_TTL_SECONDS...). */
  issuerEnv?: Record<string, string>
  /** LOGIN_THROTTLE_STORE: where the servers count login attempts; default the servers' own (Redis when they use it). 'redis' starts a private redis-server when no redisUrl is given. */
  loginThrottleStore?: 'memory' | 'redis'
  sessionTtlSeconds?: number
  logLevel?: string
  /** How often the balancer checks its upstreams. */
  healthIntervalMs?: number
  /** How long a health check may take before the upstream counts as down. */
  healthTimeoutMs?: number
  /** How the balancer picks a server: round-robin (default) or sticky (a cookie pins each client). */
  strategy?: Strategy
  /** BALANCER_THREADS: the balancer's proxy on this many threads sharing its port; default 1. */
  balancerThreads?: number
  /** Extra environment for every app server. */
  serverEnv?: Record<string, string>
  /** Where the children's log lines go; default nowhere. */
  onLog?: LogSink
  /** Each child in a process group of its own (see ProcessSpec.ownProcessGroup): for a launcher that stops them on every signal. */
  ownProcessGroups?: boolean
}

export interface AppServer extends ManagedProcess {
  readonly id: string
  readonly url: string
  readonly port: number
  /**
   * Stops this server and starts it again on the same port with its environment changed (a
   * value of undefined removes the variable), as a deploy of new configuration would; the
   * change stays for later restarts. Resolves once it answers again.
   */
  restartWith (env: Record<string, string | undefined>): Promise<void>
}

export interface Cluster {
  readonly mode: AuthMode
  readonly strategy: Strategy
  /** The balancer's URL: where clients go. */
  readonly url: string
  readonly servers: AppServer[]
  readonly balancer: ManagedProcess
  /** The private redis-server, when this cluster started one. */
  readonly redis: RedisProcess | undefined
  /** redisHa: the primary, replica and Sentinels this cluster started (the servers' REDIS_SENTINELS is its sentinelList). */
  readonly redisHa: RedisHa | undefined
  /** The Redis the servers use: for sessions in redis mode, revoked tokens, or login attempts (or the issuers' refresh tokens). With redisHa, the first primary's URL: the servers ask the Sentinels instead. */
  readonly redisUrl: string | undefined
  /** The private PostgreSQL, when this cluster started one (postgres mode without databaseUrl). */
  readonly postgres: PostgresProcess | undefined
  /** The database the servers keep sessions in, in postgres mode. */
  readonly databaseUrl: string | undefined
  /** cookie mode's COOKIE_SECRET, when it has one. */
  readonly cookieSecret: string | undefined
  /** hs256: the secret every app server holds. Undefined in eddsa mode: nobody but the issuers holds anything. */
  readonly jwtSecret: string | undefined
  /** jwt mode's signing (undefined in the other modes). */
  readonly signing: JwtSigning | undefined
  /** eddsa: the issuers, named issuer-1 ... issuer-N; empty otherwise. */
  readonly issuers: Issuer[]
  /** eddsa: the directory of the issuers' private keys (removed by stop). */
  readonly keysDir: string | undefined
  /**
   * eddsa: a key rotation with no restart: a new key into the keys directory, the issuers told
   * (SIGHUP), signing once every app server can have fetched it (after their JWKS refresh
   * interval; `activateInSeconds` to say otherwise). Resolves with its kid and when it signs.
   */
  rotateIssuerKey (options?: { activateInSeconds?: number }): Promise<{ kid: string, signFrom: number }>
  /** Stops every process this cluster started; safe to call twice. */
  stop (): Promise<void>
}

/** Raised for what the user can fix: a port taken or needing privileges, a missing redis-server or PostgreSQL. */
export class LaunchError extends Error {
  override name = 'LaunchError'
}

/**
 * Starts a whole cluster as separate processes: a private redis-server or PostgreSQL when
 * needed, N app servers, and the balancer in front; resolves once every one
 * answers. On any failure it stops what it started and throws.
 */
export async function startCluster (options: ClusterOptions): Promise<Cluster> {
  const { mode, servers: count = 3, port = 0, logLevel = 'info', strategy = 'round-robin', onLog = () => {}, ownProcessGroups: ownProcessGroup = false } = options
  const started: ManagedProcess[] = []
  let keys: KeysDir | undefined
  let redisHa: RedisHa | undefined
  const stopAll = async (): Promise<void> => {
    // A private PostgreSQL is removed with its data directory.
    await Promise.all(started.splice(0).reverse().map(async (p) => { await ('remove' in p ? (p as PostgresProcess).remove() : p.stop()) }))
    // Its processes and its configuration directory.
    await redisHa?.stop()
  }

  try {
    if (port !== 0) {
      const check = await checkPort(port)
      if (!check.free) throw new LaunchError(portRefusal(port, check))
    }

    let redis: Cluster['redis']
    const signing = mode === 'jwt' ? options.signing ?? 'hs256' : undefined
    const eddsa = signing === 'eddsa'
    const revocation = mode === 'jwt' && options.jwtRevocation === true
    const sessionCache = mode === 'postgres' ? options.sessionCache : undefined
    // In eddsa mode Redis is the issuers' (refresh tokens, login counters), never the app servers'.
    const serversNeedRedis = mode === 'redis' || revocation || (!eddsa && options.loginThrottleStore === 'redis') || sessionCache === 'redis'
    const needsRedis = serversNeedRedis || eddsa
    let redisUrl = needsRedis ? options.redisUrl : undefined
    if (options.redisHa === true) {
      if (options.redisUrl !== undefined) throw new LaunchError('redisHa starts its own Redis primary, replica and Sentinels: it cannot be combined with a given Redis (REDIS_URL)')
      if (!needsRedis) throw new LaunchError(`redisHa: nothing in this cluster uses Redis (mode ${mode}); it applies to redis mode, jwt mode with revocation or eddsa, LOGIN_THROTTLE_STORE=redis or the redis session cache`)
    }
    if (needsRedis && redisUrl === undefined && options.redisHa === true) {
      redisHa = await startRedisHa(onLog, { ownProcessGroup })
      redisUrl = `redis://127.0.0.1:${redisHa.primary.port}`
    } else if (needsRedis && redisUrl === undefined) {
      redis = await startRedisProcess(onLog, { ownProcessGroup })
      started.push(redis)
      redisUrl = redis.url
    }
    // Through the Sentinels: REDIS_URL then only carries credentials and the database number.
    const sentinelEnv: Record<string, string> = redisHa === undefined ? {} : { REDIS_SENTINELS: redisHa.sentinelList, REDIS_SENTINEL_NAME: redisHa.name }
    let postgres: PostgresProcess | undefined
    let databaseUrl = mode === 'postgres' ? options.databaseUrl : undefined
    if (mode === 'postgres' && databaseUrl === undefined) {
      try {
        postgres = await startPostgresProcess(onLog)
      } catch (err) {
        throw err instanceof PostgresMissingError ? new LaunchError(err.message) : err
      }
      started.push(postgres)
      databaseUrl = postgres.url
    }

    // eddsa: the keys first, then the issuers, whose first one's JWKS the app servers are told of.
    const issuers: Issuer[] = []
    if (eddsa) {
      keys = await makeKeysDir()
      const starting = issuerProcesses({ count: options.issuers ?? 1, keysDir: keys.path, redisUrl: redisUrl as string, logLevel, env: { ...options.issuerEnv, ...sentinelEnv }, inheritedEnv: inheritedEnv(), onLog, ownProcessGroup })
      started.push(...starting)
      await Promise.all(starting.map(async (p) => await p.start()))
      for (const issuer of starting) {
        const issuerPort = issuer.reportedPort as number
        issuers.push(Object.assign(issuer, { url: `http://127.0.0.1:${issuerPort}`, port: issuerPort }))
      }
    }
    const jwksUrl = issuers[0] === undefined ? undefined : `${issuers[0].url}/.well-known/jwks.json`

    const jwtSecrets = mode === 'jwt' && !eddsa ? options.jwtSecrets : undefined
    const jwtSecret = mode === 'jwt' && !eddsa && jwtSecrets === undefined ? (options.jwtSecret ?? randomBytes(48).toString('base64url')) : undefined
    const cookieSecrets = mode === 'cookie' ? options.cookieSecrets : undefined
    const cookieSecret = mode === 'cookie' && cookieSecrets === undefined ? (options.cookieSecret ?? randomBytes(48).toString('base64url')) : undefined
    const servers: AppServer[] = []
    const starting: Array<ManagedProcess & Pick<AppServer, 'id' | 'restartWith'>> = []
    for (let i = 1; i <= count; i++) {
      const id = `app-${i}`
      const env: Record<string, string> = {
        ...inheritedEnv(),
        ...options.serverEnv,
        AUTH_MODE: mode,
        HOST: '127.0.0.1',
        SERVER_ID: id,
        LOG_LEVEL: logLevel,
        ...(options.sessionTtlSeconds !== undefined ? { SESSION_TTL_SECONDS: String(options.sessionTtlSeconds) } : {}),
        ...(redisUrl !== undefined && serversNeedRedis ? { REDIS_URL: redisUrl, ...sentinelEnv } : {}),
        ...(databaseUrl !== undefined ? { DATABASE_URL: databaseUrl } : {}),
        ...(sessionCache !== undefined ? { SESSION_CACHE: sessionCache } : {}),
        ...(jwtSecret !== undefined ? { JWT_SECRET: jwtSecret } : {}),
        ...(jwtSecrets !== undefined ? { JWT_SECRETS: jwtSecrets } : {}),
        ...(cookieSecret !== undefined ? { COOKIE_SECRET: cookieSecret } : {}),
        ...(cookieSecrets !== undefined ? { COOKIE_SECRETS: cookieSecrets } : {}),
        ...(revocation ? { JWT_REVOCATION: 'redis' } : {}),
        ...(options.loginThrottleStore !== undefined && !eddsa ? { LOGIN_THROTTLE_STORE: options.loginThrottleStore } : {}),
        // eddsa: where the public keys are, and nothing else: no secret, no key, no keys directory.
        ...(jwksUrl !== undefined ? { JWT_SIGNING: 'eddsa', JWKS_URL: jwksUrl } : {})
      }
      const proc: ManagedProcess = new ManagedProcess({
        name: id,
        command: process.execPath,
        args: [SERVER_ENTRY],
        env,
        // Each server binds a port the OS picks and reports it: no other process can take it
        // between our choosing and the server binding, as one picked here could be.
        portVariable: 'PORT',
        isReady: async () => await httpOk(`http://127.0.0.1:${String(proc.reportedPort)}/health`),
        ownProcessGroup
      }, onLog)
      const restartWith = async (changes: Record<string, string | undefined>): Promise<void> => {
        await proc.stop()
        proc.updateEnv(changes)
        await proc.start()
      }
      starting.push(Object.assign(proc, { id, restartWith }))
      started.push(proc)
    }
    await Promise.all(starting.map(async (s) => await s.start()))
    for (const server of starting) {
      // Known once it started; a restart asks for the same port again.
      const serverPort = server.reportedPort as number
      servers.push(Object.assign(server, { url: `http://127.0.0.1:${serverPort}`, port: serverPort }))
    }

    // The balancer reports its port like the servers: the one asked for, or (asked for 0) one the OS picks.
    const balancer: ManagedProcess = new ManagedProcess({
      name: 'balancer',
      command: process.execPath,
      args: [BALANCER_ENTRY],
      env: {
        ...inheritedEnv(),
        PORT: String(port),
        HOST: '127.0.0.1',
        UPSTREAMS: servers.map((s) => s.url).join(','),
        // eddsa: the issuer's paths to the issuer pool. The balancer knows pools and prefixes, not auth.
        ...(issuers.length > 0 ? { ROUTES: ISSUER_ROUTES, UPSTREAMS_ISSUER: issuers.map((i) => i.url).join(',') } : {}),
        LOG_LEVEL: logLevel,
        STRATEGY: strategy,
        ...(options.balancerThreads !== undefined ? { BALANCER_THREADS: String(options.balancerThreads) } : {}),
        ...(options.healthIntervalMs !== undefined ? { HEALTH_INTERVAL_MS: String(options.healthIntervalMs) } : {}),
        ...(options.healthTimeoutMs !== undefined ? { HEALTH_TIMEOUT_MS: String(options.healthTimeoutMs) } : {})
      },
      portVariable: 'PORT',
      isReady: async () => await httpOk(`http://127.0.0.1:${String(balancer.reportedPort)}/_balancer/stats`),
      // The dashboard's stop/start buttons reach this launcher through it.
      ipc: true,
      ownProcessGroup
    }, onLog)
    // The dashboard's Redis box is the sessions' (or the revocation list's): in eddsa mode Redis is
    // the issuers', which the dashboard does not draw yet, so it is not offered there.
    answerControlRequests(balancer, { mode, servers, redis: eddsa ? undefined : redis, postgres }, onLog)
    started.push(balancer)
    try {
      await balancer.start()
    } catch (err) {
      // A port the user asked for is never changed: taken (even after the check above, by a
      // process quicker than ours), it is the LaunchError that `npm start` exits 2 on.
      if (port !== 0 && isAddressInUse(err)) throw new LaunchError(portRefusal(port, { code: 'EADDRINUSE', message: (err as Error).message }))
      throw err
    }
    const url = `http://127.0.0.1:${balancer.reportedPort as number}`
    const keysDir = keys
    const ha = redisHa

    return {
      mode,
      strategy,
      url,
      servers,
      balancer,
      redis,
      redisHa: ha,
      redisUrl,
      postgres,
      databaseUrl,
      jwtSecret,
      cookieSecret,
      signing,
      issuers,
      keysDir: keysDir?.path,
      async rotateIssuerKey (rotation = {}) {
        if (keysDir === undefined) throw new Error('rotateIssuerKey: this cluster has no issuer (jwt mode with signing eddsa has)')
        return await rotateKey(keysDir.path, issuers, {
          jwksRefreshSeconds: Number(options.serverEnv?.JWKS_REFRESH_SECONDS ?? 60),
          clockToleranceSeconds: Number(options.serverEnv?.JWT_CLOCK_TOLERANCE_SECONDS ?? 5),
          activateInSeconds: rotation.activateInSeconds
        })
      },
      async stop () {
        // Whatever exits from here on was asked to: a server that closes on a signal of its own
        // while the balancer drains is not news (ManagedProcess.onUnexpectedExit).
        for (const p of [balancer, ...servers, ...issuers, ...(redis === undefined ? [] : [redis]), ...(postgres === undefined ? [] : [postgres])]) p.expectExit()
        // The balancer first, so no request lands on a server that is going away.
        await balancer.stop()
        await Promise.all(servers.map(async (s) => await s.stop()))
        await Promise.all(issuers.map(async (i) => await i.stop()))
        await redis?.stop()
        await ha?.stop()
        // Its data directory too: a private PostgreSQL is thrown away with its cluster.
        await postgres?.remove()
        keysDir?.remove()
      }
    }
  } catch (err) {
    await stopAll()
    keys?.remove()
    throw err
  }
}

/** Only what a Node child needs from the launcher's environment: not the user's AUTH_MODE or PORT. */
function inheritedEnv (): Record<string, string> {
  // NODE_OPTIONS stays out: a test runner's loaders (tap's) would slow every child's start for nothing.
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'NODE_EXTRA_CA_CERTS']
  const env: Record<string, string> = {}
  for (const key of keep) {
    const value = process.env[key]
    if (value !== undefined) env[key] = value
  }
  return { ...env, ...compileCacheEnv() }
}
