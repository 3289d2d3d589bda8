import t from 'tap'
import { buildModeApp, feedsWithBearer, login } from '../../../helpers/service-app.ts'

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

/** A clock the test moves: the app's memory stores read it instead of Date.now, so time passes without sleeping. */
function testClock (): { now: () => number, advance: (seconds: number) => void } {
  let now = Date.now()
  return { now: () => now, advance: (seconds) => { now += seconds * 1000 } }
}

t.test('a session past SESSION_TTL_SECONDS is "expired" when next presented, then forgotten', async (t) => {
  const clock = testClock()
  const app = await buildModeApp(t, 'memory', undefined, { SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '60' }, { now: clock.now })
  const { token } = await login(app)
  clock.advance(59)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'works a second before its end')
  clock.advance(1)
  const res = await feedsWithBearer(app, token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().reason, 'expired', 'found stale before any sweep: the reason the contract promises')
  t.equal((await feedsWithBearer(app, token)).json().reason, 'unknown_session', 'an expired session is deleted when found')
})

t.test('a stale session the sweep got to first is unknown_session: nothing is kept to say it expired', async (t) => {
  const clock = testClock()
  const app = await buildModeApp(t, 'memory', undefined, { SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '60' }, { now: clock.now })
  const { token } = await login(app)
  clock.advance(61)
  await login(app, 'bob', 'builder')
  t.equal((await feedsWithBearer(app, token)).json().reason, 'unknown_session', 'every login sweeps the sessions past their time')
})

t.test('SESSION_IDLE_SECONDS: a session unused that long ends, even before its absolute TTL', async (t) => {
  const clock = testClock()
  const app = await buildModeApp(t, 'memory', undefined, { SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '2' }, { now: clock.now })
  const busy = await login(app)
  const idle = await login(app, 'bob', 'builder')
  for (let i = 0; i < 5; i++) {
    clock.advance(0.5)
    t.equal((await feedsWithBearer(app, busy.token)).statusCode, 200, `used every 0.5 s: still alive at ${(i + 1) * 0.5} s`)
  }
  const res = await feedsWithBearer(app, idle.token)
  t.equal(res.statusCode, 401, 'unused for 2.5 s: ended')
  t.equal(res.json().reason, 'expired')
  clock.advance(1.9)
  t.equal((await feedsWithBearer(app, busy.token)).statusCode, 200, 'unused for 1.9 s: still alive')
  clock.advance(2)
  t.equal((await feedsWithBearer(app, busy.token)).json().reason, 'expired', 'unused for 2 s: ended')
})

t.test('the absolute timeout holds however busy the session is', async (t) => {
  const clock = testClock()
  const app = await buildModeApp(t, 'memory', undefined, { SESSION_TTL_SECONDS: '2', SESSION_IDLE_SECONDS: '2' }, { now: clock.now })
  const { token } = await login(app)
  const answers: string[] = []
  for (let i = 0; i < 4; i++) {
    clock.advance(0.5)
    const res = await feedsWithBearer(app, token)
    answers.push(res.statusCode === 200 ? 'ok' : res.json().reason)
  }
  t.same(answers, ['ok', 'ok', 'ok', 'expired'], 'used every 0.5 s, refused at 2 s')
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
