import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { runCli } from '../helpers/cli.ts'
import { buildTestApp, feedsWithBearer, login } from '../helpers/service-app.ts'

// What Compose's keygen service runs before the app servers start (docker-compose.yml).
const ENTRY = fileURLToPath(new URL('../../scripts/make-secret.ts', import.meta.url))

async function makeSecret (t: Test, ...args: string[]): Promise<{ code: number | null, output: string }> {
  const run = runCli(t, ENTRY, args)
  const code = await run.exited
  return { code, output: run.output() }
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'make-secret-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

t.test('makes a random secret, readable by its owner only, and never prints it', async (t) => {
  const file = join(tempDir(t), 'jwt-secret')
  const made = await makeSecret(t, file)
  t.equal(made.code, 0)
  t.match(made.output, 'made a new secret')
  const secret = readFileSync(file, 'utf8')
  t.match(secret, /^[A-Za-z0-9+/]{64}\n$/, '48 random bytes in base64, as openssl rand -base64 48 makes')
  t.notMatch(made.output, secret.trim())
  t.equal(statSync(file).mode & 0o777, 0o600)

  const again = await makeSecret(t, file)
  t.equal(again.code, 0)
  t.match(again.output, 'already holds a secret: kept')
  t.equal(readFileSync(file, 'utf8'), secret, 'a second run keeps it: tokens survive a restart of the stack')

  const other = join(tempDir(t), 'jwt-secret')
  await makeSecret(t, other)
  t.not(readFileSync(other, 'utf8'), secret, 'another cluster gets another secret')
})

t.test('an empty file is replaced; a place it cannot write is a clear failure', async (t) => {
  const dir = tempDir(t)
  const empty = join(dir, 'empty')
  writeFileSync(empty, '\n')
  t.equal((await makeSecret(t, empty)).code, 0)
  t.match(readFileSync(empty, 'utf8'), /^[A-Za-z0-9+/]{64}\n$/)

  const missing = await makeSecret(t, join(dir, 'no-such-dir', 'jwt-secret'))
  t.equal(missing.code, 1)
  t.match(missing.output, /keygen: cannot write the secret to .*no-such-dir\/jwt-secret \(ENOENT\)/)
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked')
    rmSync(locked, { force: true })
    writeFileSync(join(dir, 'placeholder'), '')
    chmodSync(dir, 0o500)
    t.teardown(() => { chmodSync(dir, 0o700) })
    t.match((await makeSecret(t, locked)).output, /\(EACCES\)/)
  }
  const usage = await makeSecret(t)
  t.equal(usage.code, 2)
  t.match(usage.output, 'Usage: node scripts/make-secret.ts FILE')
})

t.test('servers given the file (JWT_SECRET_FILE) share the key: a token from one works on the other', async (t) => {
  const file = join(tempDir(t), 'jwt-secret')
  await makeSecret(t, file)
  const env = { AUTH_MODE: 'jwt', JWT_SECRET_FILE: file, JWT_SECRET: '', JWT_SECRETS: '' }
  const one = await buildTestApp(t, { ...env, SERVER_ID: 'one' })
  const two = await buildTestApp(t, { ...env, SERVER_ID: 'two' })
  const { token } = await login(one)
  const answer = await feedsWithBearer(two, token)
  t.equal(answer.statusCode, 200)
  t.equal(answer.json().servedBy, 'two')
  t.equal(one.config.jwt.keys[0]?.secret, readFileSync(file, 'utf8').trim())
})

t.test('several files: one secret each, the JWT secret and the cookie key Compose\'s keygen makes', async (t) => {
  const dir = tempDir(t)
  const jwt = join(dir, 'jwt-secret')
  const cookie = join(dir, 'cookie-secret')
  const made = await makeSecret(t, jwt, cookie)
  t.equal(made.code, 0)
  t.match(made.output, `made a new secret in ${jwt}`)
  t.match(made.output, `made a new secret in ${cookie}`)
  const [a, b] = [readFileSync(jwt, 'utf8'), readFileSync(cookie, 'utf8')]
  t.match(a, /^[A-Za-z0-9+/]{64}\n$/)
  t.match(b, /^[A-Za-z0-9+/]{64}\n$/)
  t.not(a, b, 'each file its own secret: one leaked key gives away nothing of the other')
  t.equal(statSync(cookie).mode & 0o777, 0o600)

  const again = await makeSecret(t, jwt, cookie)
  t.match(again.output, /already holds a secret: kept[\s\S]*already holds a secret: kept/)
  t.same([readFileSync(jwt, 'utf8'), readFileSync(cookie, 'utf8')], [a, b], 'both kept')

  const partly = await makeSecret(t, join(dir, 'no-such-dir', 'jwt-secret'), join(dir, 'third'))
  t.equal(partly.code, 1, 'a file it cannot write fails the run')
  t.match(partly.output, /cannot write the secret to .*no-such-dir\/jwt-secret/)
  t.match(readFileSync(join(dir, 'third'), 'utf8'), /^[A-Za-z0-9+/]{64}\n$/, 'after trying the others')
})

t.test('servers given the file (COOKIE_SECRET_FILE) share the cookie key: a value from one opens on the other', async (t) => {
  const file = join(tempDir(t), 'cookie-secret')
  await makeSecret(t, file)
  const env = { AUTH_MODE: 'cookie', COOKIE_SECRET_FILE: file, COOKIE_SECRET: '', COOKIE_SECRETS: '' }
  const one = await buildTestApp(t, { ...env, SERVER_ID: 'one' })
  const two = await buildTestApp(t, { ...env, SERVER_ID: 'two' })
  const answer = await feedsWithBearer(two, (await login(one)).token)
  t.equal(answer.statusCode, 200)
  t.equal(one.config.cookie.keys[0]?.secret, readFileSync(file, 'utf8').trim())
})
