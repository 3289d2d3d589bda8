import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadBalancerConfig } from '../../balancer/config.ts'
import { ConfigError } from '../../lib/config.ts'
import { createRouter, parseRoutes, underPrefix } from '../../balancer/routes.ts'
import { clientAgent, deadUrl, request, startBalancer, startUpstream } from './fixtures/helpers.ts'

// ROUTES: path prefixes to named pools, the first that matches wins, everything else to the
// default pool (UPSTREAMS). Each named pool has its own upstreams, strategy and health checks.

const ISSUER_ROUTES = '/login:issuer,/token/:issuer,/logout:issuer,/.well-known/jwks.json:issuer'

function problemsOf (env: Record<string, string>): string[] {
  try {
    loadBalancerConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('a prefix takes itself and what is below it, never a longer name', async (t) => {
  t.ok(underPrefix('/login', '/login'))
  t.ok(underPrefix('/login?next=/feeds', '/login'))
  t.ok(underPrefix('/login/', '/login'))
  t.ok(underPrefix('/login/sso', '/login'))
  t.notOk(underPrefix('/loginx', '/login'), '/loginx is not under /login')
  t.notOk(underPrefix('/logi', '/login'))
  t.ok(underPrefix('/token/refresh', '/token/'))
  t.notOk(underPrefix('/token', '/token/'), 'a prefix ending in / needs the /')
  t.notOk(underPrefix('/tokens/x', '/token/'))
  t.ok(underPrefix('/.well-known/jwks.json', '/.well-known/jwks.json'))
  t.notOk(underPrefix('/LOGIN', '/login'), 'bytes, not case-folded: routing is not access control')
})

t.test('the router: in order, first match wins, the fallback otherwise', async (t) => {
  const route = createRouter([{ prefix: '/token/public', pool: 'app' }, { prefix: '/token/', pool: 'issuer' }, { prefix: '/login', pool: 'issuer' }], 'app')
  t.equal(route('/token/refresh'), 'issuer')
  t.equal(route('/token/public/keys'), 'app', 'an earlier, narrower prefix carves an exception')
  t.equal(route('/login'), 'issuer')
  t.equal(route('/feeds'), 'app')
  t.equal(route('/'), 'app')
  t.equal(createRouter([], 'only')('/login'), 'only', 'no routes: everything to the fallback')
})

t.test('ROUTES parses into an ordered list; each bad entry is named', async (t) => {
  t.same(parseRoutes(' /login:issuer , /token/:issuer,/x:default '), [{ prefix: '/login', pool: 'issuer' }, { prefix: '/token/', pool: 'issuer' }, { prefix: '/x', pool: 'default' }])
  t.same(parseRoutes('/a:b:issuer'), [{ prefix: '/a:b', pool: 'issuer' }], 'the last colon separates the pool')
  const bad: Array<[string, RegExp]> = [
    ['', /at least one/],
    ['/login', /must be prefix:pool/],
    ['/login:', /must be prefix:pool/],
    ['login:issuer', /prefix must be a path starting with \//],
    ['/log in:issuer', /prefix must be a path/],
    ['/login?x:issuer', /prefix must be a path/],
    ['/_balancer/stats:issuer', /balancer's own/],
    ['/login:Issuer', /pool name must be/],
    ['/login:dns', /not "dns"/],
    ['/login:issuer,/login:other', /listed twice/]
  ]
  for (const [value, pattern] of bad) t.throws(() => parseRoutes(value), pattern, JSON.stringify(value))
})

t.test('loadBalancerConfig: each routed pool from its own variables', async (t) => {
  const config = loadBalancerConfig({ UPSTREAMS: 'http://a:1', ROUTES: ISSUER_ROUTES, UPSTREAMS_ISSUER: 'http://i:1, http://i:2/', STRATEGY_ISSUER: 'sticky' })
  t.same(config.pools, [{ name: 'issuer', upstreams: ['http://i:1', 'http://i:2'], strategy: 'sticky' }])
  t.same(config.routes?.map((r) => r.prefix), ['/login', '/token/', '/logout', '/.well-known/jwks.json'])
  t.same(config.upstreams, ['http://a:1'], 'the default pool is UPSTREAMS as before')
  const dns = loadBalancerConfig({ UPSTREAMS_DNS: 'app:3000', ROUTES: '/login:auth-v2', UPSTREAMS_DNS_AUTH_V2: 'issuer:3100', DNS_INTERVAL_MS: '500' })
  t.same(dns.pools, [{ name: 'auth-v2', upstreams: [], dns: { hostname: 'issuer', port: 3100, intervalMs: 500 }, strategy: 'round-robin' }], 'auth-v2 is read from *_AUTH_V2; DNS like the default pool')
  t.same(loadBalancerConfig({ UPSTREAMS: 'http://a:1', ROUTES: '/x:default' }).pools, [], '"default" needs no variables of its own')
  t.equal(loadBalancerConfig({ UPSTREAMS: 'http://a:1' }).routes, undefined, 'no ROUTES, no pools: the config of before')
})

t.test('loadBalancerConfig: a pool\'s missing, doubled or bad variables are named', async (t) => {
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/login:issuer' }), [/^UPSTREAMS_ISSUER must be .* ROUTES sends requests to the pool issuer \(it is not set\)/])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/login:issuer', UPSTREAMS_ISSUER: 'http://i:1', UPSTREAMS_DNS_ISSUER: 'i:1' }), [/^UPSTREAMS_ISSUER and UPSTREAMS_DNS_ISSUER are both set/])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/login:issuer', UPSTREAMS_ISSUER: 'i:1' }), [/^UPSTREAMS_ISSUER must be a comma-separated list of http:\/\/ URLs.*\(got "i:1"\)/])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/login:issuer', UPSTREAMS_ISSUER: 'http://i:99999' }), [/^UPSTREAMS_ISSUER: /])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/login:issuer', UPSTREAMS_DNS_ISSUER: 'issuer' }), [/^UPSTREAMS_DNS_ISSUER must be host:port/])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/login:issuer', UPSTREAMS_DNS_ISSUER: 'issuer:0' }), [/^UPSTREAMS_DNS_ISSUER must name a port/])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/login:issuer', UPSTREAMS_ISSUER: 'http://i:1', STRATEGY_ISSUER: 'random' }), [/^STRATEGY_ISSUER must be one of round-robin, sticky \(got "random"\)/])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: 'login:issuer' }), [/^ROUTES: .*starting with \/.*\(got "login:issuer"\)/])
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/login:issuer', UPSTREAMS_ISSUER: 'http://i:1', UPSTREAMS_ISUER: 'http://i:2' }), [/^UPSTREAMS_ISUER is set, but ROUTES names no pool it belongs to \(pools in ROUTES: issuer\)/], 'a typo is not silently ignored')
  t.match(problemsOf({ UPSTREAMS: 'http://a:1', UPSTREAMS_ISSUER: 'http://i:1' }), [/^UPSTREAMS_ISSUER is set, but ROUTES is not/], 'nor a pool with no route to it')
  t.same(problemsOf({ UPSTREAMS: 'http://a:1', ROUTES: '/a:one,/b:two' }).length, 2, 'every missing pool at once')
})

t.test('a real balancer sends each prefix to its pool, and the rest round robin to the default pool', async (t) => {
  const apps = await Promise.all(['app-1', 'app-2', 'app-3'].map(async (id) => await startUpstream(t, id)))
  const issuers = await Promise.all(['issuer-1', 'issuer-2'].map(async (id) => await startUpstream(t, id)))
  const config = loadBalancerConfig({ UPSTREAMS: apps.map((a) => a.url).join(','), ROUTES: ISSUER_ROUTES, UPSTREAMS_ISSUER: issuers.map((i) => i.url).join(',') })
  const { url, balancer } = await startBalancer(t, config.upstreams, { pools: config.pools, routes: config.routes })
  const agent = clientAgent(t)

  const servedBy = async (method: string, path: string, body?: string): Promise<string> => {
    const reply = await request(`${url}${path}`, { agent, method, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) })
    t.equal(reply.status, 200, `${method} ${path}`)
    return String(reply.headers['x-served-by'])
  }
  const issued = [
    await servedBy('POST', '/login', '{"username":"alice"}'),
    await servedBy('POST', '/token/refresh', '{}'),
    await servedBy('POST', '/logout', '{}'),
    await servedBy('GET', '/.well-known/jwks.json'),
    await servedBy('POST', '/login?next=%2F', '{}'),
    await servedBy('POST', '/token/refresh', '{}')
  ]
  t.same(issued, ['issuer-1', 'issuer-2', 'issuer-1', 'issuer-2', 'issuer-1', 'issuer-2'], 'the issuer pool, round robin over its own two')
  const read = []
  for (let i = 0; i < 6; i++) read.push(await servedBy('GET', '/feeds'))
  t.same(read, ['app-1', 'app-2', 'app-3', 'app-1', 'app-2', 'app-3'], 'everything else to the app servers, round robin')
  t.equal(await servedBy('GET', '/loginx'), 'app-1', 'a longer name is not the prefix')
  t.equal(await servedBy('GET', '/token'), 'app-2', '/token/ needs its slash')
  t.same(issuers.map((i) => i.received), [3, 3])
  t.same(apps.map((a) => a.received), [3, 3, 2])

  const stats = balancer.stats()
  t.same(Object.keys(stats.pools), ['default', 'issuer'], 'every pool in the stats')
  t.same(stats.upstreams.map((u) => u.url), apps.map((a) => a.url), 'upstreams stays the default pool\'s (the contract)')
  t.same(stats.pools.issuer?.upstreams.map((u) => [u.url, u.requests]), issuers.map((i) => [i.url, 3]))
  t.same(stats.routes.map((r) => `${r.prefix}:${r.pool}`).join(','), ISSUER_ROUTES)
})

t.test('a pool with no healthy upstream: its own 503, naming the pool; the others go on', async (t) => {
  const app = await startUpstream(t, 'app-1')
  const issuer = await startUpstream(t, 'issuer-1')
  const { url, balancer } = await startBalancer(t, [app.url], { pools: [{ name: 'issuer', upstreams: [issuer.url], strategy: 'round-robin' }], routes: [{ prefix: '/login', pool: 'issuer' }] })
  const agent = clientAgent(t)
  t.equal((await request(`${url}/login`, { agent, method: 'POST', body: '{}' })).headers['x-served-by'], 'issuer-1')
  await issuer.stop()
  await balancer.checkHealth()
  t.equal(balancer.stats().pools.issuer?.upstreams[0]?.healthy, false, 'the issuer pool\'s own health checks took it out')
  t.equal(balancer.stats().upstreams[0]?.healthy, true, 'the app pool is untouched')
  const started = performance.now()
  const refused = await request(`${url}/login`, { agent, method: 'POST', body: '{}' })
  t.equal(refused.status, 503)
  t.same(JSON.parse(refused.body), { error: 'no_healthy_upstream', pool: 'issuer' }, 'the 503 says which pool has nobody')
  t.ok(performance.now() - started < 1000, 'at once')
  t.equal((await request(`${url}/feeds`, { agent })).status, 200, 'reads go on')
  t.equal(balancer.stats().ownAnswers.unavailable, 1, 'counted as the balancer\'s own answer')

  const dead = await deadUrl()
  const onlyDefault = await startBalancer(t, [dead])
  await onlyDefault.balancer.checkHealth()
  const plain = await request(`${onlyDefault.url}/feeds`, { agent })
  t.same(JSON.parse(plain.body), { error: 'no_healthy_upstream' }, 'the default pool\'s 503 is the contract\'s, as before')
})

t.test('setUpstreams names the pool it changes', async (t) => {
  const app = await startUpstream(t, 'app-1')
  const first = await startUpstream(t, 'issuer-1')
  const second = await startUpstream(t, 'issuer-2')
  const { url, balancer } = await startBalancer(t, [app.url], { pools: [{ name: 'issuer', upstreams: [first.url], strategy: 'round-robin' }], routes: [{ prefix: '/login', pool: 'issuer' }] })
  balancer.setUpstreams([second.url], 'issuer')
  const agent = clientAgent(t)
  t.equal((await request(`${url}/login`, { agent, method: 'POST', body: '{}' })).headers['x-served-by'], 'issuer-2')
  t.same(balancer.upstreams, [app.url], 'the default pool kept its set')
  t.throws(() => { balancer.setUpstreams([second.url], 'isuer') }, /no pool named "isuer" \(pools: default, issuer\)/)
})

t.test('the balancer process reads ROUTES and the pool variables from its environment', async (t) => {
  const app = await startUpstream(t, 'app-1')
  const issuer = await startUpstream(t, 'issuer-1')
  const entry = fileURLToPath(new URL('../../balancer/server.ts', import.meta.url))
  const child = spawn(process.execPath, [entry], {
    env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'info', UPSTREAMS: app.url, ROUTES: ISSUER_ROUTES, UPSTREAMS_ISSUER: issuer.url },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /"url":"(http:\/\/[^"]+)"/.exec(out)
      if (match?.[1] !== undefined) resolve(match[1])
    })
    child.once('exit', (code) => { reject(new Error(`balancer exited ${String(code)}: ${out}`)) })
  })
  const agent = clientAgent(t)
  t.equal((await request(`${url}/.well-known/jwks.json`, { agent })).headers['x-served-by'], 'issuer-1')
  t.equal((await request(`${url}/feeds`, { agent })).headers['x-served-by'], 'app-1')
  const stats = JSON.parse((await request(`${url}/_balancer/stats`, { agent })).body) as { pools: Record<string, { upstreams: Array<{ url: string }> }> }
  t.same(stats.pools.issuer?.upstreams.map((u) => u.url), [issuer.url])

  const refused = spawn(process.execPath, [entry], { env: { PATH: process.env.PATH, UPSTREAMS: app.url, ROUTES: '/login:issuer' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  refused.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise((resolve) => refused.once('exit', resolve))
  t.equal(code, 1, 'a pool without upstreams stops the process at start')
  t.match(stderr, /UPSTREAMS_ISSUER must be/, 'naming the variable')
})
