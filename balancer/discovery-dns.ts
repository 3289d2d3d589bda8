import { lookup } from 'node:dns/promises'
import { pino } from 'pino'
import type { Logger } from 'pino'

/** Every IPv4 address a host name resolves to. */
export type Resolver = (hostname: string) => Promise<string[]>

/**
 * getaddrinfo, as every other program on the host resolves names: in a Compose network that
 * asks Docker's DNS, which answers a service name with one address per running replica.
 */
export const lookupAll: Resolver = async (hostname) => {
  const addresses = await lookup(hostname, { all: true, family: 4 })
  return addresses.map((a) => a.address)
}

export interface DnsDiscoveryOptions {
  hostname: string
  port: number
  intervalMs: number
  /** Called with the new upstream URLs, sorted, each time the set of addresses changes. */
  onChange: (urls: string[]) => void
  resolve?: Resolver
  logger?: Logger
}

export interface DnsDiscovery {
  /** Looks the name up once now and applies what it finds; resolves with the current URLs. */
  refresh (): Promise<string[]>
  /** Refreshes now, then every intervalMs until stop(). */
  start (): void
  stop (): void
}

/**
 * Finds the upstreams by resolving one name again and again, so that `docker compose up
 * --scale app=5` puts five servers in the rotation and a scale-down takes them out. A failed
 * lookup keeps the last set: when replicas are briefly out of DNS, the health checks, not
 * an empty list, decide who gets traffic.
 */
export function createDnsDiscovery (options: DnsDiscoveryOptions): DnsDiscovery {
  const { hostname, port, intervalMs, onChange, resolve = lookupAll, logger = pino({ level: 'silent' }) } = options
  let current: string[] = []
  let timer: NodeJS.Timeout | undefined
  let running = false
  let lastError: string | undefined

  async function refresh (): Promise<string[]> {
    let addresses: string[]
    try {
      addresses = await resolve(hostname)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      const reason = typeof code === 'string' ? code : (err as Error).message
      // Once per kind of failure, not once a second.
      if (reason !== lastError) logger.warn({ hostname, reason, upstreams: current }, 'upstream lookup failed; keeping the last set')
      lastError = reason
      return current
    }
    lastError = undefined
    if (addresses.length === 0) return current
    const urls = [...new Set(addresses)].sort().map((address) => `http://${address}:${port}`)
    if (urls.join() !== current.join()) {
      current = urls
      onChange(urls)
    }
    return current
  }

  // The next lookup starts only when the previous one finished, so a slow resolver never
  // piles up lookups.
  function loop (): void {
    if (!running) return
    refresh().catch((err: unknown) => {
      logger.error({ err, hostname }, 'could not apply the upstreams found')
    }).finally(() => {
      if (!running) return
      timer = setTimeout(loop, intervalMs)
      timer.unref()
    })
  }

  return {
    refresh,
    start () {
      if (running) return
      running = true
      loop()
    },
    stop () {
      running = false
      clearTimeout(timer)
    }
  }
}
