import type { Answer } from '../client.ts'
import { ACCESS_TTL_SECONDS, CLOCK_TOLERANCE_SECONDS, ISSUER_CLUSTER } from '../issuer-cluster.ts'
import { decodeJwt } from '../jwt.ts'
import { sleep, times } from '../requests.ts'
import type { Step } from '../step.ts'
import { tally, type Tally } from '../tally.ts'
import { list } from '../words.ts'

/** One answer, as the result keeps it. */
export interface Said { status: number, servedBy: string | null, reason: string | null }
const said = (a: Answer): Said => ({ status: a.status, servedBy: a.servedBy, reason: a.reason })

export interface RefreshTokens {
  /** The access token's lifetime, as the login answered it (expiresIn), and as its claims say (exp - iat). */
  expiresIn: number
  lifetime: number
  login: Said
  beforeExpiry: Tally
  /** The seconds waited, from the login, before reading again. */
  waitedSeconds: number
  afterExpiry: Tally
  /** Alice's refresh: no password, a new access token and a new refresh token. */
  refresh: Said
  refreshTokenChanged: boolean
  afterRefresh: Tally
  /** How many times alice logged in for all that: one. */
  logins: number
  theft: {
    /** Alice's own refresh, after the thief copied her refresh token. */
    ownerRefresh: Said
    /** The thief's, with the copy: the retired token. */
    thiefReplay: Said
    /** Alice's next refresh, with the newest token of the family. */
    ownerAfter: Said
    /** Alice's reads after her last access token's exp: she must log in again. */
    ownerReadsAfterExpiry: Tally
  }
}

/** Until the token's exp plus the servers' clock tolerance has passed, and a little more. */
async function outlive (token: string): Promise<void> {
  const exp = Number(decodeJwt(token).payload.exp)
  await sleep(Math.max(0, (exp + CLOCK_TOLERANCE_SECONDS) * 1000 + 300 - Date.now()))
}

export const refreshTokens: Step<RefreshTokens> = {
  title: 'short access tokens, rotating refresh tokens, and a stolen one',
  cluster: ISSUER_CLUSTER,
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say(`A token that cannot be taken back should not live long. Here the issuer signs access tokens for ACCESS_TTL_SECONDS=${ACCESS_TTL_SECONDS} (300 by default) and gives, beside each, a refresh token: 256 random bits it keeps hashed in Redis, good for one use. Alice logs in and reads her feed.`)
    ctx.out.blank()
    const alice = ctx.client('alice')
    const loginAnswer = await alice.login()
    const started = Date.now()
    const first = alice.token ?? ''
    const { payload } = decodeJwt(first)
    const lifetime = Number(payload.exp) - Number(payload.iat)
    const beforeExpiry = tally(await times(n, async () => await alice.feeds()))
    ctx.out.say(`Her token's exp is ${lifetime} s after its iat. She waits for it to pass (and the servers' ${CLOCK_TOLERANCE_SECONDS} s of clock tolerance), then reads again.`)
    await outlive(first)
    const waitedSeconds = (Date.now() - started) / 1000
    const afterExpiry = tally(await times(n, async () => await alice.feeds()))
    ctx.out.say('Her client does what a real one does on "expired": it sends the refresh token to POST /token/refresh. No password.')
    const oldRefresh = alice.refreshToken
    const refresh = said(await alice.refresh())
    const afterRefresh = tally(await times(n, async () => await alice.feeds()))
    ctx.out.blank()

    ctx.out.say('Now mallory copies alice\'s refresh token (from a backup, a log, malware on her laptop). Alice\'s client refreshes first, as it would within minutes; then mallory tries the copy.')
    const copy = alice.refreshToken ?? ''
    const mallory = ctx.client('mallory')
    const ownerRefresh = said(await alice.refresh())
    const thiefReplay = said(await mallory.refresh({ refreshToken: copy }))
    ctx.out.say('That token was already used: one of the two holding it is not its owner, and the issuer cannot tell which. So it revoked the whole family. Alice\'s client refreshes again with the newest token it holds:')
    const ownerAfter = said(await alice.refresh())
    ctx.out.say(`Her last access token lives out its ${lifetime} s; after that:`)
    await outlive(alice.token ?? '')
    const ownerReadsAfterExpiry = tally(await times(n, async () => await alice.feeds()))
    const result: RefreshTokens = {
      expiresIn: Number(loginAnswer.body.expiresIn),
      lifetime,
      login: said(loginAnswer),
      beforeExpiry,
      waitedSeconds,
      afterExpiry,
      refresh,
      refreshTokenChanged: oldRefresh !== undefined && oldRefresh !== copy,
      afterRefresh,
      logins: 1,
      theft: { ownerRefresh, thiefReplay, ownerAfter, ownerReadsAfterExpiry }
    }
    return { result, lesson: refreshLesson(result) }
  }
}

function refreshLesson (r: RefreshTokens): string {
  const t = r.theft
  const renewed = `Alice's ${r.lifetime} s token was accepted by ${r.beforeExpiry.ok} of ${r.beforeExpiry.total} servers, then, ${r.waitedSeconds.toFixed(1)} s after login, refused by ${r.afterExpiry.refused} of ${r.afterExpiry.total} (${list(r.afterExpiry.reasons)}); one refresh (${r.refresh.status}${r.refresh.servedBy === null ? '' : ` from ${r.refresh.servedBy}`}) gave her a new pair, accepted by ${r.afterRefresh.ok} of ${r.afterRefresh.total}, with ${r.logins} login in all.`
  const caught = ` The copied refresh token, used after alice had refreshed, got ${t.thiefReplay.status} ${t.thiefReplay.reason ?? ''}; alice's newest refresh token then got ${t.ownerAfter.status} ${t.ownerAfter.reason ?? ''}, and once her last access token expired her reads were refused by ${t.ownerReadsAfterExpiry.refused} of ${t.ownerReadsAfterExpiry.total} servers: both logged out, and she logs in again.`
  return `${renewed}${caught} A stolen refresh token works until its owner or its thief uses it a second time; then the family ends for both, and a stolen access token is good for its ${r.lifetime} s at most.`
}
