import t from 'tap'
import { isWellFormedSessionId, newSessionId } from '../../../services/auth/session-id.ts'

t.test('a session id is 256 random bits as 43 base64url characters', async (t) => {
  const ids = new Set<string>()
  for (let i = 0; i < 1000; i++) {
    const id = newSessionId()
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) t.fail(`not 43 base64url characters: ${id}`)
    ids.add(id)
  }
  t.equal(ids.size, 1000, 'no repeats in 1000')
  const id = newSessionId()
  t.equal(Buffer.from(id, 'base64url').length, 32, '32 bytes')
  t.equal(Buffer.from(id, 'base64url').toString('base64url'), id, 'canonical encoding')
  t.ok(isWellFormedSessionId(id))
})

t.test('anything that could not have been issued is not well formed', async (t) => {
  const id = newSessionId()
  for (const bad of ['', id.slice(1), `${id}A`, `${id.slice(1)}+`, `${id.slice(1)}/`, `${id.slice(1)}=`, `${id.slice(1)}.`, ` ${id.slice(1)}`, `${id.slice(1)}\n`, 'é'.repeat(43), `${id}\n`]) {
    t.notOk(isWellFormedSessionId(bad), JSON.stringify(bad))
  }
})
