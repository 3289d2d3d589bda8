import { performance } from 'node:perf_hooks'
import t from 'tap'
import { DEMO_USERS, createUserStore } from '../../services/users.ts'

t.test('the demo users are the three the contract names', async (t) => {
  t.same(DEMO_USERS, { alice: 'wonderland', bob: 'builder', carol: 'lighthouse' })
})

t.test('the right pair gives the username; anything else gives null', async (t) => {
  const users = await createUserStore()
  t.equal(await users.verify('alice', 'wonderland'), 'alice')
  t.equal(await users.verify('bob', 'builder'), 'bob')
  t.equal(await users.verify('carol', 'lighthouse'), 'carol')

  t.equal(await users.verify('alice', 'wrong'), null, 'wrong password')
  t.equal(await users.verify('alice', 'builder'), null, "another user's password")
  t.equal(await users.verify('alice', 'Wonderland'), null, 'passwords are case-sensitive')
  t.equal(await users.verify('alice', 'wonderland '), null, 'no trimming')
  t.equal(await users.verify('alice', ''), null, 'empty password')
  t.equal(await users.verify('mallory', 'wonderland'), null, 'unknown user')
  t.equal(await users.verify('Alice', 'wonderland'), null, 'usernames are case-sensitive')
  t.equal(await users.verify('', ''), null, 'empty user')
  t.equal(await users.verify('__proto__', 'x'), null, 'a prototype key is no user')
  t.equal(await users.verify('constructor', 'x'), null)
})

t.test('a store can be built from other users', async (t) => {
  const users = await createUserStore({ dave: 'dive', eve: 'dive' })
  t.equal(await users.verify('dave', 'dive'), 'dave')
  t.equal(await users.verify('eve', 'dive'), 'eve', 'two users may share a password')
  t.equal(await users.verify('alice', 'wonderland'), null, 'the demo users are not in it')
})

t.test('an unknown user costs a real hash too, so timing does not reveal which users exist', async (t) => {
  const users = await createUserStore()
  // Warm up, then take medians: a missing decoy would make unknown users ~1000x faster than known ones.
  await users.verify('alice', 'x')
  const time = async (username: string): Promise<number> => {
    const samples: number[] = []
    for (let i = 0; i < 5; i++) {
      const started = performance.now()
      await users.verify(username, 'not-the-password')
      samples.push(performance.now() - started)
    }
    return samples.sort((a, b) => a - b)[2] ?? 0
  }
  const known = await time('alice')
  const unknown = await time('nobody-by-this-name')
  t.ok(known > 1, `a known user's check does real work (${known.toFixed(2)} ms)`)
  t.ok(unknown > known / 4, `an unknown user's check takes comparable time (${unknown.toFixed(2)} ms vs ${known.toFixed(2)} ms)`)
})

// Not tested: that two stores salt the same password differently. The hashes are private to
// the store's closure and nothing observable depends on the salt, so testing it would need
// the store to expose its hashes just for the test.
