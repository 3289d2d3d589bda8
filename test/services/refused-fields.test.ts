import t from 'tap'
import { poisoningKey } from '../../services/refused-fields.ts'
import { buildModeApp } from '../helpers/service-app.ts'

t.test('poisoningKey: the key Fastify\'s JSON parser refuses, or none', async (t) => {
  t.equal(poisoningKey('{"a":1,"__proto__":{"x":1}}'), '__proto__')
  t.equal(poisoningKey('{"a":[{"__proto__":"x"}]}'), '__proto__', 'at any depth, whatever it holds')
  t.equal(poisoningKey('{"constructor":{"prototype":{}}}'), 'constructor')
  t.equal(poisoningKey('{"constructor":{"x":1},"b":"__proto__"}'), undefined, 'a constructor without a prototype, a value that only reads "__proto__"')
  t.equal(poisoningKey('{"a":'), undefined, 'not JSON at all')
  t.equal(poisoningKey(`{"__proto__":${'['.repeat(100_000)}${']'.repeat(100_000)}}`), undefined, 'too deep to read: the parser\'s own answer stands')
  t.equal(({} as Record<string, unknown>).x, undefined, 'reading them changed no prototype')
})

// The login body is flat; the same rule holds for any schema a route declares, at any depth.
t.test('any route\'s schema: unexpected fields named where they are, in the querystring too; other routes unchanged', async (t) => {
  const app = await buildModeApp(t, 'memory')
  const Item = { type: 'object', properties: { id: { type: 'integer' } }, patternProperties: { '^x-': { type: 'string' } }, additionalProperties: false }
  app.post('/nested', {
    schema: {
      body: { type: 'object', properties: { items: { type: 'array', items: Item }, owner: { type: 'object', properties: { name: { type: 'string' } }, additionalProperties: false } }, additionalProperties: false },
      querystring: { type: 'object', properties: { page: { type: 'string' } }, additionalProperties: false }
    }
  }, async () => ({ ok: true }))
  const post = async (url: string, payload: unknown): Promise<{ status: number, message: unknown }> => {
    const res = await app.inject({ method: 'POST', url, payload: payload as Record<string, unknown> })
    return { status: res.statusCode, message: res.json().message }
  }
  t.same(await post('/nested?page=2', { items: [{ id: 1, 'x-note': 'fine' }], owner: { name: 'a' } }), { status: 200, message: undefined }, 'patternProperties are allowed')
  t.same(await post('/nested', { items: [{ id: 1 }, { id: 2, colour: 'red', 'x-ok': 'y', size: 3 }] }),
    { status: 400, message: 'body/items/1 has unexpected fields "colour" and "size": only "id" is accepted' })
  t.same(await post('/nested', { owner: { name: 'a', 'a/b~c': 1 } }), { status: 400, message: 'body/owner has an unexpected field "a/b~c": only "name" is accepted' })
  t.same(await post('/nested?page=1&sort=asc', {}), { status: 400, message: 'querystring has an unexpected field "sort": only "page" is accepted' })

  // Routes without a schema take what they took before.
  t.equal((await app.inject({ method: 'POST', url: '/logout', payload: { anything: 1, nested: { a: [] } } })).statusCode, 204, 'POST /logout ignores a body')
  t.equal((await app.inject({ method: 'GET', url: '/feeds?page=2&junk=1' })).json().reason, 'missing_token', 'GET /feeds ignores a query')
  t.equal((await app.inject({ method: 'GET', url: '/health?x=1' })).statusCode, 200)
})
