import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Node's on-disk compile cache (`NODE_COMPILE_CACHE`, https://nodejs.org/api/module.html#module-compile-cache)
 * for the processes the commands start. Without it every app server, balancer and issuer parses
 * and compiles fastify, pino, undici and our own modules from scratch at each start: about 0.6 s of
 * CPU a process on a 2-core machine, half of it saved once the cache is warm, and a test suite
 * that starts a few hundred of them spends most of its CPU there. Node checks each entry against
 * the source's hash, so an edited file is compiled afresh, never run stale.
 *
 * The cache lives beside the other tools' caches, in `node_modules/.cache`, so it goes with the
 * install; `NODE_COMPILE_CACHE` set by the user wins, and `NODE_DISABLE_COMPILE_CACHE` turns it off
 * (both Node's own variables).
 */
export const DEFAULT_COMPILE_CACHE = join(fileURLToPath(new URL('../..', import.meta.url)), 'node_modules', '.cache', 'node-compile-cache')

export function compileCacheEnv (env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const disable = env.NODE_DISABLE_COMPILE_CACHE
  if (disable !== undefined && disable !== '') return { NODE_DISABLE_COMPILE_CACHE: disable }
  const dir = env.NODE_COMPILE_CACHE
  return { NODE_COMPILE_CACHE: dir !== undefined && dir !== '' ? dir : DEFAULT_COMPILE_CACHE }
}
