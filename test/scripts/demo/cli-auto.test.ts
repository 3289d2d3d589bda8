import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { formatAuthMs } from '../../../scripts/lib/auth-step-timing.ts'
import { runCli, type CliRun } from '../../helpers/cli.ts'
import type { Test } from 'tap'
import { redisSessions } from '../../../scripts/demo/steps/04-redis-sessions.ts'
import { jwtStateless, type JwtStateless } from '../../../scripts/demo/steps/06-jwt-stateless.ts'
import { jwtForgeries, type JwtForgeries } from '../../../scripts/demo/steps/07-jwt-forgeries.ts'
import { encryptedCookie, type EncryptedCookie } from '../../../scripts/demo/steps/08-encrypted-cookie.ts'
import { jwtKeyRotation, type JwtRotation } from '../../../scripts/demo/steps/09-jwt-key-rotation.ts'
import { jwtLogout, type JwtLogout } from '../../../scripts/demo/steps/10-jwt-logout.ts'
import { jwtRevocation, type JwtRevocation } from '../../../scripts/demo/steps/11-jwt-revocation.ts'
import { checkCanForge } from '../../../scripts/demo/steps/14-check-can-forge.ts'
import { refreshTokens } from '../../../scripts/demo/steps/15-refresh-tokens.ts'
import { jwksRotation } from '../../../scripts/demo/steps/16-jwks-rotation.ts'
import { STEPS } from '../../../scripts/demo/steps/index.ts'
import { checkIssuerSteps } from './issuer-steps.ts'
import type { Step } from '../../../scripts/demo/step.ts'

const DEMO = fileURLToPath(new URL('../../../scripts/demo.ts', import.meta.url))
const launch = (t: Test, args: string[]): CliRun => runCli(t, DEMO, args)

// Real clusters on a machine that may be busy: more time than the suite's default.
t.setTimeout(300_000)

/** A step's number: its place in the registry. */
const numberOf = (step: Step<unknown>): number => STEPS.indexOf(step) + 1
const FIRST_JWT_STEP = numberOf(jwtStateless)

t.test('npm run demo -- --auto --step N: the jwt steps straight through, with what they measured', async (t) => {
  const json = join(mkdtempSync(join(tmpdir(), 'demo-')), 'steps.json')
  const run = launch(t, ['--auto', '--step', String(FIRST_JWT_STEP), '--port', '0', '--json', json])
  const code = await run.exited
  t.equal(code, 0, 'exits 0')
  if (code !== 0) t.comment(run.output())
  const out = run.output()
  const total = STEPS.length
  t.notMatch(out, `Step ${FIRST_JWT_STEP - 1} of ${total}`)
  t.match(out, `Step ${FIRST_JWT_STEP} of ${total}: JWT: no shared state, and nothing hidden`)
  t.match(out, `Step ${numberOf(jwtKeyRotation)} of ${total}: JWT: rotate the signing key with no one logged out`)
  t.match(out, `Step ${numberOf(jwtLogout)} of ${total}: JWT: log out, and the token still works`)
  t.match(out, 'That is the story.')
  t.notMatch(out, 'Press Enter', '--auto does not wait')

  const { steps } = JSON.parse(readFileSync(json, 'utf8')) as { steps: Array<{ step: number, result: unknown, lesson: string }> }
  t.same(steps.map((s) => s.step), STEPS.map((_, i) => i + 1).slice(FIRST_JWT_STEP - 1), 'the first jwt step to the last, in order')
  const reportOf = (step: Step<unknown>): { result: unknown, lesson: string } => steps.find((s) => s.step === numberOf(step)) ?? { result: undefined, lesson: '' }
  const five = reportOf(jwtStateless).result as JwtStateless
  t.same([five.fetches.ok, five.fetches.total, five.fetches.servers.length], [6, 6, 3], 'every server accepts the token')
  t.equal(five.signatureMatches, true, 'the signature is the HMAC of header.payload under the cluster\'s secret')
  t.match(five.header, { alg: 'HS256', typ: 'JWT' })
  t.match(five.payload, { sub: 'alice', iss: 'auth-cluster' })
  t.match(out, 'payload: {"sub":"alice"', 'the payload is shown decoded')
  t.match(reportOf(jwtStateless).lesson, 'an encoding, not encryption')
  t.ok(five.authStep.medianMs > 0 && five.authStep.medianMs < 1, `the signature check timed: ${five.authStep.medianMs} ms`)
  t.match(reportOf(jwtStateless).lesson, `each server checked the signature itself, in a median of ${formatAuthMs(five.authStep.medianMs)} ms (the median of 200 warm requests, 12 at a time after 200 not counted, from the servers' Server-Timing)`)

  const six = reportOf(jwtForgeries).result as JwtForgeries
  t.equal(six.real.ok, 1)
  for (const forgery of ['tampered', 'wrongSecret', 'unsigned'] as const) {
    t.same([six[forgery].refused, six[forgery].total, six[forgery].servers.length], [3, 3, 3], `${forgery}: refused by every server`)
    t.same(six[forgery].reasons, ['invalid_token'])
  }
  t.not(six.change.from, six.change.to, 'one character changed')

  // Right after the forgeries, on their cluster, then on a cookie cluster of its own.
  t.test('an encrypted session beside the JWT: unreadable, tamper-proof, and still not revocable', async (t) => {
    const { jwt, cookie } = reportOf(encryptedCookie).result as EncryptedCookie
    const lesson = reportOf(encryptedCookie).lesson
    const everyone = (tally: { ok: number, total: number, servers: string[] }): number[] => [tally.ok, tally.total, tally.servers.length]
    t.equal(numberOf(encryptedCookie), numberOf(jwtForgeries) + 1, 'it follows the forgeries')
    t.match(out, /\[starting 3 app servers in cookie mode behind a round-robin balancer…\]/, 'its second cluster is in cookie mode')
    const upToRotation = out.slice(0, out.indexOf(`Step ${numberOf(jwtKeyRotation)} of ${total}`))
    t.equal(upToRotation.match(/\[starting 3 app servers in jwt mode behind a round-robin balancer…\]/g)?.length, 1, 'and its first is the forgeries\' cluster, kept')

    t.match(jwt.payload, { sub: 'alice' })
    t.ok(jwt.expiry.includes(Number(jwt.payload.exp)), `the expiry looked for is the JWT's exp (${String(jwt.payload.exp)})`)
    t.same(jwt.decodings.map((d) => [d.name, d.found]), [['base64url', ['user', 'expiry']], ['base64', ['user', 'expiry']], ['hex', []], ['JSON', ['user', 'expiry']]], 'the JWT gives alice and its exp away to three decodings')
    t.same(cookie.decodings.map((d) => d.name), ['base64url', 'base64', 'hex', 'JSON'], 'the sealed value is tried in all four')
    t.same(cookie.found, [], 'and gives neither away in any')
    t.same(cookie.parts.map((p) => [p.name, p.hex.length / 2]), [['version', 1], ['key id', 4], ['nonce', 12], ['ciphertext', 16], ['tag', 16]], 'its bytes: version, key id, nonce, one block of ciphertext, tag')
    t.equal(cookie.parts[0]?.hex, '01')
    t.equal(cookie.length, 66, 'alice\'s sealed value is 66 characters, as docs/modes.md says')
    t.ok(jwt.length > 3 * cookie.length, `against the JWT's ${jwt.length}`)

    for (const [name, seen] of [['JWT', jwt], ['sealed value', cookie]] as const) {
      t.same(everyone(seen.real), [3, 3, 3], `the ${name} as issued: accepted on every server`)
      t.same([seen.changed.refused, seen.changed.total, seen.changed.servers.length, seen.changed.reasons], [3, 3, 3, ['invalid_token']], `the ${name} with one byte changed: refused by every server`)
      t.equal(seen.logout.status, 204)
      t.same(everyone(seen.afterLogout), [3, 3, 3], `the ${name} after logout: still accepted on every server`)
    }
    t.equal(cookie.change.byteAt, 17, 'the byte changed is the first of the ciphertext')
    t.not(cookie.change.from, cookie.change.to)
    t.ok(cookie.change.laterBySeconds >= 2 ** 24, 'where one bit moves the sealed expiry half a year or more')

    t.match(out, 'payload: {"sub":"alice"', 'the JWT\'s payload shown decoded')
    t.match(out, /version +1 bytes +01\n +key id +4 bytes +[0-9a-f]{8}\n +nonce +12 bytes +[0-9a-f]{24}\n +ciphertext +16 bytes +[0-9a-f]{32}\n +tag +16 bytes +[0-9a-f]{32}/, 'the sealed value taken apart')
    t.match(out, new RegExp(`hex +not hex: "." at \\d+ +no "alice", no ${cookie.expiry[0] ?? 0}`), 'each decoding on a line, with what it did not show')
    t.match(lesson, 'Alice\'s JWT gave her name and its expiry away to base64url, base64 and JSON, no key needed; her sealed value, decoded as base64url, base64, hex and JSON, showed neither, as text or as bytes (66 characters against the JWT\'s')
    t.match(lesson, 'The post\'s "the JWT is encrypted" is false of a JWT and true of this.')
    t.match(lesson, 'One byte changed was refused by 3 of 3 servers (invalid_token) for the JWT and 3 of 3 servers (invalid_token) for the sealed value')
    t.match(lesson, `the flipped bit move the sealed expiry ${Math.round(cookie.change.laterBySeconds / 86_400)} days later`)
    t.match(lesson, `after the logout, the JWT still worked on 3 of 3 servers and the sealed value on 3 of 3: no server keeps anything it could forget, so neither can be taken back before it expires without state (step ${numberOf(jwtLogout)} waits out a JWT's exp; step ${numberOf(jwtRevocation)} keeps a revocation list`)
  })

  t.test('a key rotation, measured on real restarts', async (t) => {
    const seven = reportOf(jwtKeyRotation).result as JwtRotation
    const everyone = (tally: { ok: number, total: number, servers: string[] }): number[] => [tally.ok, tally.total, tally.servers.length]
    t.same(seven.kids, { old: 'key-a', new: 'key-b' })
    t.match(seven.oldHeader, { alg: 'HS256', typ: 'JWT', kid: 'key-a' }, 'alice\'s token names the key it was signed with')
    t.match(out, 'header: {"alg":"HS256","typ":"JWT","kid":"key-a"}', 'and the header is shown')
    t.notMatch(out, /JWT_SECRETS=key-[ab]:[^…]/, 'no secret is printed, only kids')
    t.same(seven.restarts.map((r) => [r.server, r.kids.join(',')]), [
      ['app-1', 'key-b,key-a'],
      ['app-2', 'key-a,key-b'], ['app-3', 'key-a,key-b'],
      ['app-2', 'key-b,key-a'], ['app-3', 'key-b,key-a'],
      ['app-1', 'key-b'], ['app-2', 'key-b'], ['app-3', 'key-b']
    ], 'one server with the new key first, then pass 1 and pass 2 on the others, then the old key retired everywhere')

    t.equal(seven.first, 'app-1')
    t.same(seven.onePass.signedBy, { 'app-1': 'key-b', 'app-2': 'key-a', 'app-3': 'key-a' }, 'one pass: only the restarted server signs with the new key')
    t.same(seven.onePass.newToken.byServer, { 'app-1': { ok: 1, refused: 0, failed: 0 }, 'app-2': { ok: 0, refused: 1, failed: 0 }, 'app-3': { ok: 0, refused: 1, failed: 0 } },
      'and the servers not yet restarted refuse what it signs')
    t.same(seven.onePass.newToken.reasons, ['invalid_token'])
    for (const stage of ['onePass', 'accepted', 'signing'] as const) {
      t.same(everyone(seven[stage].oldToken), [3, 3, 3], `${stage}: the old key's token is accepted on every server`)
    }
    t.same(everyone(seven.accepted.newToken), [3, 3, 3], 'pass 1: with the new key listed last everywhere, its token passes everywhere')
    t.same(seven.signing.signedBy, { 'app-1': 'key-b', 'app-2': 'key-b', 'app-3': 'key-b' }, 'pass 2: every server signs with the new key')
    t.same(everyone(seven.signing.newToken), [3, 3, 3])
    t.same([seven.retired.oldToken.refused, seven.retired.oldToken.total, seven.retired.oldToken.reasons], [3, 3, ['invalid_token']], 'retired: the old key\'s token is refused everywhere')
    t.same(everyone(seven.retired.newToken), [3, 3, 3], 'and the new key\'s token still passes everywhere')
    t.ok(seven.restarts.every((r) => r.seconds > 0 && r.seconds < 30), 'each restart timed')

    const lesson = reportOf(jwtKeyRotation).lesson
    t.match(lesson, 'Alice\'s key-a token was accepted by 3 of 3 servers at every stage while key-a was listed')
    t.match(lesson, 'with only app-1 restarted and key-b listed first, 2 of 3 servers refused the token app-1 had signed for bob (invalid_token)')
    t.match(lesson, /here 2 more restarts of about \d+\.\d s, \d+\.\d s in all/)
    t.match(lesson, 'bob\'s key-b token was accepted by 3 of 3 servers after pass 1 and 3 of 3 after pass 2')
    t.match(lesson, 'alice\'s was refused by 3 of 3 servers (invalid_token), while bob\'s key-b token worked on 3 of 3')
    for (const kid of ['oldToken', 'newToken'] as const) t.ok(seven.authStep[kid].medianMs > 0 && seven.authStep[kid].samples === 200, `${kid}: the auth step timed, ${seven.authStep[kid].medianMs} ms`)
    t.match(lesson, `With both keys listed, the auth step's median was ${formatAuthMs(seven.authStep.oldToken.medianMs)} ms for a key-a token and ${formatAuthMs(seven.authStep.newToken.medianMs)} ms for a key-b one`)
  })

  const eight = reportOf(jwtLogout).result as JwtLogout
  t.equal(eight.logout.status, 204)
  t.same([eight.afterLogout.ok, eight.afterLogout.total], [3, 3], 'after logout the token still works everywhere')
  t.same([eight.afterExpiry.refused, eight.afterExpiry.reasons], [3, ['expired']], 'until it expires')
  t.ok(eight.refusedAfterSeconds >= 1 && eight.refusedAfterSeconds < 20)
  const eightLesson = reportOf(jwtLogout).lesson
  t.match(eightLesson, 'After the logout, 3 of 3 servers still accepted the token')
  t.match(eightLesson, 'A revocation list closes it, but it is state again')
  t.match(eightLesson, `a shared-store round trip as in step ${numberOf(redisSessions)}.`, 'the redis step named by its place')
  t.match(eightLesson, `Step ${numberOf(jwtRevocation)} runs one.`, 'and the revocation step too')
  t.notMatch(eightLesson, 'the auth step\'s median was', 'the redis step did not run: no Redis figure to quote')

  const nine = reportOf(jwtRevocation).result as JwtRevocation
  t.equal(nine.beforeLogout.ok, 3)
  t.same([nine.afterLogout.refused, nine.afterLogout.reasons], [3, ['revoked']], 'with a revocation list, logout works on every server')
  t.equal(nine.readCommands, nine.reads, 'at one Redis lookup per read')
  t.equal(nine.logoutCommands, 1, 'and one write per logout')
  t.ok(nine.authStep.medianMs > five.authStep.medianMs, `the list adds a Redis lookup to the signature check: ${nine.authStep.medianMs} ms against ${five.authStep.medianMs} ms`)
  t.match(reportOf(jwtRevocation).lesson, `the auth step's median went from ${formatAuthMs(five.authStep.medianMs)} ms (step ${FIRST_JWT_STEP}, the signature alone) to ${formatAuthMs(nine.authStep.medianMs)} ms`)
  t.same([nine.redisDown.failed, nine.redisDown.total], [3, 3], 'with Redis down no token can be checked')
  t.same(nine.redisDown.reasons, ['session_store_unavailable'])
  t.same([nine.revokedAfterReturn.ok, nine.revokedAfterReturn.total], [3, 3], 'a Redis that keeps nothing on disk forgets its revocations')
  t.match(reportOf(jwtRevocation).lesson, `${nine.reads} EXISTS for ${nine.reads} reads`)

  // The issuer's steps come last: checked in ./issuer-steps.ts, from this run.
  t.test('the issuer\'s steps: a server that can forge, refresh tokens, rotation through the JWKS', async (t) => {
    t.same([numberOf(refreshTokens), numberOf(jwksRotation)], [numberOf(checkCanForge) + 1, numberOf(checkCanForge) + 2], 'three steps in a row')
    checkIssuerSteps(t, {
      forge: reportOf(checkCanForge),
      refresh: reportOf(refreshTokens),
      rotation: reportOf(jwksRotation),
      output: out.slice(out.indexOf(`Step ${numberOf(checkCanForge)} of ${total}`)),
      secretRotation: reportOf(jwtKeyRotation).result as JwtRotation
    })
  })
})
