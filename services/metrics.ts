import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

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
      help: 'Commands sent to the session store, by command (Redis: getex, set, del, exists; PostgreSQL: update, insert, delete): divided by requests, the store round trips each request costs',
      labelNames: ['command'] as const,
      registers: [registry]
    }),
    jwksFetches: new Counter({
      name: 'jwks_fetches_total',
      help: 'JWKS fetches (jwt mode, JWT_SIGNING=eddsa) by why (start, interval, unknown_kid, keyless) and result (ok, failed)',
      labelNames: ['reason', 'result'] as const,
      registers: [registry]
    })
  }
}

export type Metrics = ReturnType<typeof createMetrics>
