import t from 'tap'
import { buildModeApp, feedsWithBearer, login, sleep } from '../../helpers/service-app.ts'

const SESSION_ID = /^[A-Za-z0-9_-]{43}$/

t.test('a session id is 43 base64url characters (256 bits), new at every login', async (t) => {
  const app = await buildModeApp(t, 'memory')
  const first = await login(app)
  const second = await login(app)
  t.match(first.token, SESSION_ID)
  t.equal(Buffer.from(first.token, 'base64url').length, 32)
  t.not(first.token, second.token, 'logging in twice gives two sessions')
  t.equal(first.cookie, first.token, 'the cookie carries the same id')
  t.equal((await feedsWithBearer(app, first.token)).statusCode, 200, 'and both work')
  t.equal((await feedsWithBearer(app, second.token)).statusCode, 200)
})

t.test('a session expires after SESSION_TTL_SECONDS', async (t) => {
  const app = await buildModeApp(t, 'memory', undefined, { SESSION_TTL_SECONDS: '1' })
  const { token } = await login(app)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'works at first')
  await sleep(1100)
  const res = await feedsWithBearer(app, token)
  t.equal(res.statusCode, 401)
  // The sweeper may have dropped it already (unknown_session) or verify finds it stale (expired).
  t.match(res.json().reason, /^(expired|unknown_session)$/)
})

t.test('a stale session found before the sweeper gets to it is "expired", then forgotten', async (t) => {
  // TTL 2 s: the sweeper runs every 2 s, so 2.1 s after login there is a window where the
  // entry is still in the map. Whichever reason comes first, the second lookup is unknown.
  const app = await buildModeApp(t, 'memory', undefined, { SESSION_TTL_SECONDS: '2' })
  const { token } = await login(app)
  await sleep(2050)
  const first = (await feedsWithBearer(app, token)).json().reason
  t.match(first, /^(expired|unknown_session)$/)
  t.equal((await feedsWithBearer(app, token)).json().reason, 'unknown_session', 'an expired session is deleted when found')
})

t.test('MAX_MEMORY_SESSIONS: at the cap, a new login evicts the least recently used session', async (t) => {
  const app = await buildModeApp(t, 'memory', undefined, { MAX_MEMORY_SESSIONS: '2' })
  const a = await login(app)
  const b = await login(app, 'bob', 'builder')
  t.equal((await feedsWithBearer(app, a.token)).statusCode, 200, 'a is used after b was made: b is now the least recently used')
  const c = await login(app, 'carol', 'lighthouse')
  const evicted = await feedsWithBearer(app, b.token)
  t.equal(evicted.statusCode, 401, 'b is gone')
  t.equal(evicted.json().reason, 'unknown_session')
  t.equal((await feedsWithBearer(app, a.token)).json().user, 'alice', 'a stays')
  t.equal((await feedsWithBearer(app, c.token)).json().user, 'carol', 'the new one works')
  await login(app)
  t.equal((await feedsWithBearer(app, a.token)).json().reason, 'unknown_session', 'and the next login evicts the next least recently used')
  t.equal((await feedsWithBearer(app, c.token)).statusCode, 200)
})

t.test('SESSION_IDLE_SECONDS: a session unused that long ends, even before its absolute TTL', async (t) => {
  const app = await buildModeApp(t, 'memory', undefined, { SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '2' })
  const busy = await login(app)
  const idle = await login(app, 'bob', 'builder')
  for (let i = 0; i < 5; i++) {
    await sleep(500)
    t.equal((await feedsWithBearer(app, busy.token)).statusCode, 200, `used every 0.5 s: still alive at ${(i + 1) * 0.5} s`)
  }
  const res = await feedsWithBearer(app, idle.token)
  t.equal(res.statusCode, 401, 'unused for 2.5 s: ended')
  t.match(res.json().reason, /^(expired|unknown_session)$/)
})

t.test('the absolute timeout holds however busy the session is', async (t) => {
  const app = await buildModeApp(t, 'memory', undefined, { SESSION_TTL_SECONDS: '2', SESSION_IDLE_SECONDS: '2' })
  const { token } = await login(app)
  let last = 200
  for (let i = 0; i < 6 && last === 200; i++) {
    await sleep(500)
    last = (await feedsWithBearer(app, token)).statusCode
  }
  t.equal(last, 401, 'refused after 2 s of constant use')
})

t.test('a session made on another memory server is unknown here: the reason for sticky sessions or Redis', async (t) => {
  const one = await buildModeApp(t, 'memory', undefined, { SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'memory', undefined, { SERVER_ID: 'two' })
  const { token } = await login(one)
  t.equal((await feedsWithBearer(one, token)).statusCode, 200)
  const elsewhere = await feedsWithBearer(two, token)
  t.equal(elsewhere.statusCode, 401)
  t.same(elsewhere.json(), { error: 'unauthorized', reason: 'unknown_session', servedBy: 'two' })
})

t.test('a token that is not shaped like a session id is invalid_token; a well-shaped unknown one is unknown_session', async (t) => {
  const app = await buildModeApp(t, 'memory')
  const { token } = await login(app)
  t.equal((await feedsWithBearer(app, token.slice(1))).json().reason, 'invalid_token', '42 characters')
  t.equal((await feedsWithBearer(app, `${token}A`)).json().reason, 'invalid_token', '44 characters')
  t.equal((await feedsWithBearer(app, 'x'.repeat(5000))).json().reason, 'invalid_token')
  t.equal((await feedsWithBearer(app, `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).json().reason, 'unknown_session', 'one character changed')
})

t.test('closing the app forgets every session', async (t) => {
  const app = await buildModeApp(t, 'memory')
  const { token } = await login(app)
  await app.authenticator.close()
  t.equal((await app.authenticator.verify(token)).ok, false)
})
