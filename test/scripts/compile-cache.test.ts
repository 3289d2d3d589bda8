import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startCluster } from '../../scripts/cluster.ts'
import { compileCacheEnv, DEFAULT_COMPILE_CACHE } from '../../scripts/lib/compile-cache.ts'

t.test('the compile cache: node_modules/.cache by default; the user\'s NODE_COMPILE_CACHE wins; NODE_DISABLE_COMPILE_CACHE turns it off', async (t) => {
  t.match(DEFAULT_COMPILE_CACHE, /[/\\]node_modules[/\\]\.cache[/\\]node-compile-cache$/)
  t.same(compileCacheEnv({}), { NODE_COMPILE_CACHE: DEFAULT_COMPILE_CACHE })
  t.same(compileCacheEnv({ NODE_COMPILE_CACHE: '' }), { NODE_COMPILE_CACHE: DEFAULT_COMPILE_CACHE })
  t.same(compileCacheEnv({ NODE_COMPILE_CACHE: '/var/cache/mine' }), { NODE_COMPILE_CACHE: '/var/cache/mine' })
  t.same(compileCacheEnv({ NODE_COMPILE_CACHE: '/var/cache/mine', NODE_DISABLE_COMPILE_CACHE: '1' }), { NODE_DISABLE_COMPILE_CACHE: '1' })
})

// What the setting is for: the processes the launcher starts write their compiled code where it
// says, so the next start reads it instead of compiling again.
t.test('a cluster\'s app servers and balancer fill the compile cache the launcher names', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'compile-cache-'))
  const before = process.env.NODE_COMPILE_CACHE
  t.teardown(() => {
    if (before === undefined) delete process.env.NODE_COMPILE_CACHE
    else process.env.NODE_COMPILE_CACHE = before
    rmSync(dir, { recursive: true, force: true })
  })
  process.env.NODE_COMPILE_CACHE = dir
  const cluster = await startCluster({ mode: 'memory', servers: 1, logLevel: 'warn' })
  await cluster.stop()
  const entries = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
  t.ok(entries.length > 50, `the cache holds ${entries.length} compiled modules`)
})
