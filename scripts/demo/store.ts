import { sleep } from './requests.ts'
import type { StepContext } from './step.ts'

/** Until every server's /health says its store is up again (after a Redis restart). */
export async function waitForStore (ctx: StepContext, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const server of ctx.cluster.servers) {
    for (;;) {
      const health = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(1000) }).then(async (r) => await r.json() as { store?: string }, () => ({ store: 'down' }))
      if (health.store === 'up') break
      if (Date.now() > deadline) throw new Error(`${server.id} did not reconnect to Redis within ${timeoutMs / 1000} s`)
      await sleep(50)
    }
  }
}
