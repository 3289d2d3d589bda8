import type { AddressInfo } from 'node:net'
import t from 'tap'
import { rawExchange } from '../helpers/raw-http.ts'
import { buildTestApp } from '../helpers/service-app.ts'

// HTTP/1.1 pipelining (RFC 9112 9.3.2): responses go out in the order of the requests. A request
// the parser refuses, right behind a login still being answered (the password hash takes a
// while), must not be answered first: the client would take the 400 for its login's answer.
const LOGIN_BODY = '{"username":"alice","password":"wonderland"}'
const LOGIN = `POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${LOGIN_BODY.length}\r\n\r\n${LOGIN_BODY}`
const MALFORMED = 'GET /feeds HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n'

t.test('a malformed request behind a login in flight: the login is answered first, then the 400', async (t) => {
  const app = await buildTestApp(t, { AUTH_MODE: 'jwt' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  for (let i = 0; i < 5; i++) {
    const { responses, closed } = await rawExchange(port, LOGIN + MALFORMED, 5000)
    t.equal(responses[0]?.status, 200, `try ${i}: the first answer on the wire is the login's`)
    t.match(JSON.parse(responses[0]?.body ?? '{}'), { token: String }, `try ${i}: with its body`)
    t.equal(responses[1]?.status, 400, `try ${i}: then the refusal`)
    t.match(JSON.parse(responses[1]?.body ?? '{}'), { error: 'bad_request' })
    t.equal(responses.length, 2, `try ${i}: nothing else`)
    t.ok(closed, `try ${i}: and the connection is closed`)
  }
})

t.test('a malformed request on an idle connection is still refused at once', async (t) => {
  const app = await buildTestApp(t, { AUTH_MODE: 'jwt' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const { responses, closed } = await rawExchange(port, MALFORMED, 5000)
  t.same(responses.map((r) => r.status), [400])
  t.ok(closed)
})
