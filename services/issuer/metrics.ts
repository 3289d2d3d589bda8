import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * The issuer's own registry, labelled with its name and role, served at its /metrics. Logins are
 * counted under the app server's name (auth_logins_total) so one query sees both kinds of process.
 */
export function createIssuerMetrics (serverId: string) {
  const registry = new Registry()
  registry.setDefaultLabels({ server: serverId, role: 'issuer' })
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    logins: new Counter({
      name: 'auth_logins_total',
      help: 'Login attempts by result (ok, invalid_credentials, throttled, unavailable)',
      labelNames: ['result'] as const,
      registers: [registry]
    }),
    refreshes: new Counter({
      name: 'auth_refreshes_total',
      help: 'Refresh token uses by result (ok, refresh_reused, revoked, expired, invalid_token, missing_token, unavailable)',
      labelNames: ['result'] as const,
      registers: [registry]
    }),
    logouts: new Counter({
      name: 'auth_logouts_total',
      help: 'Logouts by what they ended (family, none, unavailable)',
      labelNames: ['result'] as const,
      registers: [registry]
    }),
    sessionStoreCommands: new Counter({
      name: 'session_store_commands_total',
      help: 'Commands sent to the refresh token store (Redis), by command',
      labelNames: ['command'] as const,
      registers: [registry]
    }),
    keys: new Gauge({
      name: 'issuer_keys',
      help: 'Keys in the JWKS now, by state (signing, published: waiting to sign or retiring)',
      labelNames: ['state'] as const,
      registers: [registry]
    })
  }
}

export type IssuerMetrics = ReturnType<typeof createIssuerMetrics>
