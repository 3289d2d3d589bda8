import { generateKeyPairSync } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { SessionStoreUnavailableError } from '../../../services/auth/authenticator.ts'
import { createJwksCache, type JwksCacheOptions } from '../../../services/auth/jwks-cache.ts'
import { eventually } from '../../helpers/service-app.ts'

// The app server's cache of the issuer's public keys, against a real HTTP server standing in for
// the issuer's JWKS, which counts what it is asked: an unknown kid fetches at most once per
// cooldown (however many requests carry it), a failed fetch keeps the keys, nothing is fetched on
// a request's path otherwise, a hung issuer costs a request at most the timeout.

const log = pino({ level: 'silent' })

function publicJwk (kid: string): Record<string, string> {
  const { publicKey } = generateKeyPairSync('ed25519')
  return { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid, alg: 'EdDSA', use: 'sig' }
}

interface StubIssuer {
  url: string
  fetches: number
  /** What GET answers: a JWKS body, or 'hang', or a status with a body. */
  answer: { keys: unknown[] } | 'hang' | { status: number, body: string, headers?: Record<string, string> }
  stop (): Promise<void>
  start (): Promise<void>
}

async function stubIssuer (t: Test, keys: unknown[]): Promise<StubIssuer> {
  const hanging = new Set<http.ServerResponse>()
  const server = http.createServer((req, res) => {
    stub.fetches++
    const answer = stub.answer
    if (answer === 'hang') {
      hanging.add(res)
      return
    }
    if ('status' in answer) {
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
      res.end(answer.body)
      return
    }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' })
    res.end(JSON.stringify(answer))
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as AddressInfo).port
  const stub: StubIssuer = {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: 0,
    answer: { keys },
    async stop () {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    },
    async start () {
      await new Promise<void>((resolve) => { server.listen(port, '127.0.0.1', resolve) })
    }
  }
  t.teardown(async () => { if (server.listening) await stub.stop() })
  return stub
}

function cache (t: Test, url: string, options: Partial<JwksCacheOptions> = {}) {
  const fetched: string[] = []
  const keys = createJwksCache({ url, refreshMs: 60_000, cooldownMs: 30_000, timeoutMs: 300, log, onFetch: (reason, result) => { fetched.push(`${reason}:${result}`) }, ...options })
  t.teardown(() => { keys.close() })
  return { keys, fetched }
}

t.test('it loads at start and answers a known kid from memory, with no fetch', async (t) => {
  const issuer = await stubIssuer(t, [publicJwk('k1'), publicJwk('k2')])
  const { keys, fetched } = cache(t, issuer.url)
  await keys.start()
  t.same(keys.kids(), ['k1', 'k2'])
  t.equal(keys.status(), 'up')
  const found = await Promise.all(Array.from({ length: 100 }, async () => await keys.keyFor('k2')))
  t.ok(found.every((k) => k !== undefined))
  t.equal(issuer.fetches, 1, 'a hundred verifications, one fetch: the one at start')
  t.same(fetched, ['start:ok'])
})

t.test('an unknown kid fetches once per cooldown, however many requests carry it at once', async (t) => {
  const issuer = await stubIssuer(t, [publicJwk('k1')])
  let clock = 1_000_000
  const { keys, fetched } = cache(t, issuer.url, { now: () => clock })
  await keys.start()
  clock += 30_000
  const answers = await Promise.all(Array.from({ length: 50 }, async () => await keys.keyFor('forged')))
  t.ok(answers.every((k) => k === undefined), 'unknown it stays')
  t.equal(issuer.fetches, 2, '50 requests with a forged kid at once: one fetch between them')
  for (let i = 0; i < 50; i++) await keys.keyFor(`forged-${i}`)
  t.equal(issuer.fetches, 2, '50 more, one after another, within the cooldown: none')
  clock += 29_999
  await keys.keyFor('forged')
  t.equal(issuer.fetches, 2, 'a millisecond before the cooldown ends: none')
  clock += 1
  await keys.keyFor('forged')
  t.equal(issuer.fetches, 3, 'once it has passed: one')
  t.same(fetched, ['start:ok', 'unknown_kid:ok', 'unknown_kid:ok'])
})

t.test('a key published since the last fetch is found by its first token (outside the cooldown)', async (t) => {
  const issuer = await stubIssuer(t, [publicJwk('old')])
  let clock = 1_000_000
  const { keys } = cache(t, issuer.url, { now: () => clock })
  await keys.start()
  issuer.answer = { keys: [publicJwk('old'), publicJwk('new')] }
  clock += 30_000
  t.ok(await keys.keyFor('new') !== undefined)
  t.same(keys.kids(), ['old', 'new'])
})

t.test('the issuer down: the keys held keep verifying; every failed fetch is counted and the status says down', async (t) => {
  const issuer = await stubIssuer(t, [publicJwk('k1')])
  const { keys, fetched } = cache(t, issuer.url, { refreshMs: 50 })
  await keys.start()
  await issuer.stop()
  t.ok(await eventually(async () => fetched.filter((f) => f === 'interval:failed').length >= 3), `the background refreshes fail (${fetched.join(' ')})`)
  t.equal(keys.status(), 'down')
  t.ok(await keys.keyFor('k1') !== undefined, 'and k1 is still there: reads go on for as long as the issuer is away')
  await issuer.start()
  t.ok(await eventually(async () => keys.status() === 'up'), 'back at the next refresh')
})

t.test('a hung issuer costs a request carrying an unknown kid at most the timeout', async (t) => {
  const issuer = await stubIssuer(t, [publicJwk('k1')])
  let clock = 1_000_000
  const { keys } = cache(t, issuer.url, { now: () => clock, timeoutMs: 300 })
  await keys.start()
  issuer.answer = 'hang'
  clock += 30_000
  const started = performance.now()
  t.equal(await keys.keyFor('forged'), undefined)
  const waited = performance.now() - started
  t.ok(waited >= 250 && waited < 2000, `waited ${Math.round(waited)} ms: the 300 ms timeout, not a hang`)
  t.ok(await keys.keyFor('k1') !== undefined, 'the keys held are kept')
  t.equal(keys.status(), 'down')
})

t.test('no key set yet: a 503 (nothing can be told), and the keys arrive within a second once the issuer is up', async (t) => {
  const issuer = await stubIssuer(t, [publicJwk('k1')])
  await issuer.stop()
  const { keys, fetched } = cache(t, issuer.url)
  await keys.start()
  t.equal(keys.status(), 'down')
  await t.rejects(keys.keyFor('k1'), SessionStoreUnavailableError, 'a server that never had keys cannot tell a good token from a forged one')
  await issuer.start()
  t.ok(await eventually(async () => await keys.keyFor('k1') !== undefined, 5000, 100), 'a keyless server tries again every second')
  t.ok(fetched.includes('keyless:ok'), fetched.join(' '))
})

t.test('a key that leaves the set is dropped at the next fetch: retirement reaches the app servers', async (t) => {
  const issuer = await stubIssuer(t, [publicJwk('old'), publicJwk('new')])
  const { keys } = cache(t, issuer.url)
  await keys.start()
  issuer.answer = { keys: [publicJwk('new')] }
  await keys.refresh('interval')
  t.same(keys.kids(), ['new'])
})

t.test('what is not a usable set is a failed fetch, and the keys held are kept', async (t) => {
  const good = publicJwk('k1')
  const issuer = await stubIssuer(t, [good])
  const { keys } = cache(t, issuer.url)
  await keys.start()
  const { privateKey } = generateKeyPairSync('ed25519')
  const bad: Array<[string, StubIssuer['answer']]> = [
    ['a 500', { status: 500, body: '{}' }],
    ['a redirect elsewhere', { status: 302, body: '', headers: { location: 'http://127.0.0.1:1/jwks.json' } }],
    ['not JSON', { status: 200, body: '<html>' }],
    ['no keys array', { status: 200, body: '{"keys":{}}' }],
    ['an empty set', { keys: [] }],
    ['only a private key (d)', { keys: [{ ...(privateKey.export({ format: 'jwk' }) as object), kid: 'leak' }] }],
    ['only an RSA key', { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: 'rsa' }] }],
    ['only an HS256 secret', { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'oct', alg: 'HS256' }] }],
    ['an Ed25519 key for another alg', { keys: [{ ...good, alg: 'ES256', kid: 'x' }] }],
    ['an Ed25519 key for encryption', { keys: [{ ...good, use: 'enc', kid: 'x' }] }],
    ['a key with no kid', { keys: [{ ...good, kid: undefined }] }],
    ['more than 64 KiB', { status: 200, body: JSON.stringify({ keys: [good], padding: 'x'.repeat(70_000) }) }]
  ]
  for (const [name, answer] of bad) {
    issuer.answer = answer
    t.equal(await keys.refresh('interval'), false, name)
    t.same(keys.kids(), ['k1'], `${name}: k1 kept`)
  }
  issuer.answer = { keys: [good, { ...publicJwk('leak'), d: 'AAAA' }] }
  t.equal(await keys.refresh('interval'), true)
  t.same(keys.kids(), ['k1'], 'a set with a good key and a leaked private one: the private one is never used')
})

t.test('a key that stays in the set stays the same object: what was made for it stays good', async (t) => {
  const k1 = publicJwk('k1')
  const issuer = await stubIssuer(t, [k1])
  const { keys } = cache(t, issuer.url)
  await keys.start()
  const before = await keys.keyFor('k1')
  issuer.answer = { keys: [k1, publicJwk('k2')] }
  await keys.refresh('interval')
  t.equal(await keys.keyFor('k1'), before, 'the same key object')
  issuer.answer = { keys: [{ ...publicJwk('k1') }] }
  await keys.refresh('interval')
  t.not(await keys.keyFor('k1'), before, 'a kid whose key changed gets a new one')
})
