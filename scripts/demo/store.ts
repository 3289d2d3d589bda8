import { sleep } from './requests.ts'
import type { StepContext } from './step.ts'

/**
 * The commands the servers sent to their store while `action` ran, in all: the sum of
 * session_store_commands_total over every label, so it reads the same whatever the label
 * calls a command (the session lookup, a GETEX, has been counted as "get").
 */
export async function storeCommandsDuring<T> (ctx: StepContext, action: () => Promise<T>): Promise<{ value: T, commands: number }> {
  const before = await ctx.counter('session_store_commands_total')
  const value = await action()
  const after = await ctx.counter('session_store_commands_total')
  return { value, commands: after.total - before.total }
}

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
