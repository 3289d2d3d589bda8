import t, { type Test } from 'tap'
import { ConfigError } from '../../lib/config.ts'
import { loadServerConfig } from '../../services/config.ts'
import { loadIssuerConfig } from '../../services/issuer/config.ts'

// REDIS_SENTINELS, REDIS_SENTINEL_NAME, REDIS_WAIT_REPLICAS and REDIS_WAIT_TIMEOUT_MS
// (services/redis-config.ts), read the same way by the app server and the issuer.

function problems (t: Test, env: Record<string, string>): string[] {
  try {
    loadServerConfig({ AUTH_MODE: 'redis', ...env })
  } catch (err) {
    t.type(err, ConfigError)
    return (err as ConfigError).problems
  }
  t.fail(`accepted ${JSON.stringify(env)}`)
  return []
}

t.test('unset: no Sentinels, the primary named mymaster, WAIT off', async (t) => {
  const { redis } = loadServerConfig({ AUTH_MODE: 'redis' })
  t.same(redis, { url: 'redis://127.0.0.1:6379', keyPrefix: 'session:', commandTimeoutMs: 500, sentinels: [], sentinelName: 'mymaster', waitReplicas: 0, waitTimeoutMs: 200 })
})

t.test('REDIS_SENTINELS: host:port entries, IPv6 in brackets, spaces around commas', async (t) => {
  const { redis } = loadServerConfig({ AUTH_MODE: 'redis', REDIS_SENTINELS: 'sentinel-1:26379, 10.0.0.2:26380,[::1]:26381', REDIS_SENTINEL_NAME: 'auth.primary-1' })
  t.same(redis.sentinels, [{ host: 'sentinel-1', port: 26379 }, { host: '10.0.0.2', port: 26380 }, { host: '::1', port: 26381 }])
  t.equal(redis.sentinelName, 'auth.primary-1')
})

t.test('a bad REDIS_SENTINELS entry is refused, naming the variable, the entry and an example', async (t) => {
  for (const [value, entry] of [['sentinel-1', 'sentinel-1'], ['a:26379,b', 'b'], ['a:0', 'a:0'], ['a:65536', 'a:65536'], ['a:26379,,b:1', ''], ['redis://a:26379', 'redis://a:26379'], ['::1:26379', '::1:26379']] as const) {
    const found = problems(t, { REDIS_SENTINELS: value })
    t.equal(found.length, 1, value)
    t.match(found[0], /^REDIS_SENTINELS entry \d of \d must be host:port with a port from 1 to 65535 \(got ".*"\); e\.g\. REDIS_SENTINELS=127\.0\.0\.1:26379,/, value)
    t.match(found[0], `(got ${JSON.stringify(entry)})`, value)
  }
  t.match(problems(t, { REDIS_SENTINELS: 'a:1,a:1' }), [/^REDIS_SENTINELS lists a:1 twice/])
})

t.test('REDIS_SENTINEL_NAME must be a plain name', async (t) => {
  t.match(problems(t, { REDIS_SENTINEL_NAME: 'my master' }), [/^REDIS_SENTINEL_NAME must be 1 to 64 letters, digits, dots, dashes or underscores: the name the Sentinels monitor the primary by \(got "my master"\)/])
})

t.test('REDIS_WAIT_REPLICAS and REDIS_WAIT_TIMEOUT_MS: whole numbers in range, and WAIT inside the command timeout', async (t) => {
  const { redis } = loadServerConfig({ AUTH_MODE: 'redis', REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '300' })
  t.equal(redis.waitReplicas, 1)
  t.equal(redis.waitTimeoutMs, 300)
  t.match(problems(t, { REDIS_WAIT_REPLICAS: '-1' }), [/^REDIS_WAIT_REPLICAS must be a whole number from 0 \(off\) to 16 \(got -1\)/])
  t.match(problems(t, { REDIS_WAIT_REPLICAS: '1.5' }), [/^REDIS_WAIT_REPLICAS must be a whole number/])
  t.match(problems(t, { REDIS_WAIT_TIMEOUT_MS: '0' }), [/^REDIS_WAIT_TIMEOUT_MS must be a whole number of milliseconds from 1 to 9999/])
  t.match(problems(t, { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '500' }), [/^REDIS_WAIT_TIMEOUT_MS \(500\) must be less than REDIS_COMMAND_TIMEOUT_MS \(500\): .* e\.g\. REDIS_WAIT_TIMEOUT_MS=250$/])
  t.match(problems(t, { REDIS_WAIT_REPLICAS: '2', REDIS_COMMAND_TIMEOUT_MS: '100' }), [/^REDIS_WAIT_TIMEOUT_MS \(200\) must be less than REDIS_COMMAND_TIMEOUT_MS \(100\)/], 'the default timeout against a short command timeout')
  // Off, the timeout is not used: nothing to refuse.
  t.equal(loadServerConfig({ AUTH_MODE: 'redis', REDIS_COMMAND_TIMEOUT_MS: '100' }).redis.waitReplicas, 0)
})

t.test('every problem is reported at once, with the others the config finds', async (t) => {
  const found = problems(t, { REDIS_SENTINELS: 'nope', REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '900', TRUST_PROXY: 'nowhere' })
  t.equal(found.length, 3)
  t.match(found.join('\n'), /TRUST_PROXY/)
})

t.test('the issuer reads the same variables the same way', async (t) => {
  const base = { ISSUER_KEYS_DIR: '/tmp/keys' }
  const { redis } = loadIssuerConfig({ ...base, REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_WAIT_REPLICAS: '1' })
  t.same(redis, { url: 'redis://127.0.0.1:6379', keyPrefix: 'session:', commandTimeoutMs: 500, sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], sentinelName: 'mymaster', waitReplicas: 1, waitTimeoutMs: 200 })
  t.throws(() => loadIssuerConfig({ ...base, REDIS_SENTINELS: 's1' }), /REDIS_SENTINELS entry 1 of 1 must be host:port/)
})
