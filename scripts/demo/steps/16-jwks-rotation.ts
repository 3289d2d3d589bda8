import type { DemoClient } from '../client.ts'
import { ISSUER_CLUSTER, JWKS_REFRESH_SECONDS } from '../issuer-cluster.ts'
import { decodeJwt } from '../jwt.ts'
import { sleep } from '../requests.ts'
import type { Step, StepContext } from '../step.ts'
import { jwtKeyRotation } from './09-jwt-key-rotation.ts'
import { list } from '../words.ts'

/** What the readers sent while the key changed, and how it ended. */
export interface Traffic { reads: number, readsOk: number, refreshes: number, refreshesOk: number, refused: Array<{ what: string, status: number, reason: string | null }> }

export interface JwksRotation {
  kids: { old: string, new: string }
  /** Seconds from the rotation's start: the new key in the JWKS, its first token seen, the old key out of the JWKS. */
  timeline: { published: number | undefined, signing: number | undefined, retired: number | undefined, seconds: number }
  /** What the JWKS held at each stage. */
  jwks: { before: string[], published: string[], after: string[] }
  traffic: Traffic
  /** Kids the readers' tokens were signed with, in the order first seen. */
  kidsSeen: string[]
  /** The app servers' JWKS fetches during the rotation (jwks_fetches_total), and of them for an unknown kid. */
  jwksFetches: number
  unknownKidFetches: number
  /** Every app server and issuer has the pid it had before: nothing restarted. */
  restarts: number
  /** Step 9's rotation of a shared secret, when it ran in this walkthrough. */
  secretRotation: { restarts: number, seconds: number, refused: number } | undefined
}

const short = (kid: string): string => `${kid.slice(0, 8)}…`
const kidOf = (token: string | undefined): string => token === undefined ? '' : String(decodeJwt(token).header.kid)

/** A client that logs in, reads, and refreshes its tokens well before they expire, until told to stop. Nothing it sends is shown. */
async function reader (client: DemoClient, stop: { now: boolean }, traffic: Traffic, seen: (kid: string) => void): Promise<void> {
  const login = await client.login(client.name, { quiet: true })
  if (login.status !== 200) {
    traffic.refused.push({ what: 'login', status: login.status, reason: login.reason })
    return
  }
  let refreshedAt = Date.now()
  while (!stop.now) {
    seen(kidOf(client.token))
    const read = await client.feeds({ quiet: true })
    traffic.reads++
    if (read.status === 200) traffic.readsOk++
    else traffic.refused.push({ what: `read on ${read.servedBy ?? 'the balancer'}`, status: read.status, reason: read.reason })
    // Half the access token's life: a client that keeps its tokens fresh is never refused.
    if (Date.now() - refreshedAt > 1500) {
      const refreshed = await client.refresh({ quiet: true })
      traffic.refreshes++
      if (refreshed.status === 200) traffic.refreshesOk++
      else traffic.refused.push({ what: 'refresh', status: refreshed.status, reason: refreshed.reason })
      refreshedAt = Date.now()
    }
    await sleep(25)
  }
}

async function jwksKids (ctx: StepContext): Promise<string[]> {
  const res = await fetch(`${ctx.cluster.url}/.well-known/jwks.json`, { signal: AbortSignal.timeout(2000) })
  return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
}

export const jwksRotation: Step<JwksRotation> = {
  title: 'rotate the issuer\'s key through the JWKS: no restart, nobody refused',
  cluster: ISSUER_CLUSTER,
  async run (ctx) {
    const processes = [...ctx.cluster.servers, ...ctx.cluster.issuers]
    const pids = processes.map((p) => p.pid)
    const before = await jwksKids(ctx)
    const old = before[0] ?? ''
    ctx.out.say(`Step ${ctx.numberOf(jwtKeyRotation)} rotated a shared secret by restarting every server, twice. With an issuer, a new key is a file in its keys directory. Alice, bob and carol read their feeds without a pause and refresh their ${ISSUER_CLUSTER.issuerEnv?.ACCESS_TTL_SECONDS ?? '?'} s tokens as they go (none of it shown, all of it counted), while the issuer rotates its key: published at once, signing once every app server can have fetched it (they fetch the JWKS every ${JWKS_REFRESH_SECONDS} s), retired once the last token it signed has expired.`)
    ctx.out.verbatim([`JWKS before: ${before.map(short).join(', ')}`], 'yellow')
    const traffic: Traffic = { reads: 0, readsOk: 0, refreshes: 0, refreshesOk: 0, refused: [] }
    const kidsSeen: string[] = []
    let newKid = ''
    let signingAt: number | undefined
    let origin = performance.now()
    const since = (): number => (performance.now() - origin) / 1000
    const seen = (kid: string): void => {
      if (kid === '' || kidsSeen.includes(kid)) return
      kidsSeen.push(kid)
      if (kid === newKid) signingAt ??= since()
    }
    const stop = { now: false }
    const readers = Promise.all(['alice', 'bob', 'carol'].map(async (name) => { await reader(ctx.client(name), stop, traffic, seen) }))
    await sleep(1000)
    const fetchesBefore = await ctx.counter('jwks_fetches_total')
    const unknownBefore = await ctx.counter('jwks_fetches_total', { reason: 'unknown_kid' })

    origin = performance.now()
    const rotation = await ctx.cluster.rotateIssuerKey()
    newKid = rotation.kid
    ctx.out.note(`+0.0 s  new key ${short(newKid)} written; signing from ${((rotation.signFrom - Date.now()) / 1000 + since()).toFixed(1)} s`)
    let published: number | undefined
    let publishedKids: string[] = []
    let retired: number | undefined
    let after: string[] = []
    const deadline = performance.now() + 60_000
    while (retired === undefined && performance.now() < deadline) {
      const kids = await jwksKids(ctx)
      if (published === undefined && kids.includes(newKid)) {
        published = since()
        publishedKids = kids
        ctx.out.note(`+${published.toFixed(1)} s  JWKS: ${kids.map(short).join(', ')} (both published; ${short(old)} still signs)`)
      }
      if (published !== undefined && !kids.includes(old)) {
        retired = since()
        after = kids
        if (signingAt !== undefined) ctx.out.note(`+${signingAt.toFixed(1)} s  the readers' first token signed with ${short(newKid)}`)
        ctx.out.note(`+${retired.toFixed(1)} s  JWKS: ${kids.map(short).join(', ')} (${short(old)} retired: its last token has expired)`)
      }
      await sleep(200)
    }
    // Long enough for every app server's next fetch, so they drop the old key too.
    await sleep((JWKS_REFRESH_SECONDS + 1) * 1000)
    stop.now = true
    await readers
    const seconds = since()
    const fetchesAfter = await ctx.counter('jwks_fetches_total')
    const unknownAfter = await ctx.counter('jwks_fetches_total', { reason: 'unknown_kid' })
    const restarts = processes.filter((p, i) => p.pid !== pids[i]).length
    ctx.out.note(`${traffic.reads} reads and ${traffic.refreshes} refreshes in ${seconds.toFixed(1)} s; ${fetchesAfter.total - fetchesBefore.total} JWKS fetches by the app servers; processes restarted: ${restarts}.`)
    const result: JwksRotation = {
      kids: { old, new: newKid },
      timeline: { published, signing: signingAt, retired, seconds },
      jwks: { before, published: publishedKids, after },
      traffic,
      kidsSeen,
      jwksFetches: fetchesAfter.total - fetchesBefore.total,
      unknownKidFetches: unknownAfter.total - unknownBefore.total,
      restarts,
      secretRotation: ctx.memo.secretRotation
    }
    return { result, lesson: rotationLesson(result, ctx.numberOf(jwtKeyRotation)) }
  }
}

function rotationLesson (r: JwksRotation, step: number): string {
  const t = r.traffic
  const s = (x: number | undefined): string => x === undefined ? 'never' : `${x.toFixed(1)} s`
  const refused = t.refused.length === 0 ? 'none refused' : `${t.refused.length} refused (${list([...new Set(t.refused.map((x) => `${x.status} ${x.reason ?? ''}`))])})`
  const main = `The new key was in the JWKS ${s(r.timeline.published)} after the rotation began, signed the readers' tokens from ${s(r.timeline.signing)}, and the old one left ${s(r.timeline.retired)} in; through it, ${t.readsOk} of ${t.reads} reads and ${t.refreshesOk} of ${t.refreshes} refreshes succeeded, ${refused}, with ${r.restarts} processes restarted: the app servers only fetched the JWKS as they always do (${r.jwksFetches} fetches, ${r.unknownKidFetches} for an unknown kid).`
  const nine = r.secretRotation === undefined
    ? ` Step ${step}'s shared secret needs every server restarted twice, and once more to retire the old key.`
    : ` Step ${step}'s shared secret took ${r.secretRotation.restarts} restarts (${r.secretRotation.seconds.toFixed(1)} s of them), and while one server alone signed with the new secret ${r.secretRotation.refused} of the others refused its tokens.`
  return `${main}${nine} Publish, then sign, then retire: the order makes a rotation routine, and the only clock is the access tokens' life.`
}
