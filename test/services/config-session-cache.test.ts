import t from 'tap'
import { ConfigError } from '../../lib/config.ts'
import { loadServerConfig } from '../../services/config.ts'

// postgres mode's cache settings (SESSION_CACHE and the four beside it): defaults, what follows
// the idle timeout, and what is refused, by name.
const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadServerConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test('defaults: no cache; with one, a 60 s TTL, 10000 entries, renewal every 60 s or half the idle timeout, NOTIFY for the local cache', async (t) => {
  t.same(loadServerConfig({ AUTH_MODE: 'postgres' }).sessionCache, { kind: 'none', ttlSeconds: 60, maxEntries: 10_000, renewEveryMs: 60_000, invalidation: 'pubsub' })
  t.same(loadServerConfig({ AUTH_MODE: 'postgres', SESSION_CACHE: 'local', SESSION_IDLE_SECONDS: '30' }).sessionCache.renewEveryMs, 15_000, 'idle 30 s: renewed every 15 s')
  t.same(loadServerConfig({ AUTH_MODE: 'postgres', SESSION_CACHE: 'local', SESSION_IDLE_SECONDS: '1' }).sessionCache.renewEveryMs, 500, 'idle 1 s: every half second')
  t.same(loadServerConfig({ AUTH_MODE: 'postgres', SESSION_CACHE: 'redis', SESSION_CACHE_TTL_SECONDS: '5', SESSION_CACHE_MAX_ENTRIES: '100', SESSION_RENEW_EVERY_SECONDS: '10', SESSION_CACHE_INVALIDATION: 'none' }).sessionCache,
    { kind: 'redis', ttlSeconds: 5, maxEntries: 100, renewEveryMs: 10_000, invalidation: 'none' })
})

t.test('refused, by name: an unknown cache or invalidation, a cache outside postgres mode, a renewal no shorter than the idle timeout', async (t) => {
  t.match(problemsOf({ AUTH_MODE: 'postgres', SESSION_CACHE: 'memcached' }), [/^SESSION_CACHE must be one of none, redis, local/])
  t.match(problemsOf({ AUTH_MODE: 'postgres', SESSION_CACHE_INVALIDATION: 'redis' }), [/^SESSION_CACHE_INVALIDATION must be one of none, pubsub/])
  t.match(problemsOf({ AUTH_MODE: 'redis', SESSION_CACHE: 'local' }), [/^SESSION_CACHE=local caches postgres mode's sessions, and AUTH_MODE is redis/])
  t.match(problemsOf({ AUTH_MODE: 'postgres', SESSION_CACHE: 'local', SESSION_IDLE_SECONDS: '60', SESSION_RENEW_EVERY_SECONDS: '60' }), [/^SESSION_RENEW_EVERY_SECONDS \(60\) must be less than the idle timeout, SESSION_IDLE_SECONDS \(60\)/])
  t.match(problemsOf({ AUTH_MODE: 'postgres', SESSION_CACHE: 'local', SESSION_TTL_SECONDS: '30', SESSION_RENEW_EVERY_SECONDS: '40' }), [/SESSION_IDLE_SECONDS \(30\)/], 'the idle timeout as it applies: never more than the TTL')
  t.same(problemsOf({ AUTH_MODE: 'postgres', SESSION_IDLE_SECONDS: '60', SESSION_RENEW_EVERY_SECONDS: '60' }), [], 'without a cache the renewal interval means nothing, and is not checked')
  t.match(problemsOf({ AUTH_MODE: 'postgres', SESSION_CACHE_TTL_SECONDS: '0' }), [/^SESSION_CACHE_TTL_SECONDS must be a whole number of seconds from 1 to 86400/])
  t.match(problemsOf({ AUTH_MODE: 'postgres', SESSION_CACHE_MAX_ENTRIES: '1.5' }), [/^SESSION_CACHE_MAX_ENTRIES must be a whole number from 1 to 10000000/])
  t.same(problemsOf({ AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(16) + 'y'.repeat(24), SESSION_CACHE: 'none' }), [], 'SESSION_CACHE=none is fine in any mode (Compose passes it to every one)')
})
