import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runCli, type CliRun } from '../../helpers/cli.ts'
import type { Test } from 'tap'
import type { JwtForgeries, JwtLogout, JwtRevocation, JwtStateless } from '../../../scripts/demo/steps.ts'

const DEMO = fileURLToPath(new URL('../../../scripts/demo.ts', import.meta.url))
const launch = (t: Test, args: string[]): CliRun => runCli(t, DEMO, args)

// Real clusters on a machine that may be busy: more time than the suite's default.
t.setTimeout(300_000)

t.test('npm run demo -- --auto --step 5: the jwt steps straight through, with what they measured', async (t) => {
  const json = join(mkdtempSync(join(tmpdir(), 'demo-')), 'steps.json')
  const run = launch(t, ['--auto', '--step', '5', '--port', '0', '--json', json])
  const code = await run.exited
  t.equal(code, 0, 'exits 0')
  if (code !== 0) t.comment(run.output())
  const out = run.output()
  t.notMatch(out, 'Step 4 of 8')
  t.match(out, 'Step 5 of 8: JWT: no shared state, and nothing hidden')
  t.match(out, 'Step 7 of 8: JWT: log out, and the token still works')
  t.match(out, 'That is the story.')
  t.notMatch(out, 'Press Enter', '--auto does not wait')

  const { steps } = JSON.parse(readFileSync(json, 'utf8')) as { steps: Array<{ step: number, result: unknown, lesson: string }> }
  t.same(steps.map((s) => s.step), [5, 6, 7, 8])
  const five = steps[0]?.result as JwtStateless
  t.same([five.fetches.ok, five.fetches.total, five.fetches.servers.length], [6, 6, 3], 'every server accepts the token')
  t.equal(five.signatureMatches, true, 'the signature is the HMAC of header.payload under the cluster\'s secret')
  t.match(five.header, { alg: 'HS256', typ: 'JWT' })
  t.match(five.payload, { sub: 'alice', iss: 'auth-cluster' })
  t.match(out, 'payload: {"sub":"alice"', 'the payload is shown decoded')
  t.match(steps[0]?.lesson, 'an encoding, not encryption')

  const six = steps[1]?.result as JwtForgeries
  t.equal(six.real.ok, 1)
  for (const forgery of ['tampered', 'wrongSecret', 'unsigned'] as const) {
    t.same([six[forgery].refused, six[forgery].total, six[forgery].servers.length], [3, 3, 3], `${forgery}: refused by every server`)
    t.same(six[forgery].reasons, ['invalid_token'])
  }
  t.not(six.change.from, six.change.to, 'one character changed')

  const seven = steps[2]?.result as JwtLogout
  t.equal(seven.logout.status, 204)
  t.same([seven.afterLogout.ok, seven.afterLogout.total], [3, 3], 'after logout the token still works everywhere')
  t.same([seven.afterExpiry.refused, seven.afterExpiry.reasons], [3, ['expired']], 'until it expires')
  t.ok(seven.refusedAfterSeconds >= 1 && seven.refusedAfterSeconds < 20)
  t.match(steps[2]?.lesson, 'After the logout, 3 of 3 servers still accepted the token')
  t.match(steps[2]?.lesson, 'A revocation list closes it, but it is state again')

  const eight = steps[3]?.result as JwtRevocation
  t.equal(eight.beforeLogout.ok, 3)
  t.same([eight.afterLogout.refused, eight.afterLogout.reasons], [3, ['revoked']], 'with a revocation list, logout works on every server')
  t.equal(eight.commands.exists, eight.reads, 'at one Redis lookup per read')
  t.equal(eight.commands.set, 1, 'and one write per logout')
  t.same([eight.redisDown.failed, eight.redisDown.total], [3, 3], 'with Redis down no token can be checked')
  t.same(eight.redisDown.reasons, ['session_store_unavailable'])
  t.same([eight.revokedAfterReturn.ok, eight.revokedAfterReturn.total], [3, 3], 'a Redis that keeps nothing on disk forgets its revocations')
  t.match(steps[3]?.lesson, `${eight.reads} EXISTS for ${eight.reads} reads`)
})
