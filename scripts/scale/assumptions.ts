/**
 * What `npm run scale` does not measure and takes as given: each figure a name, a flag, a default
 * and the reason for that default. The report lists them with the values used, so nobody reads an
 * assumption as a measurement. Two of them (the stores' CPU per command) stand in only when the
 * compare JSON lacks the measured figure: reports written before compare read the stores' CPU.
 */

export interface Assumptions {
  /** The share of a core planned busy: app servers, balancer threads, the store's thread, the database. */
  utilisation: number
  /** Threads (cores) per balancer instance. */
  balancerCores: number
  /** Network per balancer instance, each direction, Gbit/s. */
  nicGbit: number
  /** A request's bytes besides the credential: request line, other headers, TCP/IP framing. */
  requestBytes: number
  /** An answer's bytes: status line, headers, the /feeds body, framing. */
  responseBytes: number
  /** Memory of one Redis node that data may fill, GB (10^9 bytes). */
  storeMemoryGb: number
  /** Replicas per primary (Redis and PostgreSQL): each holds a full copy. */
  replicas: number
  /** Cores of the largest PostgreSQL primary one would run. */
  pgPrimaryCores: number
  /** The share of tokens revoked (a logout) before they expire. */
  logoutShare: number
  /** Bytes one Redis entry takes that compare did not weigh (a revocation-list entry, a cache entry); null: redis mode's measured bytes per session. */
  redisEntryBytes: number | null
  /** Redis CPU per command, µs, when the JSON has no measured figure. */
  redisUsPerCommand: number
  /** PostgreSQL CPU per statement, µs, when the JSON has no measured figure. */
  pgUsPerStatement: number
}

export interface AssumptionInfo {
  key: keyof Assumptions
  flag: string
  unit: string
  /** Why this default, in a few words. */
  why: string
  /** The smallest value the flag takes, and whether it must be whole, and a most. */
  min: number
  max?: number
  whole?: boolean
}

export const DEFAULT_ASSUMPTIONS: Assumptions = {
  utilisation: 0.65,
  balancerCores: 4,
  nicGbit: 10,
  requestBytes: 180,
  responseBytes: 530,
  storeMemoryGb: 25,
  replicas: 1,
  pgPrimaryCores: 32,
  logoutShare: 1,
  redisEntryBytes: null,
  redisUsPerCommand: 14,
  pgUsPerStatement: 120
}

export const ASSUMPTIONS: readonly AssumptionInfo[] = [
  { key: 'utilisation', flag: 'utilisation', unit: 'of a core', min: 0.05, max: 1, why: 'headroom for peaks, a lost instance and GC pauses: plan each core 65% busy' },
  { key: 'balancerCores', flag: 'balancer-cores', unit: 'cores', min: 1, max: 256, whole: true, why: 'threads per balancer instance: BALANCER_THREADS goes up to 4' },
  { key: 'nicGbit', flag: 'nic-gbit', unit: 'Gbit/s', min: 0.01, why: 'a common cloud instance\'s network, each direction' },
  { key: 'requestBytes', flag: 'request-bytes', unit: 'B', min: 0, whole: true, why: 'one GET /feeds by curl here: 113 B besides the credential, plus about 66 B of Ethernet, IP and TCP headers (compare does not count bytes)' },
  { key: 'responseBytes', flag: 'response-bytes', unit: 'B', min: 0, whole: true, why: 'its answer, by curl here: 268 B of status line and headers, 195 B of JSON, about 66 B of framing' },
  { key: 'storeMemoryGb', flag: 'store-memory-gb', unit: 'GB', min: 0.001, why: 'a 32 GB Redis node, less room for fork (snapshots) and fragmentation' },
  { key: 'replicas', flag: 'replicas', unit: 'per primary', min: 0, max: 10, whole: true, why: 'one replica per primary to fail over to: doubles the memory and the nodes' },
  { key: 'pgPrimaryCores', flag: 'pg-primary-cores', unit: 'cores', min: 1, whole: true, why: 'a large single PostgreSQL primary; every session read here is a write' },
  { key: 'logoutShare', flag: 'logout-share', unit: 'of tokens', min: 0, max: 1, why: 'the most: every token ends with a logout; the list then holds about one entry per live session' },
  { key: 'redisEntryBytes', flag: 'redis-entry-bytes', unit: 'B', min: 1, whole: true, why: 'a revocation-list or cache entry, not weighed by compare: taken as redis mode\'s measured bytes per session (an upper bound: a session entry holds a longer key and a JSON value), 213 B without one' },
  { key: 'redisUsPerCommand', flag: 'redis-us-per-command', unit: 'µs', min: 0.01, why: 'only when the JSON has no measured Redis CPU: compare on this 2-core machine measured 11 to 14 µs a command at 3,000 to 4,000 req/s (28 to 33 µs in its capacity run at 2,600 req/s: fewer commands per wake-up)' },
  { key: 'pgUsPerStatement', flag: 'pg-us-per-statement', unit: 'µs', min: 0.01, why: 'only when the JSON has no measured PostgreSQL CPU: compare on this 2-core machine measured 95 to 124 µs of PostgreSQL CPU per UPDATE ... RETURNING' }
]

/** redis mode's bytes per session when compare did not weigh a Redis entry and the JSON has no redis row either. */
export const FALLBACK_REDIS_ENTRY_BYTES = 213
