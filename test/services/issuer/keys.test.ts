import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { activationDelaySeconds, loadKeyRing, readKeyFile, thumbprint, writeNewKey } from '../../../services/issuer/keys.ts'

// The issuer's keys: files in a directory, and a schedule read from them and the clock alone
// (published, then signing, then retired), so several issuers agree without talking.

const log = pino({ level: 'silent' })
const S = 1000

function dir (t: Test): string {
  const path = mkdtempSync(join(tmpdir(), 'issuer-keys-test-'))
  t.teardown(() => { rmSync(path, { recursive: true, force: true }) })
  return path
}

t.test('a key file: a private Ed25519 JWK, its kid its RFC 7638 thumbprint, readable by its owner only', async (t) => {
  const keys = dir(t)
  const made = await writeNewKey({ intoDir: keys }, 1_700_000_000_000)
  t.same(readdirSync(keys), [`${made.kid}.json`], 'named by its kid, nothing left aside')
  t.equal(statSync(made.path).mode & 0o777, 0o600)
  const file = JSON.parse(readFileSync(made.path, 'utf8')) as Record<string, unknown>
  t.same(Object.keys(file).sort(), ['alg', 'crv', 'd', 'kid', 'kty', 'signFrom', 'use', 'x'])
  t.match(file, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', signFrom: 1_700_000_000 })
  t.equal(made.kid, thumbprint(String(file.x)))
  // RFC 8037 A.3's example: the thumbprint of its Ed25519 public key.
  t.equal(thumbprint('11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo'), 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k', 'RFC 8037\'s own test vector')
  const read = await readKeyFile(made.path)
  t.same(read.jwk, { kid: made.kid, kty: 'OKP', crv: 'Ed25519', x: file.x, alg: 'EdDSA', use: 'sig' }, 'what the JWKS will publish: no d')
  t.equal(read.signFrom, 1_700_000_000_000)
  await t.rejects(writeNewKey({ path: made.path }, 0), { code: 'EEXIST' }, 'an existing file is never replaced')
})

t.test('a bad key file says what is wrong with it', async (t) => {
  const keys = dir(t)
  const good = JSON.parse(readFileSync((await writeNewKey({ intoDir: keys }, 0)).path, 'utf8')) as Record<string, unknown>
  const other = JSON.parse(readFileSync((await writeNewKey({ intoDir: keys }, 0)).path, 'utf8')) as Record<string, unknown>
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{', /cannot read it as JSON/],
    ['an RSA key', JSON.stringify({ ...good, kty: 'RSA' }), /not an Ed25519 private key/],
    ['no d: a public key', JSON.stringify({ ...good, d: undefined }), /not an Ed25519 private key/],
    ['no signFrom', JSON.stringify({ ...good, signFrom: undefined }), /signFrom must be a whole number/],
    ['signFrom in ms as a string', JSON.stringify({ ...good, signFrom: '1700000000' }), /signFrom must be a whole number/],
    ['x of another key', JSON.stringify({ ...good, x: other.x }), /not the public half of its d/],
    ['a kid that is not its thumbprint', JSON.stringify({ ...good, kid: 'mine' }), /kid "mine" is not the key's thumbprint/],
    ['d not a key', JSON.stringify({ ...good, d: 'AAAA' }), /does not import/]
  ]
  for (const [name, content, pattern] of cases) {
    const path = join(keys, 'bad.txt')
    writeFileSync(path, content)
    await t.rejects(readKeyFile(path), pattern, name)
  }
})

t.test('the schedule: published at once, signing from signFrom, retired when its last token has expired', async (t) => {
  const keys = dir(t)
  let clock = 1_000_000 * S
  const retireAfterMs = 305 * S // ACCESS_TTL_SECONDS 300 + JWT_CLOCK_TOLERANCE_SECONDS 5
  const first = await writeNewKey({ intoDir: keys }, clock - S)
  const ring = await loadKeyRing({ dir: keys, retireAfterMs, log, now: () => clock })
  t.equal(ring.signing().kid, first.kid)
  t.same(ring.published().map((k) => k.kid), [first.kid])

  const delay = activationDelaySeconds(60, 5)
  t.equal(delay, 67, 'a rescan (1 s) + the app servers\' refresh (60 s) + a fetch (1 s) + the tolerance (5 s)')
  const second = await writeNewKey({ intoDir: keys }, clock + delay * S)
  await ring.rescan()
  t.same(ring.published().map((k) => k.kid), [first.kid, second.kid], 'the new key is published at once, for the app servers to fetch')
  t.equal(ring.signing().kid, first.kid, 'but the old one still signs')
  clock += (delay - 1) * S
  t.equal(ring.signing().kid, first.kid, 'a second before signFrom: still the old one')
  clock += S
  t.equal(ring.signing().kid, second.kid, 'from signFrom on, the new one signs')
  t.same(ring.published().map((k) => k.kid), [first.kid, second.kid], 'the old one stays published: its tokens are still live')
  clock += retireAfterMs - S
  await ring.rescan()
  t.ok(existsSync(first.path), 'a second before its last token expires: kept')
  t.same(ring.published().map((k) => k.kid), [first.kid, second.kid])
  clock += S
  t.same(ring.published().map((k) => k.kid), [second.kid], 'ACCESS_TTL + tolerance after the new key began: retired')
  t.equal(ring.byKid(first.kid), undefined)
  await ring.rescan()
  t.notOk(existsSync(first.path), 'and its file deleted at the next rescan: no private key kept for nothing')
  t.equal(ring.signing().kid, second.kid)
})

t.test('several issuers over one directory agree, whoever reads it first', async (t) => {
  const keys = dir(t)
  let clock = 2_000_000 * S
  await writeNewKey({ intoDir: keys }, clock - 10 * S)
  const rings = await Promise.all([1, 2, 3].map(async () => await loadKeyRing({ dir: keys, retireAfterMs: 10 * S, log, now: () => clock })))
  const next = await writeNewKey({ intoDir: keys }, clock + 5 * S)
  for (const ring of rings) await ring.rescan()
  clock += 5 * S
  t.same(rings.map((r) => r.signing().kid), [next.kid, next.kid, next.kid])
  clock += 10 * S
  await rings[0]?.rescan()
  for (const ring of rings.slice(1)) await ring.rescan()
  t.same(rings.map((r) => r.published().map((k) => k.kid)), [[next.kid], [next.kid], [next.kid]], 'the one that deleted the file and the ones that found it gone')
})

t.test('a key file that cannot be deleted (a read-only Kubernetes Secret): retired all the same, the file kept', async (t) => {
  const keys = dir(t)
  let clock = 3_000_000 * S
  const old = await writeNewKey({ intoDir: keys }, clock - 100 * S)
  const next = await writeNewKey({ intoDir: keys }, clock - 50 * S)
  // Root ignores a directory's permissions, but not a file's immutable flag.
  if (process.getuid?.() === 0) {
    execFileSync('chattr', ['+i', old.path])
    t.teardown(() => { execFileSync('chattr', ['-i', old.path]) })
  } else {
    chmodSync(keys, 0o500)
    t.teardown(() => { chmodSync(keys, 0o700) })
  }
  const ring = await loadKeyRing({ dir: keys, retireAfterMs: 10 * S, log, now: () => clock })
  clock += S
  await ring.rescan()
  t.same(ring.published().map((k) => k.kid), [next.kid])
  t.equal(ring.signing().kid, next.kid)
  t.ok(existsSync(old.path), 'the file could not go, and nothing failed')
})

t.test('bad files are skipped with a warning; no usable key at all is an error that says how to make one', async (t) => {
  const keys = dir(t)
  writeFileSync(join(keys, 'broken.json'), '{')
  writeFileSync(join(keys, 'notes.txt'), 'not a key')
  const lines: string[] = []
  const spy = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } })
  await t.rejects(loadKeyRing({ dir: keys, retireAfterMs: S, log: spy }), new RegExp(`ISSUER_KEYS_DIR ${keys} holds no usable Ed25519 key: make one with node scripts/make-issuer-key.ts`))
  t.match(lines.join(''), /broken\.json.*issuer key file skipped/)
  const good = await writeNewKey({ intoDir: keys }, 0)
  const ring = await loadKeyRing({ dir: keys, retireAfterMs: S, log: spy })
  t.same(ring.published().map((k) => k.kid), [good.kid], 'the good one is used, the broken one skipped')
  await t.rejects(loadKeyRing({ dir: join(keys, 'missing'), retireAfterMs: S, log }), { code: 'ENOENT' })
})
