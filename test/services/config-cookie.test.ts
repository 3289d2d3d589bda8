import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError } from '../../lib/config.ts'
import { DEFAULT_KID, loadServerConfig } from '../../services/config.ts'
import { PUBLISHED_JWT_SECRETS } from '../../services/published-secrets.ts'

// cookie mode reads its keys as jwt mode does (COOKIE_SECRET, COOKIE_SECRETS, COOKIE_SECRET_FILE),
// with every message naming its own variable. Made per run, as every secret in the tests is.
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

t.test('cookie mode needs a key, and says how to make one', async (t) => {
  const [problem] = problems(t, { AUTH_MODE: 'cookie' })
  t.match(problem, /^COOKIE_SECRET is required in cookie mode: set it to the same random value \(at least 32 bytes\) on every server, e\.g\. COOKIE_SECRET=\$\(openssl rand -base64 48\); or set COOKIE_SECRETS=kid:secret,\.\.\. to rotate keys$/)
  t.match(problems(t, { AUTH_MODE: 'cookie', JWT_SECRET: fresh() }), [/^COOKIE_SECRET is required/], 'a JWT secret is not a cookie key')
  const secret = fresh()
  t.same(loadServerConfig({ AUTH_MODE: 'cookie', COOKIE_SECRET: secret }).cookie.keys, [{ kid: DEFAULT_KID, secret }])
  t.same(loadServerConfig({ AUTH_MODE: 'cookie', COOKIE_SECRET: secret }).jwt.keys, [], 'and no JWT key is read')
  t.same(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: secret, COOKIE_SECRET: 'short' }).cookie.keys, [], 'other modes ignore the cookie variables')
})

t.test('a key too short, published, or one character repeated is refused, naming the variable and never the key', async (t) => {
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRET: 'x1y2z3' }), [/^COOKIE_SECRET must be at least 32 bytes \(got 6\), e\.g\. \$\(openssl rand -base64 48\)$/])
  for (const secret of PUBLISHED_JWT_SECRETS.keys()) {
    const [problem] = problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRET: secret })
    t.match(problem, /^COOKIE_SECRET is published in this repository \(.+\): anyone can read every session cookie made with it, and make ones your servers accept/, PUBLISHED_JWT_SECRETS.get(secret) ?? '')
    t.match(problem, /or leave COOKIE_SECRET unset: npm start makes one per run, and Compose one per cluster/)
    t.notMatch(problem, secret)
  }
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRET: 'k'.repeat(44) }), [/^COOKIE_SECRET is one character repeated/])
})

t.test('COOKIE_SECRETS: kid:secret, the first seals; each bad entry named', async (t) => {
  const a = fresh()
  const b = fresh()
  t.same(loadServerConfig({ AUTH_MODE: 'cookie', COOKIE_SECRETS: `2026-11:${a}, 2026-10:${b}` }).cookie.keys, [{ kid: '2026-11', secret: a }, { kid: '2026-10', secret: b }])
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRETS: a }), [/^COOKIE_SECRETS entry 1 of 1 must be kid:secret.*\(e\.g\. COOKIE_SECRETS=2026-11:newsecret,2026-10:oldsecret\)/])
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRETS: `new:${a},old:short` }), [/^COOKIE_SECRETS entry 2 of 2 \(kid "old"\): the secret must be at least 32 bytes/])
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRETS: `a:${a},a:${b}` }), [/kid "a" is listed twice/])
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRET: a, COOKIE_SECRETS: `k:${b}` }), [/^COOKIE_SECRET and COOKIE_SECRETS are both set: set only one \(COOKIE_SECRET=s is the same as COOKIE_SECRETS=default:s\)/])
  const [published] = PUBLISHED_JWT_SECRETS.keys()
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRETS: `new:${a},old:${published ?? ''}` }), [/^COOKIE_SECRETS entry 2 of 2 \(kid "old"\): the secret is published in this repository/])
})

t.test('COOKIE_SECRET_FILE: read when neither variable is set; a file that cannot serve is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cookie-secret-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'cookie-secret')
  const secret = fresh()
  writeFileSync(file, `${secret}\n`)
  t.same(loadServerConfig({ AUTH_MODE: 'cookie', COOKIE_SECRET_FILE: file }).cookie.keys, [{ kid: DEFAULT_KID, secret }], 'the file, its newline dropped')
  t.same(loadServerConfig({ AUTH_MODE: 'cookie', COOKIE_SECRET_FILE: file, COOKIE_SECRET: '', COOKIE_SECRETS: '' }).cookie.keys, [{ kid: DEFAULT_KID, secret }], 'empty variables are unset (Compose passes them so)')
  const mine = fresh()
  t.same(loadServerConfig({ AUTH_MODE: 'cookie', COOKIE_SECRET_FILE: file, COOKIE_SECRET: mine }).cookie.keys, [{ kid: DEFAULT_KID, secret: mine }], 'COOKIE_SECRET wins')
  t.same(loadServerConfig({ AUTH_MODE: 'cookie', COOKIE_SECRET_FILE: join(dir, 'missing'), COOKIE_SECRETS: `k:${mine}` }).cookie.keys, [{ kid: 'k', secret: mine }], 'a file not needed is not read')
  t.equal(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: mine, COOKIE_SECRET_FILE: join(dir, 'missing') }).mode, 'jwt', 'nor in other modes')

  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRET_FILE: join(dir, 'missing') }), [/^COOKIE_SECRET_FILE: cannot read .*missing \(ENOENT\); set it to a readable file holding the secret, or set COOKIE_SECRET instead$/])
  const empty = join(dir, 'empty')
  writeFileSync(empty, '\n')
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRET_FILE: empty }), [/^COOKIE_SECRET_FILE: .*empty is empty; .* or set COOKIE_SECRET instead$/])
  const [published] = PUBLISHED_JWT_SECRETS.keys()
  const leaked = join(dir, 'leaked')
  writeFileSync(leaked, published ?? '')
  t.match(problems(t, { AUTH_MODE: 'cookie', COOKIE_SECRET_FILE: leaked }), [/^COOKIE_SECRET_FILE \(.*leaked\): the secret is published in this repository/])
})
