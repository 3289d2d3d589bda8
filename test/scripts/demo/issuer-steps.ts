import type { Test } from 'tap'
import type { JwtRotation } from '../../../scripts/demo/steps/09-jwt-key-rotation.ts'
import type { CheckCanForge } from '../../../scripts/demo/steps/14-check-can-forge.ts'
import type { RefreshTokens } from '../../../scripts/demo/steps/15-refresh-tokens.ts'
import type { JwksRotation } from '../../../scripts/demo/steps/16-jwks-rotation.ts'

// The issuer's three steps (a server that can check can forge, refresh tokens, rotation through
// the JWKS), checked from what a run of them measured. cli-auto.test.ts runs the walkthrough from
// the first jwt step to the last and calls this, so the three steps run once in npm test.

export interface IssuerStepReports {
  forge: { result: unknown, lesson: string }
  refresh: { result: unknown, lesson: string }
  rotation: { result: unknown, lesson: string }
  /** The walkthrough's output from the forgery step's heading on. */
  output: string
  /** The key rotation step's result, when it ran before in the same walkthrough (step 16 quotes it). */
  secretRotation: JwtRotation | undefined
}

export function checkIssuerSteps (t: Test, reports: IssuerStepReports): void {
  const { output } = reports
  t.equal(output.match(/\[starting /g)?.length, 2, 'two clusters: hs256, then one eddsa cluster the three steps share')
  t.match(output, /JWT_SIGNING=eddsa/, 'the eddsa cluster says what it is')

  t.test('a server that can check can forge, under hs256 only', async (t) => {
    const { hs256, eddsa } = reports.forge.result as CheckCanForge
    t.equal(hs256.variable, 'JWT_SECRET', 'the secret is in the server\'s environment')
    t.same([hs256.forged.tally.ok, hs256.forged.tally.total, hs256.forged.tally.servers.length], [3, 3, 3], 'the token minted with it is accepted by every server')
    t.same(hs256.forged.users, ['bob'], 'as bob, who never logged in')
    t.same(eddsa.keyLike, [], 'under eddsa the same server\'s environment names no secret and no key')
    t.match(eddsa.jwksUrl, /^http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json$/, 'only where the public keys are')
    t.same([eddsa.real.ok, eddsa.real.total], [3, 3], 'the control: alice\'s real token passes everywhere')
    t.equal(eddsa.forgeries.length, 3)
    for (const f of eddsa.forgeries) {
      t.same([f.tally.refused, f.tally.failed, f.tally.total, f.tally.servers.length], [3, 0, 3, 3], `${f.name}: refused by every server, no 5xx`)
      t.same(f.tally.reasons, ['invalid_token'])
      t.same(f.users, [])
    }
    t.match(reports.forge.lesson, 'made a token for bob, who never logged in: 3 of 3 servers accepted it, as bob')
    t.match(reports.forge.lesson, 'the servers refused 9 of 9 sends (invalid_token), with no 5xx')
  })

  t.test('refresh: renewed with no login; a reused refresh token ends the family for both', async (t) => {
    const r = reports.refresh.result as RefreshTokens
    t.same([r.expiresIn, r.lifetime], [3, 3], 'a 3 s access token, as the login said and as its claims say')
    t.equal(r.login.servedBy, 'issuer-1', 'the login went to the issuer')
    t.same([r.beforeExpiry.ok, r.beforeExpiry.total], [3, 3])
    t.same([r.afterExpiry.refused, r.afterExpiry.total, r.afterExpiry.reasons], [3, 3, ['expired']], 'once expired, refused everywhere as expired')
    t.same(r.refresh, { status: 200, servedBy: 'issuer-1', reason: null }, 'the refresh, at the issuer')
    t.ok(r.refreshTokenChanged, 'a new refresh token with the new access token')
    t.same([r.afterRefresh.ok, r.afterRefresh.total], [3, 3], 'the new access token passes everywhere')
    t.equal(r.logins, 1)
    t.equal(r.theft.ownerRefresh.status, 200, 'the owner refreshed first')
    t.same(r.theft.thiefReplay, { status: 401, servedBy: 'issuer-1', reason: 'refresh_reused' }, 'the copy, replayed: refresh_reused')
    t.equal(r.theft.ownerAfter.status, 401, 'the family is revoked: the owner\'s newest refresh token is refused too')
    t.equal(r.theft.ownerAfter.reason, 'revoked')
    t.same([r.theft.ownerReadsAfterExpiry.refused, r.theft.ownerReadsAfterExpiry.total, r.theft.ownerReadsAfterExpiry.reasons], [3, 3, ['expired']], 'and once her access token expires she is out everywhere')
    t.match(reports.refresh.lesson, 'The copied refresh token, used after alice had refreshed, got 401 refresh_reused; alice\'s newest refresh token then got 401 revoked')
  })

  t.test('rotation through the JWKS: no restart, nobody refused', async (t) => {
    const r = reports.rotation.result as JwksRotation
    t.not(r.kids.new, r.kids.old)
    t.same(r.jwks.before, [r.kids.old])
    t.same(r.jwks.published, [r.kids.old, r.kids.new], 'published beside the old key')
    t.same(r.jwks.after, [r.kids.new], 'the old key retired')
    const { published, signing, retired } = r.timeline
    t.ok(published !== undefined && published < 1.5, `published at once (${String(published)} s)`)
    // 1 s rescan + 2 s JWKS refresh + 1 s fetch + 1 s tolerance; a token is seen only once a reader uses it.
    t.ok(signing !== undefined && signing >= 4.5 && signing < 10, `signing after the app servers could fetch it (${String(signing)} s)`)
    // Retired 3 s (ACCESS_TTL) + 1 s (tolerance) after it began signing.
    t.ok(retired !== undefined && signing !== undefined && retired >= signing + 3, `retired after its last token expired (${String(retired)} s)`)
    t.same(r.kidsSeen, [r.kids.old, r.kids.new], 'the readers\' tokens were signed with the old key, then the new')
    t.same(r.traffic.refused, [], 'no read, refresh or login refused')
    t.ok(r.traffic.reads > 100 && r.traffic.readsOk === r.traffic.reads, `reads through it all (${r.traffic.reads})`)
    t.ok(r.traffic.refreshes > 6 && r.traffic.refreshesOk === r.traffic.refreshes, `refreshes through it all (${r.traffic.refreshes})`)
    t.equal(r.restarts, 0, 'no process restarted')
    t.ok(r.jwksFetches > 0, `the app servers fetched the JWKS (${r.jwksFetches})`)
    t.equal(r.unknownKidFetches, 0, 'never for an unknown kid: the key was published before any token carried it')
    const nine = reports.secretRotation
    if (nine === undefined) {
      t.equal(r.secretRotation, undefined, 'the key rotation step did not run in this walkthrough: nothing quoted')
    } else {
      t.same(r.secretRotation, { restarts: nine.restarts.length, seconds: nine.restarts.reduce((s, x) => s + x.seconds, 0), refused: nine.onePass.newToken.refused }, 'the key rotation step\'s restarts, quoted')
      t.match(reports.rotation.lesson, `shared secret took ${nine.restarts.length} restarts`)
    }
    t.match(reports.rotation.lesson, `${r.traffic.readsOk} of ${r.traffic.reads} reads and ${r.traffic.refreshesOk} of ${r.traffic.refreshes} refreshes succeeded, none refused, with 0 processes restarted`)
  })
}
