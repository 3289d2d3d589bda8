import { randomBytes } from 'node:crypto'
import type { AppServer } from '../../cluster.ts'
import type { AuthStepTiming } from '../../lib/auth-step-timing.ts'
import type { DemoClient } from '../client.ts'
import { decodeJwt } from '../jwt.ts'
import { times } from '../requests.ts'
import type { Step, StepContext } from '../step.ts'
import { median, refusers, tally, type Tally } from '../tally.ts'
import { list, ms } from '../words.ts'

/** A key of JWT_SECRETS, as this step hands them to the servers. */
interface DemoKey { kid: string, secret: string }

// Random per walkthrough, as npm start's secret is; only their kids are ever printed.
const KEY_A: DemoKey = { kid: 'key-a', secret: randomBytes(48).toString('base64url') }
const KEY_B: DemoKey = { kid: 'key-b', secret: randomBytes(48).toString('base64url') }
const secretsOf = (...keys: DemoKey[]): string => keys.map((k) => `${k.kid}:${k.secret}`).join(',')
const shownSecrets = (...keys: DemoKey[]): string => `JWT_SECRETS=${keys.map((k) => `${k.kid}:…`).join(',')}`
const kidOf = (token: string): string => String(decodeJwt(token).header.kid)

export interface JwtRotation {
  kids: { old: string, new: string }
  /** The header of alice's token, signed with the old key before the rotation. */
  oldHeader: Record<string, unknown>
  /** Each restart, in order: which server, with which kids listed, and the seconds until the balancer had it back. */
  restarts: Array<{ server: string, kids: string[], seconds: number }>
  /** The server that put the new key first on its own: the first step of a one-pass rollout. */
  first: string
  /** Only `first` restarted, with the new key first: which kid each server signed bob's login with, and where the tokens passed. */
  onePass: { signedBy: Record<string, string>, newToken: Tally, oldToken: Tally }
  /** Pass 1 done: every other server lists the new key last (accepted, not signed with). */
  accepted: { newToken: Tally, oldToken: Tally }
  /** Pass 2 done: every server lists the new key first. */
  signing: { signedBy: Record<string, string>, newToken: Tally, oldToken: Tally }
  /** Pass 2 done, both keys listed: the auth step for a token of each. */
  authStep: { oldToken: AuthStepTiming, newToken: AuthStepTiming }
  /** The old key removed from every server. */
  retired: { oldToken: Tally, newToken: Tally }
}

/** Restarts one server with these keys and waits until the balancer has it back; returns the seconds it took. */
async function restartWithKeys (ctx: StepContext, server: AppServer, keys: DemoKey[]): Promise<{ server: string, kids: string[], seconds: number }> {
  const started = performance.now()
  await server.restartWith({ JWT_SECRET: undefined, JWT_SECRETS: secretsOf(...keys) })
  await ctx.settle()
  const seconds = (performance.now() - started) / 1000
  ctx.out.note(`${server.id} restarted with ${shownSecrets(...keys)}, back in the rotation ${seconds.toFixed(1)} s later`)
  return { server: server.id, kids: keys.map((k) => k.kid), seconds }
}

/**
 * Logs the client in once per server (sequential logins go round the servers) and reads the
 * kid each server signed with; tries up to one more round until a token with `wanted` shows.
 */
async function loginOnEach (client: DemoClient, n: number, wanted?: string): Promise<{ signedBy: Record<string, string>, tokens: Record<string, string> }> {
  const signedBy: Record<string, string> = {}
  const tokens: Record<string, string> = {}
  for (let i = 0; i < 2 * n; i++) {
    if (i >= n && (wanted === undefined || tokens[wanted] !== undefined)) break
    const answer = await client.login()
    if (answer.status !== 200) throw new Error(`${client.name}'s login got ${answer.status} ${answer.reason ?? ''}`)
    const token = answer.body.token as string
    signedBy[answer.servedBy ?? '?'] = kidOf(token)
    tokens[kidOf(token)] = token
  }
  return { signedBy, tokens }
}

/** "app-1 signed with key-b; app-2 and app-3 with key-a" */
function describeSigners (signedBy: Record<string, string>): string {
  const byKid = new Map<string, string[]>()
  for (const [server, kid] of Object.entries(signedBy).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) {
    byKid.set(kid, [...(byKid.get(kid) ?? []), server])
  }
  return [...byKid].map(([kid, servers], i) => `${list(servers)} ${i === 0 ? 'signed ' : ''}with ${kid}`).join('; ')
}

// The step leaves its cluster on the new key alone: no other step asks for the same spec, so none shares it.
export const jwtKeyRotation: Step<JwtRotation> = {
  title: 'JWT: rotate the signing key with no one logged out',
  cluster: { mode: 'jwt', strategy: 'round-robin', jwtSecrets: secretsOf(KEY_A) },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    const [firstServer, ...otherServers] = ctx.cluster.servers
    if (firstServer === undefined || otherServers.length === 0) throw new Error('a rotation needs at least two servers')
    const first = firstServer.id
    const others = otherServers.map((s) => s.id)
    const restarts: JwtRotation['restarts'] = []
    const everywhere = async (client: DemoClient, token?: string): Promise<Tally> =>
      tally(await times(n, async () => await client.feeds(token === undefined ? {} : { token })))

    ctx.out.say(`So that secret must be changed now and then, and at once if it leaks, without logging everyone out. These ${n} servers run with ${shownSecrets(KEY_A)}: one key, named by its kid, which every token's header carries. Alice logs in.`)
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    const oldHeader = decodeJwt(alice.token ?? '').header
    ctx.out.verbatim([`header: ${JSON.stringify(oldHeader)}`], 'yellow')
    ctx.out.blank()

    ctx.out.say(`Now a new key, ${KEY_B.kid}. Servers sign with the first key listed and accept every one listed, so the obvious way is to list it first, ${shownSecrets(KEY_B, KEY_A)}, and restart the servers one at a time, as a deploy does. ${first} goes first.`)
    restarts.push(await restartWithKeys(ctx, firstServer, [KEY_B, KEY_A]))
    ctx.out.say(`Bob logs in ${n} times, so that each server signs a token for him; then his ${KEY_B.kid} token, and alice's ${KEY_A.kid} one, go to every server.`)
    const bob = ctx.client('bob')
    const onePassLogins = await loginOnEach(bob, n, KEY_B.kid)
    ctx.out.note(`${describeSigners(onePassLogins.signedBy)}.`)
    const newToken = onePassLogins.tokens[KEY_B.kid]
    if (newToken === undefined) throw new Error(`no server signed with ${KEY_B.kid} after ${first} restarted with it first`)
    const onePass = { signedBy: onePassLogins.signedBy, newToken: await everywhere(bob, newToken), oldToken: await everywhere(alice) }
    ctx.out.blank()

    const strangers = refusers(onePass.newToken)
    ctx.out.say(`${strangers.length === 0 ? 'Every server accepted it.' : `${list(strangers)} ${strangers.length === 1 ? 'has' : 'have'} never heard of ${KEY_B.kid}, and refuse${strangers.length === 1 ? 's' : ''} what ${first} signs.`} Stop the rollout there. Done right, every server accepts a new key before any server signs with it. Pass 1: ${list(others)} restart with ${shownSecrets(KEY_A, KEY_B)}: ${KEY_A.kid} still signs, ${KEY_B.kid} is only accepted.`)
    for (const server of otherServers) restarts.push(await restartWithKeys(ctx, server, [KEY_A, KEY_B]))
    const accepted = { newToken: await everywhere(bob, newToken), oldToken: await everywhere(alice) }
    ctx.out.blank()

    ctx.out.say(`Every server accepts ${KEY_B.kid} now, so any of them may sign with it. Pass 2: ${list(others)} restart with ${shownSecrets(KEY_B, KEY_A)}, and carol logs in ${n} times.`)
    for (const server of otherServers) restarts.push(await restartWithKeys(ctx, server, [KEY_B, KEY_A]))
    const signingLogins = await loginOnEach(ctx.client('carol'), n)
    ctx.out.note(`${describeSigners(signingLogins.signedBy)}.`)
    const signing = { signedBy: signingLogins.signedBy, newToken: await everywhere(bob, newToken), oldToken: await everywhere(alice) }
    const authStep = { oldToken: await ctx.timeAuthStep(alice.token ?? ''), newToken: await ctx.timeAuthStep(newToken) }
    ctx.out.note(`(and ${2 * (authStep.oldToken.warmup + authStep.oldToken.samples)} more requests, not shown, to time the auth step for a token of each key: ${ms(authStep.oldToken)} for ${KEY_A.kid}, ${ms(authStep.newToken)} for ${KEY_B.kid}, each the ${authStep.oldToken.how})`)
    ctx.out.blank()

    ctx.out.say(`Last, ${KEY_A.kid} is retired: ${shownSecrets(KEY_B)} everywhere. That is safe once no ${KEY_A.kid} token can still be alive, SESSION_TTL_SECONDS after pass 2 (an hour with npm start's default). Here it happens at once, to show what becomes of a token that is still signed with it.`)
    for (const server of ctx.cluster.servers) restarts.push(await restartWithKeys(ctx, server, [KEY_B]))
    const retired = { oldToken: await everywhere(alice), newToken: await everywhere(bob, newToken) }

    const result: JwtRotation = { kids: { old: KEY_A.kid, new: KEY_B.kid }, oldHeader, restarts, first, onePass, accepted, signing, authStep, retired }
    // For the issuer's rotation later on, which quotes what this one cost.
    ctx.memo.secretRotation = { restarts: restarts.length, seconds: restarts.reduce((s, x) => s + x.seconds, 0), refused: onePass.newToken.refused }
    return { result, lesson: rotationLesson(result, n) }
  }
}

function rotationLesson (r: JwtRotation, n: number): string {
  const { old, new: next } = r.kids
  const through = [r.onePass.oldToken, r.accepted.oldToken, r.signing.oldToken]
  const alwaysOk = through.every((t) => t.ok === t.total)
  const oldLine = alwaysOk
    ? `Alice's ${old} token was accepted by ${n} of ${n} servers at every stage while ${old} was listed: adding a key logs no one out.`
    : `Alice's ${old} token was refused ${through.reduce((k, t) => k + t.refused + t.failed, 0)} times while ${old} was still listed (${list([...new Set(through.flatMap((t) => t.reasons))])}).`
  const refused = r.onePass.newToken.refused
  const restartMedian = median(r.restarts.map((x) => x.seconds)) ?? 0
  const window = (n - 1) * restartMedian
  const onePass = refused > 0
    ? ` But a server refuses a kid it has not been given: with only ${r.first} restarted and ${next} listed first, ${refused} of ${r.onePass.newToken.total} servers refused the token ${r.first} had signed for bob (${list(r.onePass.newToken.reasons)}). A one-pass rollout keeps that up until its last server restarts: here ${n - 1} more restart${n === 2 ? '' : 's'} of about ${restartMedian.toFixed(1)} s, ${window.toFixed(1)} s in all; on a real deploy with draining and health checks, minutes.`
    : ` With only ${r.first} restarted and ${next} listed first, no server refused the token it signed for bob (${r.onePass.newToken.ok} of ${r.onePass.newToken.total} accepted).`
  const twoPass = ` Done in two passes (${next} accepted everywhere first, signed with only then), bob's ${next} token was accepted by ${r.accepted.newToken.ok} of ${r.accepted.newToken.total} servers after pass 1 and ${r.signing.newToken.ok} of ${r.signing.newToken.total} after pass 2.`
  const retire = ` Retiring ${old} logged out whoever still held a token signed with it: alice's was refused by ${r.retired.oldToken.refused} of ${r.retired.oldToken.total} servers (${list(r.retired.oldToken.reasons)}), while bob's ${next} token worked on ${r.retired.newToken.ok} of ${r.retired.newToken.total}.`
  const [a, b] = [r.authStep.oldToken.medianMs, r.authStep.newToken.medianMs]
  // Two batches of the same requests differ by tens of percent on a busy machine; twice apart is more than that.
  const alike = Math.max(a, b) <= 2 * Math.min(a, b)
  const cost = ` With both keys listed, the auth step's median was ${ms(r.authStep.oldToken)} for a ${old} token and ${ms(r.authStep.newToken)} for a ${next} one` +
    (alike
      ? ': alike, since the kid picks the key and it is one HMAC either way. A rotation costs a request nothing; it costs'
      : `: ${(Math.max(a, b) / Math.min(a, b)).toFixed(1)} times apart, more than this measure usually moves (run it again to see whether that holds), though the kid picks the key and it is one HMAC either way. What a rotation surely costs is`) +
    ' three rounds of restarts that every server must take part in, the last a token lifetime after the second.'
  return oldLine + onePass + twoPass + retire + cost
}
