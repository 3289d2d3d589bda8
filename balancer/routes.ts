// Which pool a request goes to: an ordered list of path prefixes, each naming a pool, the first
// that matches wins, and everything else goes to the default pool. It is configuration (ROUTES):
// the balancer knows pools and prefixes, never what is behind them (an issuer, app servers).
// Routing is not access control: a path the list does not name in these exact bytes
// (`/LOGIN`, `/%6Cogin`) goes to the default pool, which must answer it as its own.

/** One entry of ROUTES: requests whose path starts with `prefix` go to the pool named `pool`. */
export interface Route {
  prefix: string
  pool: string
}

/** The name ROUTES uses for the pool of UPSTREAMS / UPSTREAMS_DNS (the app servers). */
export const DEFAULT_POOL = 'default'
// Lower case, so that each name maps to one UPSTREAMS_<NAME> variable; `dns` would be
// UPSTREAMS_DNS, which already means the default pool's DNS name.
export const POOL_NAME = /^[a-z][a-z0-9-]{0,31}$/
const RESERVED_NAMES = new Set(['dns'])

/** The suffix of a pool's variables: issuer -> ISSUER (UPSTREAMS_ISSUER), auth-v2 -> AUTH_V2. */
export function poolVariableSuffix (name: string): string {
  return name.toUpperCase().replaceAll('-', '_')
}

/**
 * ROUTES: `prefix:pool,prefix:pool,...`, in the order they are tried. A prefix starts with `/`;
 * the pool is a name (lower-case letters, digits, dashes) or `default`. Throws an Error naming
 * the bad entry.
 */
export function parseRoutes (value: string): Route[] {
  const routes: Route[] = []
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  if (entries.length === 0) throw new Error('must list at least one prefix:pool')
  for (const entry of entries) {
    const colon = entry.lastIndexOf(':')
    const prefix = colon === -1 ? entry : entry.slice(0, colon)
    const pool = colon === -1 ? '' : entry.slice(colon + 1)
    if (colon === -1 || pool === '') throw new Error(`${JSON.stringify(entry)} must be prefix:pool, e.g. /login:issuer`)
    if (!prefix.startsWith('/') || /[\s?#]/.test(prefix)) throw new Error(`${JSON.stringify(entry)}: the prefix must be a path starting with / (no spaces, query or fragment)`)
    if (prefix === '/_balancer' || prefix.startsWith('/_balancer/')) throw new Error(`${JSON.stringify(entry)}: /_balancer/ is the balancer's own`)
    if (!POOL_NAME.test(pool) || RESERVED_NAMES.has(pool)) throw new Error(`${JSON.stringify(entry)}: the pool name must be 1 to 32 lower-case letters, digits or dashes, starting with a letter (not "dns"), or "default"`)
    if (routes.some((r) => r.prefix === prefix)) throw new Error(`${JSON.stringify(entry)}: the prefix ${prefix} is listed twice`)
    routes.push({ prefix, pool })
  }
  return routes
}

/**
 * Whether `path` (the request target up to its query) falls under `prefix`: the prefix itself,
 * or below it. `/login` takes `/login` and `/login/x`, not `/loginx`; a prefix ending in `/`
 * (`/token/`) takes everything that starts with it.
 */
export function underPrefix (path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false
  return path.length === prefix.length || prefix.endsWith('/') || path[prefix.length] === '/' || path[prefix.length] === '?'
}

/**
 * The pool for a request target, by the first matching route; `fallback` when none matches.
 * With no routes it is one length check per request.
 */
export function createRouter<P> (routes: ReadonlyArray<{ prefix: string, pool: P }>, fallback: P): (url: string) => P {
  if (routes.length === 0) return () => fallback
  return (url) => {
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i] as { prefix: string, pool: P }
      if (underPrefix(url, route.prefix)) return route.pool
    }
    return fallback
  }
}
