import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { createDnsDiscovery, lookupAll } from '../../balancer/discovery-dns.ts'
import type { Resolver } from '../../balancer/discovery-dns.ts'
import { clientAgent, request, startBalancer, startUpstream, waitFor } from './fixtures/helpers.ts'

/** A resolver that answers whatever the test last put in `answer` (an Error is thrown). */
function fakeResolver (): { resolve: Resolver, answer: string[] | Error, calls: number } {
  const fake = {
    answer: [] as string[] | Error,
    calls: 0,
    resolve: async (hostname: string): Promise<string[]> => {
      fake.calls++
      if (hostname !== 'app') throw Object.assign(new Error(`unexpected name ${hostname}`), { code: 'ENOTFOUND' })
      if (fake.answer instanceof Error) throw fake.answer
      return fake.answer
    }
  }
  return fake
}

function capturedLogger (): { logger: pino.Logger, lines: Array<{ msg: string, reason?: string }> } {
  const lines: Array<{ msg: string, reason?: string }> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()))
      done()
    }
  })
  return { logger: pino({ level: 'info' }, stream), lines }
}

t.test('the upstream set follows what the name resolves to, sorted, reported only on change', async (t) => {
  const dns = fakeResolver()
  const changes: string[][] = []
  const discovery = createDnsDiscovery({ hostname: 'app', port: 3000, intervalMs: 1000, resolve: dns.resolve, onChange: (urls) => { changes.push(urls) } })

  dns.answer = ['172.18.0.4', '172.18.0.3', '172.18.0.5']
  t.same(await discovery.refresh(), ['http://172.18.0.3:3000', 'http://172.18.0.4:3000', 'http://172.18.0.5:3000'])
  dns.answer = ['172.18.0.5', '172.18.0.3', '172.18.0.4']
  await discovery.refresh()
  t.equal(changes.length, 1, 'the same addresses in another order are no change')

  dns.answer = ['172.18.0.3', '172.18.0.4', '172.18.0.5', '172.18.0.6', '172.18.0.7']
  await discovery.refresh()
  t.same(changes.at(-1), ['3', '4', '5', '6', '7'].map((n) => `http://172.18.0.${n}:3000`), 'scaled up to five')

  dns.answer = ['172.18.0.3', '172.18.0.3', '172.18.0.7']
  await discovery.refresh()
  t.same(changes.at(-1), ['http://172.18.0.3:3000', 'http://172.18.0.7:3000'], 'scaled down, duplicates dropped')
  t.equal(changes.length, 3)
})

t.test('a failed or empty lookup keeps the last set and warns once per kind of failure', async (t) => {
  const dns = fakeResolver()
  const { logger, lines } = capturedLogger()
  const changes: string[][] = []
  const discovery = createDnsDiscovery({ hostname: 'app', port: 3000, intervalMs: 1000, resolve: dns.resolve, logger, onChange: (urls) => { changes.push(urls) } })

  dns.answer = ['10.0.0.1']
  await discovery.refresh()
  dns.answer = Object.assign(new Error('queryA ENOTFOUND app'), { code: 'ENOTFOUND' })
  t.same(await discovery.refresh(), ['http://10.0.0.1:3000'])
  await discovery.refresh()
  dns.answer = []
  t.same(await discovery.refresh(), ['http://10.0.0.1:3000'], 'an empty answer is not taken as "no upstreams"')
  t.equal(changes.length, 1)
  t.match(lines, [{ msg: /lookup failed/, reason: 'ENOTFOUND' }])
  t.equal(lines.length, 1, 'the same failure twice is logged once')
})

t.test('start() looks up every interval until stop()', async (t) => {
  const dns = fakeResolver()
  dns.answer = ['10.0.0.1']
  const discovery = createDnsDiscovery({ hostname: 'app', port: 3000, intervalMs: 20, resolve: dns.resolve, onChange: () => {} })
  t.teardown(() => { discovery.stop() })
  discovery.start()
  discovery.start()
  await waitFor('three lookups', () => dns.calls >= 3)
  discovery.stop()
  const calls = dns.calls
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(dns.calls <= calls + 1, 'no lookups after stop() but the one in flight')
})

t.test('an onChange that throws is logged, and the loop goes on', async (t) => {
  const dns = fakeResolver()
  const { logger, lines } = capturedLogger()
  let answers = 0
  const discovery = createDnsDiscovery({
    hostname: 'app',
    port: 3000,
    intervalMs: 10,
    logger,
    resolve: async (name) => { dns.answer = [`10.0.0.${++answers}`]; return await dns.resolve(name) },
    onChange: () => { throw new Error('boom') }
  })
  t.teardown(() => { discovery.stop() })
  discovery.start()
  const failures = (): number => lines.filter((l) => /could not apply/.test(l.msg)).length
  await waitFor('two failed changes', () => failures() >= 2)
  t.ok(failures() >= 2, 'each failure logged, lookups go on')
})

t.test('wired to a real balancer: requests reach the upstream the name resolves to', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { balancer, url } = await startBalancer(t, [])
  const agent = clientAgent(t)
  t.equal((await request(`${url}/feeds`, { agent })).status, 503, 'no upstream before the first lookup')

  const dns = fakeResolver()
  dns.answer = ['127.0.0.1']
  const discovery = createDnsDiscovery({ hostname: 'app', port: up.port, intervalMs: 1000, resolve: dns.resolve, onChange: (urls) => { balancer.setUpstreams(urls) } })
  await discovery.refresh()
  t.same(balancer.upstreams, [up.url])
  const reply = await request(`${url}/feeds`, { agent })
  t.equal(reply.status, 200)
  t.equal(reply.headers['x-served-by'], 'app-1')
})

t.test('the default resolver asks the system (localhost, from /etc/hosts)', async (t) => {
  t.ok((await lookupAll('localhost')).includes('127.0.0.1'))
})
