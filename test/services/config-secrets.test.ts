import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { ConfigError } from '../../lib/config.ts'
import { DEFAULT_KID, loadServerConfig } from '../../services/config.ts'
import { PUBLISHED_JWT_SECRETS } from '../../services/published-secrets.ts'
import { TEST_SECRET } from '../helpers/service-app.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const fresh = (): string => randomBytes(48).toString('base64')

function problems (t: Test, env: Record<string, string>): string[] {
  try {
    loadServerConfig(env)
  } catch (err) {
    t.type(err, ConfigError)
    return (err as ConfigError).problems
  }
  t.fail(`accepted ${JSON.stringify(Object.keys(env))}`)
  return []
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-secret-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

// The value .env.example shipped: the one most likely to be running somewhere.
const DEMO = 'demo-only-not-secret-replace-me-with-openssl-rand-base64-48'

t.test('a secret published in this repository is refused, wherever it is set, without echoing it', async (t) => {
  t.ok(PUBLISHED_JWT_SECRETS.has(DEMO), 'the demo secret .env.example shipped is on the list')
  for (const secret of PUBLISHED_JWT_SECRETS.keys()) {
    const [single] = problems(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret })
    t.match(single, /^JWT_SECRET is published in this repository \(.+\): anyone can sign tokens with it/, `JWT_SECRET: ${PUBLISHED_JWT_SECRETS.get(secret) ?? ''}`)
    t.match(single, 'openssl rand -base64 48', 'says how to make one')
    t.notMatch(single, secret, 'and never repeats the secret')
    t.match(problems(t, { AUTH_MODE: 'jwt', JWT_SECRET: ` ${secret}\n` }), [/^JWT_SECRET is published/], 'with whitespace around it too')
    const list = problems(t, { AUTH_MODE: 'jwt', JWT_SECRETS: `new:${fresh()},old:${secret}` })
    t.match(list, [/^JWT_SECRETS entry 2 of 2 \(kid "old"\): the secret is published in this repository/], 'any entry of JWT_SECRETS')
    t.notMatch(list.join('\n'), secret)
  }
  t.match(problems(t, { JWT_SECRET: DEMO }), [/or leave JWT_SECRET unset: npm start makes one per run, and Compose one per cluster when \.env leaves it empty$/], 'tells a Compose user whose .env still has it what to do')
  t.equal(loadServerConfig({ AUTH_MODE: 'memory', JWT_SECRET: DEMO }).mode, 'memory', 'modes that sign nothing do not care')
})

t.test('a secret of one character repeated is refused: it is how this repository\'s tests wrote theirs', async (t) => {
  for (const secret of ['a'.repeat(32), 'x'.repeat(48), 'é'.repeat(16), '0'.repeat(64)]) {
    t.match(problems(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret }), [/^JWT_SECRET is one character repeated/], `${secret[0] ?? ''} x ${secret.length}`)
  }
  t.match(problems(t, { AUTH_MODE: 'jwt', JWT_SECRETS: `k:${'k'.repeat(40)}` }), [/^JWT_SECRETS entry 1 of 1 \(kid "k"\): the secret is one character repeated/])
  t.equal(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: `${'a'.repeat(31)}b` }).jwt.keys.length, 1, 'two different characters are not the rule\'s business')
})

t.test('every secret written out in this repository is on the list, and the quick start\'s files hold none', async (t) => {
  const example = readFileSync(join(root, '.env.example'), 'utf8')
  t.match(example, /^JWT_SECRET=$/m, '.env.example leaves JWT_SECRET empty')
  t.match(example, /^JWT_SECRETS=$/m, 'and JWT_SECRETS')
  t.notOk(PUBLISHED_JWT_SECRETS.has(TEST_SECRET), 'the tests\' secret is not a published one:')
  t.notMatch(readFileSync(join(root, 'test/helpers/service-app.ts'), 'utf8'), TEST_SECRET, 'it is made when the tests start')

  // Anything assigned to a secret-like name, as code, YAML or env, long enough to be accepted.
  const assignment = /(jwt_?secrets?|secret)["']?\s*[:=]\s*["'`]?([^\s"'`;)($<>{}\\]{24,})/gi
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0')
    .filter((f) => f !== '' && !f.endsWith('package-lock.json') && !f.startsWith('test/services/config-secrets.test.ts') && /\.(ts|js|md|ya?ml|json|sh|conf|example)$|(^|\/)\.env|Dockerfile$/.test(f))
  const unlisted: string[] = []
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8')
    for (const [, name = '', value = ''] of text.matchAll(assignment)) {
      const secrets = /secrets$/i.test(name) ? value.split(',').map((entry) => entry.slice(entry.indexOf(':') + 1)) : [value]
      for (const secret of secrets) {
        if (Buffer.byteLength(secret) >= 32 && !PUBLISHED_JWT_SECRETS.has(secret) && !/^(.)\1*$/su.test(secret)) unlisted.push(`${file}: ${secret.slice(0, 12)}...`)
      }
    }
  }
  t.ok(files.length > 50, `${files.length} files searched`)
  t.same(unlisted, [], 'none that a server would accept')
})

t.test('JWT_SECRET_FILE: the secret from a file, when neither JWT_SECRET nor JWT_SECRETS is set', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'jwt-secret')
  const secret = fresh()
  writeFileSync(file, `${secret}\n`)
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET_FILE: file }).jwt.keys, [{ kid: DEFAULT_KID, secret }], 'the file\'s content, its trailing newline dropped')
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET_FILE: file, JWT_SECRET: '', JWT_SECRETS: '' }).jwt.keys, [{ kid: DEFAULT_KID, secret }], 'empty variables are unset (Compose passes them so)')

  const mine = fresh()
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET_FILE: file, JWT_SECRET: mine }).jwt.keys, [{ kid: DEFAULT_KID, secret: mine }], 'JWT_SECRET in the environment wins')
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET_FILE: file, JWT_SECRETS: `k:${mine}` }).jwt.keys, [{ kid: 'k', secret: mine }], 'and so does JWT_SECRETS')
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET_FILE: join(dir, 'missing'), JWT_SECRET: mine }).jwt.keys, [{ kid: DEFAULT_KID, secret: mine }], 'a file not needed is not read')
  t.equal(loadServerConfig({ AUTH_MODE: 'memory', JWT_SECRET_FILE: join(dir, 'missing') }).mode, 'memory', 'nor in modes that sign nothing')
})

t.test('JWT_SECRET_FILE: a file that cannot serve is named, with what to do', async (t) => {
  const dir = tempDir(t)
  t.match(problems(t, { AUTH_MODE: 'jwt', JWT_SECRET_FILE: join(dir, 'missing') }), [/^JWT_SECRET_FILE: cannot read .*missing \(ENOENT\)/])
  t.match(problems(t, { AUTH_MODE: 'jwt', JWT_SECRET_FILE: dir }), [/^JWT_SECRET_FILE: cannot read .* \(EISDIR\)/])
  const empty = join(dir, 'empty')
  writeFileSync(empty, '\n')
  t.match(problems(t, { AUTH_MODE: 'jwt', JWT_SECRET_FILE: empty }), [/^JWT_SECRET_FILE: .*empty is empty/])
  const short = join(dir, 'short')
  writeFileSync(short, 'x1y2z3')
  t.match(problems(t, { AUTH_MODE: 'jwt', JWT_SECRET_FILE: short }), [/^JWT_SECRET_FILE \(.*short\): the secret must be at least 32 bytes \(got 6\)/])
  const published = join(dir, 'published')
  writeFileSync(published, DEMO)
  const [problem] = problems(t, { AUTH_MODE: 'jwt', JWT_SECRET_FILE: published })
  t.match(problem, /^JWT_SECRET_FILE \(.*published\): the secret is published in this repository/)
  t.notMatch(problem, DEMO)
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked')
    writeFileSync(locked, fresh())
    chmodSync(locked, 0o000)
    t.match(problems(t, { AUTH_MODE: 'jwt', JWT_SECRET_FILE: locked }), [/^JWT_SECRET_FILE: cannot read .*locked \(EACCES\)/])
  }
})
