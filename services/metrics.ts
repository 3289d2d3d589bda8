import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * One registry per app, not prom-client's global one, so a test can build
 * several apps in one process. Auth outcomes are counted here, on the server,
 * because a load generator only sees "non-2xx".
 */
export function createMetrics (serverId: string, mode: string) {
  const registry = new Registry()
  registry.setDefaultLabels({ server: serverId, mode })
  collectDefaultMetrics({ register: registry })

  return {
    registry,
    authOutcomes: new Counter({
      name: 'auth_outcomes_total',
      help: 'Authenticated requests by outcome (ok, unauthorized, unavailable) and refusal reason',
      labelNames: ['outcome', 'reason'] as const,
      registers: [registry]
    }),
    logins: new Counter({
      name: 'auth_logins_total',
      help: 'Login attempts by result (ok, invalid_credentials, throttled, unavailable)',
      labelNames: ['result'] as const,
      registers: [registry]
    }),
    authDuration: new Histogram({
      name: 'auth_duration_seconds',
      help: 'Time spent deciding whether a credential is valid (the auth step alone)',
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
      registers: [registry]
    }),
    sessionStoreCommands: new Counter({
      name: 'session_store_commands_total',
      help: 'Commands sent to the session store, by command (Redis: getex, set, del, exists; PostgreSQL: update, insert, delete, and ping, with a session cache): divided by requests, the store round trips each request costs',
      labelNames: ['command'] as const,
      registers: [registry]
    }),
    jwksFetches: new Counter({
      name: 'jwks_fetches_total',
      help: 'JWKS fetches (jwt mode, JWT_SIGNING=eddsa) by why (start, interval, unknown_kid, keyless) and result (ok, failed)',
      labelNames: ['reason', 'result'] as const,
      registers: [registry]
    }),
    // postgres mode's cache (auth/stores/cached.ts). With session_store_commands_total (the
    // database's statements) and auth_outcomes_total, it gives the two figures a cache is for:
    // database statements per request, and the share of reads the cache answered.
    sessionCacheLookups: new Counter({
      name: 'session_cache_lookups_total',
      help: 'Session reads by what the cache did: hit (answered from it), miss (not there), renew (there, but its renewal was due or its idle end passed: to the database), lease (the database not heard from within PG_QUERY_TIMEOUT_MS: asked), ended (a logout recorded in the cache: refused there), bypass (the cache not trusted now: its Redis down, or its invalidations missed), error (a cache command failed: to the database)',
      labelNames: ['cache', 'result'] as const,
      registers: [registry]
    }),
    sessionCacheCommands: new Counter({
      name: 'session_cache_commands_total',
      help: 'Commands sent to the shared (Redis) session cache, by command: get, fill (set unless ended), end (the logout marker)',
      labelNames: ['command'] as const,
      registers: [registry]
    }),
    sessionCacheInvalidations: new Counter({
      name: 'session_cache_invalidations_total',
      help: 'The local session cache told to forget: session (a logout on any server, through PostgreSQL NOTIFY) or flush (everything, after the notification channel was lost and found again)',
      labelNames: ['kind'] as const,
      registers: [registry]
    }),
    sessionCacheListening: new Gauge({
      name: 'session_cache_listening',
      help: '1 while the local session cache hears of logouts on other servers (its LISTEN connection is up), else 0: while 0 it is not used',
      registers: [registry]
    })
  }
}

export type Metrics = ReturnType<typeof createMetrics>
