import t from 'tap'
import { withCluster } from '../helpers/cluster.ts'
import { rawJson } from '../helpers/raw-http.ts'

// Everything on the bad-input list, through the balancer to real app servers, the way
// a new user (or a scanner) would send it: a 4xx with a JSON body, never a 5xx, never a crash,
// one log line each.
const login = (body: string, contentType = 'application/json', extra = ''): string =>
  `POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`
const get = (path: string, extra = '', method = 'GET'): string => `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`

const CASES: Array<{ name: string, data: string, status: number }> = [
  { name: 'malformed JSON', data: login('{"username":"alice",'), status: 400 },
  { name: 'JSON of the wrong shape', data: login('["alice","wonderland"]'), status: 400 },
  { name: 'a form-encoded body', data: login('username=alice&password=wonderland', 'application/x-www-form-urlencoded'), status: 415 },
  { name: 'text/plain', data: login('{"username":"alice","password":"wonderland"}', 'text/plain'), status: 400 },
  { name: 'no content type', data: 'POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', status: 415 },
  { name: 'a body over 16 KiB', data: login(JSON.stringify({ username: 'alice', password: 'p'.repeat(20_000) })), status: 413 },
  { name: 'a missing password', data: login('{"username":"alice"}'), status: 400 },
  { name: 'a username over 64 characters', data: login(JSON.stringify({ username: 'a'.repeat(65), password: 'x' })), status: 400 },
  { name: 'a password over 256 characters', data: login(JSON.stringify({ username: 'alice', password: 'x'.repeat(257) })), status: 400 },
  { name: 'an extra field', data: login('{"username":"alice","password":"wonderland","role":"admin"}'), status: 400 },
  { name: 'several extra fields, one holding nested junk', data: login('{"username":"alice","password":"wonderland","role":"admin","meta":{"a":[{"b":null}]}}'), status: 400 },
  { name: 'a "__proto__" key', data: login('{"username":"alice","password":"wonderland","__proto__":{"admin":true}}'), status: 400 },
  { name: 'a "constructor" key', data: login('{"username":"alice","password":"wonderland","constructor":{"prototype":{"admin":true}}}'), status: 400 },
  { name: 'headers over 8 KiB', data: get('/feeds', `X-Padding: ${'a'.repeat(9000)}\r\n`), status: 431 },
  { name: 'a cookie header over 8 KiB', data: get('/feeds', `Cookie: auth=${'a'.repeat(9000)}\r\n`), status: 431 },
  { name: 'Content-Length with Transfer-Encoding', data: 'POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /feeds HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', status: 400 },
  { name: 'two Content-Lengths', data: 'POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', status: 400 },
  { name: 'an unknown path', data: get('/admin'), status: 404 },
  { name: 'a path with dot segments', data: get('/feeds/../../etc/passwd'), status: 404 },
  { name: 'an encoded NUL and slashes', data: get('/feeds%00%2f..%2f'), status: 404 },
  { name: 'an undecodable path', data: get('/%zz'), status: 400 },
  { name: 'a very long path', data: get(`/${'x'.repeat(6000)}`), status: 404 },
  { name: 'a query of 500 parameters', data: get(`/feeds?${Array.from({ length: 500 }, (_, i) => `a${i}=${i}`).join('&')}`), status: 401 },
  { name: 'DELETE /feeds', data: get('/feeds', '', 'DELETE'), status: 404 },
  { name: 'PUT /login', data: get('/login', '', 'PUT'), status: 404 },
  { name: 'TRACE /', data: get('/', '', 'TRACE'), status: 404 },
  { name: 'PROPFIND /feeds', data: get('/feeds', '', 'PROPFIND'), status: 404 },
  { name: 'GET * (an asterisk target without OPTIONS)', data: get('*'), status: 400 },
  { name: 'CONNECT', data: 'CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n', status: 405 },
  { name: 'an absolute-form target', data: get('http://evil.example/admin'), status: 404 },
  { name: 'a malformed request line', data: 'GET\r\n\r\n', status: 400 }
]

// postgres mode too: its servers and the PostgreSQL they log beside (whose lines are not counted) take the same bad input.
for (const mode of ['memory', 'postgres'] as const) {
  t.test(`${mode} mode: bad input through the balancer: a 4xx with a JSON body, never a 5xx, one log line each`, async (t) => {
    const lines: string[] = []
    const cluster = await withCluster(t, { mode, servers: 2, logLevel: 'info', onLog: (source, line) => { lines.push(`${source} ${line}`) } })
    const port = Number(new URL(cluster.url).port)
    const startLine = lines.length
    for (const { name, data, status } of CASES) {
      const answer = await rawJson(port, data, 5000)
      t.equal(answer.status, status, `${name}: ${status}`)
      t.match(answer.headers['content-type'], /^application\/json/, `${name}: JSON`)
      t.match(answer.json, { error: String }, `${name}: an error in the body`)
      t.equal(answer.count, 1, `${name}: one answer`)
    }
    // Wait for the last lines to arrive through the pipes.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const logged = lines.slice(startLine).filter((line) => !line.startsWith('postgres ') && !line.includes('"/health"') && !/"level":(20|10)/.test(line))
    t.equal(logged.length, CASES.length, `one log line per bad request (${logged.length} for ${CASES.length})`, { logged })
    t.notOk(logged.some((line) => /"level":(50|60)/.test(line)), 'none of them at error level: they are the client\'s mistakes')
    t.ok([cluster.balancer, ...cluster.servers].every((p) => p.running), 'no process died')

    // Not bad input: OPTIONS * asks about the server as a whole, and the balancer answers for the cluster.
    const options = await rawJson(port, get('*', '', 'OPTIONS'), 5000)
    t.equal(options.status, 204, 'OPTIONS *: 204 from the balancer')
    t.equal(options.headers.allow, 'GET, HEAD, POST, OPTIONS', 'OPTIONS *: the methods the cluster answers')
  })
}
