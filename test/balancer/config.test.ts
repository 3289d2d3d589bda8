import t from 'tap'
import { ConfigError } from '../../lib/config.ts'
import { loadBalancerConfig, parseUpstreams } from '../../balancer/config.ts'

t.test('defaults and normalised upstreams', async (t) => {
  const config = loadBalancerConfig({ UPSTREAMS: ' http://127.0.0.1:3001/, http://app:3000 ,http://127.0.0.1:3001' })
  t.same(config, {
    upstreams: ['http://127.0.0.1:3001', 'http://app:3000'],
    port: 8080,
    host: '127.0.0.1',
    logLevel: 'info',
    balancerId: 'balancer',
    healthIntervalMs: 1000,
    healthTimeoutMs: 500,
    healthFall: 2,
    proxyTimeoutMs: 10_000,
    strategy: 'round-robin',
    maxBodyBytes: 1024 * 1024,
    threads: 1
  })
})

t.test('every variable can be set', async (t) => {
  const config = loadBalancerConfig({
    UPSTREAMS: 'http://a:1',
    PORT: '9000',
    HOST: '0.0.0.0',
    LOG_LEVEL: 'debug',
    BALANCER_ID: 'lb-1',
    HEALTH_INTERVAL_MS: '50',
    HEALTH_TIMEOUT_MS: '20',
    HEALTH_FALL: '3',
    PROXY_TIMEOUT_MS: '300',
    STRATEGY: 'sticky',
    MAX_BODY_BYTES: '65536',
    BALANCER_THREADS: '4'
  })
  t.same(config, {
    upstreams: ['http://a:1'],
    port: 9000,
    host: '0.0.0.0',
    logLevel: 'debug',
    balancerId: 'lb-1',
    healthIntervalMs: 50,
    healthTimeoutMs: 20,
    healthFall: 3,
    proxyTimeoutMs: 300,
    strategy: 'sticky',
    maxBodyBytes: 65536,
    threads: 4
  })
})

function problemsOf (env: Record<string, string>): string[] {
  try {
    loadBalancerConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('STRATEGY is round-robin or sticky', async (t) => {
  t.same(problemsOf({ UPSTREAMS: 'http://a:1', STRATEGY: 'random' }), ['STRATEGY must be one of round-robin, sticky (got "random")'])
})

t.test('a missing UPSTREAMS is named', async (t) => {
  const problems = problemsOf({})
  t.equal(problems.length, 1)
  t.match(problems[0], /^UPSTREAMS .*\(it is not set\)/)
})

t.test('bad UPSTREAMS entries are named', async (t) => {
  for (const bad of ['ftp://x:1', 'localhost:3000', 'http://a:1,https://b:2', 'http://a:1,,nope', 'http://a:99999', 'http://user:pw@a:1']) {
    const problems = problemsOf({ UPSTREAMS: bad })
    t.equal(problems.length, 1, bad)
    t.match(problems[0], /^UPSTREAMS/, bad)
    t.match(problems[0], JSON.stringify(bad), `${bad}: the message shows the value`)
  }
})

t.test('bad numbers and levels name their variable', async (t) => {
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', PORT: 'eighty' }), [/^PORT /])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', PORT: '70000' }), [/^PORT /])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', HEALTH_INTERVAL_MS: '0' }), [/^HEALTH_INTERVAL_MS /])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', HEALTH_FALL: '0' }), [/^HEALTH_FALL must be a whole number of failed health checks in a row, from 1 to 100/])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', HEALTH_FALL: '1.5' }), [/^HEALTH_FALL /])
  for (const bad of ['16383', '1073741825', '1m', '1.5']) {
    t.match(problemsOf({ UPSTREAMS: 'http://a:1', MAX_BODY_BYTES: bad }), [/^MAX_BODY_BYTES must be a whole number of bytes from 16384 \(16 KiB\) to 1073741824 \(1 GiB\)/], bad)
  }
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', LOG_LEVEL: 'loud' }), [/^LOG_LEVEL must be one of fatal, error, warn, info/])
  const both = problemsOf({ PORT: 'x', HEALTH_TIMEOUT_MS: '-1' })
  t.equal(both.length, 3, 'every bad variable is reported at once')
})

t.test('BALANCER_THREADS is a whole number from 1 to 64', async (t) => {
  for (const bad of ['0', '-1', 'abc', '65', '1.5', '2x']) {
    t.same(problemsOf({ UPSTREAMS: 'http://a:1', BALANCER_THREADS: bad }), [`BALANCER_THREADS must be a whole number of threads from 1 to 64 (got ${/^-?\d+$/.test(bad) ? bad : JSON.stringify(bad)})`], bad)
  }
  t.equal(loadBalancerConfig({ UPSTREAMS: 'http://a:1', BALANCER_THREADS: '64' }).threads, 64)
})

t.test('parseUpstreams is what setUpstreams uses', async (t) => {
  t.same(parseUpstreams(['http://a:1/base/', 'http://a:1/base']), ['http://a:1/base'])
  t.same(parseUpstreams([]), [])
  t.throws(() => parseUpstreams(['http://ok:1', 'nope']), /"nope" is not a URL/)
  t.throws(() => parseUpstreams(['https://a:1']), /must use http:\/\//)
})

t.test('UPSTREAMS_DNS instead of UPSTREAMS: a name to resolve, and how often', async (t) => {
  const config = loadBalancerConfig({ UPSTREAMS_DNS: 'app:3000' })
  t.same(config.upstreams, [])
  t.same(config.dns, { hostname: 'app', port: 3000, intervalMs: 1000 })
  t.same(loadBalancerConfig({ UPSTREAMS_DNS: 'app.internal:80', DNS_INTERVAL_MS: '250' }).dns, { hostname: 'app.internal', port: 80, intervalMs: 250 })
  t.equal(loadBalancerConfig({ UPSTREAMS: 'http://a:1', UPSTREAMS_DNS: '' }).dns, undefined, 'an empty UPSTREAMS_DNS is unset')
})

t.test('bad UPSTREAMS_DNS values, and both or neither set, are named', async (t) => {
  for (const bad of ['app', 'http://app:3000', 'app:', ':3000', 'app:99999', 'app:0', 'a b:1']) {
    const problems = problemsOf({ UPSTREAMS_DNS: bad })
    t.equal(problems.length, 1, bad)
    t.match(problems[0], /^UPSTREAMS_DNS must/, bad)
    t.match(problems[0], JSON.stringify(bad), `${bad}: the message shows the value`)
  }
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', UPSTREAMS_DNS: 'app:3000' }), [/^UPSTREAMS and UPSTREAMS_DNS are both set/])
  t.match(problemsOf({ UPSTREAMS_DNS: 'app:3000', DNS_INTERVAL_MS: '10' }), [/^DNS_INTERVAL_MS /])
  t.match(problemsOf({ PORT: 'x' }), [/UPSTREAMS_DNS/, /^PORT /], 'neither set is reported with the other problems')
})
