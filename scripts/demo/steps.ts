import { randomBytes } from 'node:crypto'
import type { Strategy } from '../../balancer/config.ts'
import type { AuthMode } from '../../services/auth/authenticator.ts'
import type { Cluster } from '../cluster.ts'
import type { Answer, DemoClient } from './client.ts'
import { decodeJwt, signatureMatches, signWithWrongSecret, tamperExp, unsigned } from './jwt.ts'
import type { Narrator } from './narrator.ts'

/** The cluster a step runs on; consecutive steps with the same spec share one. */
export interface ClusterSpec {
  mode: AuthMode
  strategy: Strategy
  sessionTtlSeconds?: number
  serverEnv?: Record<string, string>
  /** jwt mode with JWT_REVOCATION=redis (and a private Redis for the list). */
  jwtRevocation?: boolean
  /** jwt mode: JWT_SECRETS (kid:secret,...) instead of one random JWT_SECRET. */
  jwtSecrets?: string
}

/** Numbers one step measures and a later one quotes. */
export interface Memo {
  memoryAuthMs?: number
  redisAuthMs?: number
  jwtAuthMs?: number
}

export interface StepContext {
  cluster: Cluster
  out: Narrator
  memo: Memo
  /** A new client (a browser stand-in with its own cookies) for a demo user. */
  client (user: string): DemoClient
  /** Resolves once every server runs and the balancer counts it healthy. */
  settle (): Promise<void>
  /** A counter from every server's /metrics, summed per value of `label`. */
  metric (name: string, label: string): Promise<Record<string, number>>
}

export interface StepOutcome<R> {
  result: R
  /** One or two sentences, true of what the step just showed: its numbers come from `result`. */
  lesson: string
}

export interface Step<R = unknown> {
  n: number
  title: string
  cluster: ClusterSpec
  run (ctx: StepContext): Promise<StepOutcome<R>>
}

/** How a set of answers ended, per server. */
export interface Tally {
  total: number
  ok: number
  refused: number
  failed: number
  byServer: Record<string, { ok: number, refused: number, failed: number }>
  /** The distinct servers that answered, in order of first answer. */
  servers: string[]
  /** The distinct refusal or failure reasons. */
  reasons: string[]
}

export function tally (answers: Answer[]): Tally {
  const t: Tally = { total: answers.length, ok: 0, refused: 0, failed: 0, byServer: {}, servers: [], reasons: [] }
  for (const a of answers) {
    const outcome = a.status >= 500 ? 'failed' : a.status >= 400 ? 'refused' : 'ok'
    t[outcome]++
    const server = a.servedBy ?? 'balancer'
    if (!t.servers.includes(server)) t.servers.push(server)
    const counts = t.byServer[server] ??= { ok: 0, refused: 0, failed: 0 }
    counts[outcome]++
    if (a.reason !== null && a.reason !== '' && !t.reasons.includes(a.reason)) t.reasons.push(a.reason)
  }
  return t
}

export function median (values: number[]): number | undefined {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

function ms (value: number | undefined): string {
  if (value === undefined) return '?'
  return value < 0.1 ? value.toFixed(3) : value.toFixed(2)
}

/** "a", "a and b", "a, b and c" */
function list (items: string[]): string {
  if (items.length <= 1) return items.join('')
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`
}

function clock (epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toTimeString().slice(0, 8)
}

const sleep = async (millis: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, millis))

async function times (count: number, send: () => Promise<Answer>): Promise<Answer[]> {
  const answers: Answer[] = []
  for (let i = 0; i < count; i++) answers.push(await send())
  return answers
}

/** Extra requests, not shown, so a median of the auth step rests on more than a handful. */
const TIMING_SAMPLES = 24
async function sampleAuthMs (client: DemoClient, shown: Answer[]): Promise<number | undefined> {
  const quiet = await times(TIMING_SAMPLES, async () => await client.feeds({ quiet: true }))
  return median([...shown, ...quiet].map((a) => a.authMs ?? NaN))
}

function serverOf (ctx: StepContext, id: string | null): Cluster['servers'][number] {
  const server = ctx.cluster.servers.find((s) => s.id === id)
  if (server === undefined) throw new Error(`no server named ${String(id)} in this cluster`)
  return server
}

// ---------------------------------------------------------------------------

export interface MemoryRoundRobin {
  home: string
  fetches: Tally
  authMedianMs: number | undefined
}

const step1: Step<MemoryRoundRobin> = {
  n: 1,
  title: 'memory sessions behind a round-robin balancer',
  cluster: { mode: 'memory', strategy: 'round-robin' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say(`${n} identical app servers, each keeping its sessions in its own memory (a Map inside the process). The balancer sends each request to the next server in turn: round robin. Alice logs in, then reads her feed six times.`)
    ctx.out.blank()
    const alice = ctx.client('alice')
    const login = await alice.login()
    const home = login.servedBy ?? '?'
    const answers = await times(6, async () => await alice.feeds())
    const fetches = tally(answers)
    const authMedianMs = await sampleAuthMs(alice, answers)
    ctx.memo.memoryAuthMs = authMedianMs
    ctx.out.note(`(and ${TIMING_SAMPLES} more requests, not shown, to time the auth step: a median of ${ms(authMedianMs)} ms for a Map lookup)`)
    const others = ctx.cluster.servers.map((s) => s.id).filter((id) => id !== home)
    const share = fetches.refused * n === fetches.total * (n - 1) ? `: ${n - 1} of every ${n},` : ''
    return {
      result: { home, fetches, authMedianMs },
      lesson: `${fetches.refused} of ${fetches.total} were refused${share} with ${list(fetches.reasons)}. Only ${home}, where alice logged in, has her session in its memory; to ${list(others)} she is a stranger. The post's story, exactly.`
    }
  }
}

// ---------------------------------------------------------------------------

export interface MemoryLogoutRestart {
  home: string
  logoutServedBy: string
  afterLogout: Tally
  afterRestart: Tally
}

const step2: Step<MemoryLogoutRestart> = {
  n: 2,
  title: 'memory sessions: log out on one server, restart another',
  cluster: { mode: 'memory', strategy: 'round-robin' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say('Still memory mode. Alice logs in, then logs out. The logout is a request like any other: the balancer sends it to the next server.')
    ctx.out.blank()
    const alice = ctx.client('alice')
    let home = ''
    let logout: Answer | undefined
    // Sequential requests never land twice in a row on one server; other traffic (a dashboard
    // click) could make them, so try again rather than tell a story that did not happen.
    for (let attempt = 0; attempt < 3; attempt++) {
      home = (await alice.login()).servedBy ?? '?'
      logout = await alice.logout()
      if (logout.servedBy !== home) break
    }
    const logoutServedBy = logout?.servedBy ?? '?'
    ctx.out.note(`The logout reached ${logoutServedBy}, which had no session to delete. ${home} still has one. Alice's client keeps its token and reads the feed on every server:`)
    const afterLogout = tally(await times(n, async () => await alice.feeds()))
    ctx.out.blank()
    ctx.out.say(`Now ${home} restarts, as it would for a deploy: the process stops and starts again on the same port.`)
    const server = serverOf(ctx, home)
    await server.stop()
    ctx.out.note(`${home} stopped; starting it again…`)
    await server.start()
    await ctx.settle()
    ctx.out.note(`${home} is back, and the balancer's health check has seen it. Alice reads her feed on every server:`)
    const afterRestart = tally(await times(n, async () => await alice.feeds()))
    return {
      result: { home, logoutServedBy, afterLogout, afterRestart },
      lesson: `Logging out on ${logoutServedBy} deleted nothing: ${home} still accepted alice (${afterLogout.ok} of ${afterLogout.total}). Restarting ${home} wiped its memory: ${afterRestart.refused} of ${afterRestart.total} refused, alice is logged out, and so is everyone else who logged in there. To log someone out everywhere, every server would have to be told: the "invalidate everywhere" nightmare.`
    }
  }
}

// ---------------------------------------------------------------------------

export interface Sticky {
  pins: Record<string, string>
  pinned: Tally
  crashed: string
  movedTo: string
  afterCrash: Tally
  /** Requests per server after the crashed server came back: where the load went. */
  load: Record<string, number>
  afterReturn: Tally
  /** Clients moved off their pin by something other than the crash (a failed health check). */
  moved: string[]
}

const step3: Step<Sticky> = {
  n: 3,
  title: 'sticky sessions: the classic patch, and its price',
  cluster: { mode: 'memory', strategy: 'sticky' },
  async run (ctx) {
    ctx.out.say('Still memory sessions, but the balancer is now sticky: its first answer to a client sets a cookie (lb) that names one server, and every later request carrying it goes there. Alice, bob and carol log in, then read their feeds in turn.')
    ctx.out.blank()
    const users = ['alice', 'bob', 'carol']
    const clients = users.map((user) => ctx.client(user))
    const pins: Record<string, string> = {}
    for (const client of clients) pins[client.name] = (await client.login()).servedBy ?? '?'
    const round = async (rounds: number): Promise<Answer[]> => {
      const answers: Answer[] = []
      for (let r = 0; r < rounds; r++) for (const client of clients) answers.push(await client.feeds())
      return answers
    }
    const pinned = tally(await round(3))
    ctx.out.note(`Each stays on the server that logged it in: ${users.map((u) => `${u} → ${pins[u] ?? '?'}`).join(', ')}.`)
    ctx.out.blank()

    const [alice] = clients as [DemoClient, ...DemoClient[]]
    const crashed = pins.alice ?? '?'
    ctx.out.say(`Now ${crashed}, alice's server, crashes (killed: no goodbye). Alice reads her feed twice.`)
    await serverOf(ctx, crashed).kill()
    const afterCrash = tally(await times(2, async () => await alice.feeds()))
    const movedTo = afterCrash.servers[0] ?? '?'
    ctx.out.note(`The balancer found ${crashed} gone and pinned alice to ${movedTo}, which has never heard of her.`)
    ctx.out.blank()
    ctx.out.say(`Alice logs in again (on ${movedTo}), ${crashed} comes back, and everyone reads on.`)
    await alice.login()
    await serverOf(ctx, crashed).start()
    await ctx.settle()
    const returned = await round(4)
    const afterReturn = tally(returned)
    const load: Record<string, number> = {}
    for (const server of ctx.cluster.servers) load[server.id] = returned.filter((a) => a.servedBy === server.id).length
    const loads = Object.entries(load).map(([id, count]) => `${id} ${count}`).join(', ')
    // Only a failed health check moves a pinned client that was not on the crashed server;
    // on a loaded machine it happens, and then the story says so rather than hide it.
    const expected: Record<string, string> = { ...pins, alice: movedTo }
    const moved = users.filter((user) => returned.some((a) => a.who === user && a.servedBy !== expected[user]))
    if (moved.length > 0) ctx.out.note(`(${list(moved)} moved too: a health check timed out, the balancer counted a server down for a moment, and the pins moved with it: another way sticky sessions log people out)`)
    return {
      result: { pins, pinned, crashed, movedTo, afterCrash, load, afterReturn, moved },
      lesson: `Pinned by a cookie, ${pinned.ok} of ${pinned.total} were accepted: no more refusals. But when ${crashed} died, alice was moved to ${movedTo} and refused (${afterCrash.refused} of ${afterCrash.total}): logged out, with everyone else pinned there. And ${crashed} came back to ${load[crashed] ?? 0} of the next ${afterReturn.total} requests (${loads}): the load follows the pins, not the servers.`
    }
  }
}

// ---------------------------------------------------------------------------

export interface RedisSessions {
  fetches: Tally
  /** Commands the servers sent to Redis during the login and the fetches, by command. */
  commands: Record<string, number>
  commandsPerFetch: number
  authMedianMs: number | undefined
  memoryAuthMedianMs: number | undefined
  redisDown: Tally
  loginWhileDown: Answer
  slowestWhileDownMs: number
  afterReturn: Tally
  afterNewLogin: Tally
}

const step4: Step<RedisSessions> = {
  n: 4,
  title: 'redis sessions: every server sees them, at a price',
  cluster: { mode: 'redis', strategy: 'round-robin' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say('Now the sessions move out of the servers into one Redis that every server asks, and the balancer is round robin again. Alice logs in and reads her feed six times.')
    ctx.out.blank()
    const alice = ctx.client('alice')
    const before = await ctx.metric('session_store_commands_total', 'command')
    await alice.login()
    const answers = await times(6, async () => await alice.feeds())
    const after = await ctx.metric('session_store_commands_total', 'command')
    const fetches = tally(answers)
    const commands: Record<string, number> = {}
    for (const [command, count] of Object.entries(after)) {
      const delta = count - (before[command] ?? 0)
      if (delta > 0) commands[command] = delta
    }
    const commandsPerFetch = ((commands.get ?? 0) + (commands.getex ?? 0)) / answers.length
    ctx.out.note(`The servers' own counters (session_store_commands_total in /metrics): ${Object.entries(commands).map(([c, k]) => `${k} ${c.toUpperCase()}`).join(', ')} for 1 login and ${answers.length} reads.`)
    const authMedianMs = await sampleAuthMs(alice, answers)
    ctx.memo.redisAuthMs = authMedianMs
    const memoryAuthMedianMs = ctx.memo.memoryAuthMs
    ctx.out.note(`(and ${TIMING_SAMPLES} more, not shown: the auth step's median is ${ms(authMedianMs)} ms here${memoryAuthMedianMs === undefined ? '' : `, ${ms(memoryAuthMedianMs)} ms in memory mode (step 1)`})`)
    ctx.out.blank()

    const redis = ctx.cluster.redis
    if (redis === undefined) throw new Error('the walkthrough starts its own redis-server in redis mode')
    ctx.out.say('Now Redis stops. Alice reads her feed, and bob tries to log in.')
    await redis.stop()
    const downAnswers = await times(2 * n, async () => await alice.feeds())
    const loginWhileDown = await ctx.client('bob').login()
    const redisDown = tally(downAnswers)
    const slowestWhileDownMs = Math.max(...downAnswers.map((a) => a.ms), loginWhileDown.ms)
    ctx.out.blank()
    ctx.out.say('Redis starts again. Alice reads her feed with the session she had.')
    await redis.start()
    await waitForStore(ctx)
    const afterReturn = tally(await times(n, async () => await alice.feeds()))
    ctx.out.note('This Redis keeps nothing on disk: it came back empty. Alice logs in again.')
    await alice.login()
    const afterNewLogin = tally(await times(n, async () => await alice.feeds()))

    const added = authMedianMs !== undefined && memoryAuthMedianMs !== undefined
      ? `, and the auth step's median went from ${ms(memoryAuthMedianMs)} ms (a Map lookup) to ${ms(authMedianMs)} ms: a network round trip on every request, on every server`
      : `, and the auth step's median is ${ms(authMedianMs)} ms, a network round trip included, on every request`
    return {
      result: { fetches, commands, commandsPerFetch, authMedianMs, memoryAuthMedianMs, redisDown, loginWhileDown, slowestWhileDownMs, afterReturn, afterNewLogin },
      lesson: `Every server accepted alice (${fetches.ok} of ${fetches.total}, on ${list(fetches.servers)}) because every one asked Redis: ${commandsPerFetch} Redis command${commandsPerFetch === 1 ? '' : 's'} per read${added}. With Redis stopped, ${redisDown.failed} of ${redisDown.total} reads were ${redisDown.failed > 0 ? 'refused with 503 ' : ''}${list(redisDown.reasons)}, from ${list(redisDown.servers)}, ${loginWhileDown.status === 503 ? 'and so was bob\'s login, ' : `bob's login got ${loginWhileDown.status}, `}the slowest answer in ${Math.round(slowestWhileDownMs)} ms: one shared store, one shared outage. And a Redis that keeps nothing on disk forgets every session when it restarts (${afterReturn.refused} of ${afterReturn.total} refused after it came back).`
    }
  }
}

async function waitForStore (ctx: StepContext): Promise<void> {
  const deadline = Date.now() + 15_000
  for (const server of ctx.cluster.servers) {
    for (;;) {
      const health = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(1000) }).then(async (r) => await r.json() as { store?: string }, () => ({ store: 'down' }))
      if (health.store === 'up') break
      if (Date.now() > deadline) throw new Error(`${server.id} did not reconnect to Redis within 15 s`)
      await sleep(50)
    }
  }
}

// ---------------------------------------------------------------------------

export interface JwtStateless {
  fetches: Tally
  header: Record<string, unknown>
  payload: Record<string, unknown>
  signatureMatches: boolean
  authMedianMs: number | undefined
}

const step5: Step<JwtStateless> = {
  n: 5,
  title: 'JWT: no shared state, and nothing hidden',
  cluster: { mode: 'jwt', strategy: 'round-robin' },
  async run (ctx) {
    ctx.out.say('jwt mode: no sessions at all. At login the server signs a token with JWT_SECRET, a secret every server holds; each request carries the token. Alice logs in and reads her feed six times.')
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    const answers = await times(6, async () => await alice.feeds())
    const fetches = tally(answers)
    const authMedianMs = await sampleAuthMs(alice, answers)
    ctx.memo.jwtAuthMs = authMedianMs
    ctx.out.note(`(and ${TIMING_SAMPLES} more, not shown: the auth step's median is ${ms(authMedianMs)} ms, a signature check)`)
    ctx.out.blank()

    const token = alice.token ?? ''
    const { parts, header, payload, payloadText } = decodeJwt(token)
    ctx.out.say('What is in the token? Three base64url parts, separated by dots:')
    ctx.out.verbatim([parts[0], `.${parts[1]}`, `.${parts[2]}`].map((p) => p.length > 78 ? `${p.slice(0, 75)}...` : p))
    ctx.out.say('Decode the first two, no key needed:')
    ctx.out.verbatim([`header:  ${JSON.stringify(header)}`, `payload: ${payloadText}`], 'yellow')
    const exp = typeof payload.exp === 'number' ? payload.exp : 0
    ctx.out.note(`sub is "${String(payload.sub)}", and exp is ${exp}: ${clock(exp)}, ${exp - Math.floor(Date.now() / 1000)} s from now.`)
    ctx.out.say('The third part is the signature: HMAC-SHA256 over the first two, keyed with JWT_SECRET. The launcher made this cluster\'s secret, so the walkthrough can compute it too:')
    const matches = signatureMatches(token, ctx.cluster.jwtSecret ?? '')
    ctx.out.verbatim([`HMAC-SHA256(part1 + "." + part2, JWT_SECRET) ${matches ? '= part3 ✔' : '≠ part3 ✘'}`])
    return {
      result: { fetches, header, payload, signatureMatches: matches, authMedianMs },
      lesson: `${fetches.ok} of ${fetches.total} accepted, on ${list(fetches.servers)}, with no store at all: each server checked the signature itself (median ${ms(authMedianMs)} ms). The header and payload are base64url, an encoding, not encryption: anyone holding the token reads sub="${String(payload.sub)}" and exp. The post calls JWTs encrypted; they are signed, which proves who made them and hides nothing.`
    }
  }
}

// ---------------------------------------------------------------------------

export interface JwtForgeries {
  real: Tally
  tampered: Tally
  change: { from: string, to: string }
  wrongSecret: Tally
  unsigned: Tally
}

const step6: Step<JwtForgeries> = {
  n: 6,
  title: 'JWT: change one character, and every server says no',
  cluster: { mode: 'jwt', strategy: 'round-robin' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say(`Readable is not editable. Alice logs in; her real token works. Then three forgeries, each sent to all ${n} servers.`)
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    const real = tally([await alice.feeds()])
    const token = alice.token ?? ''

    const edit = tamperExp(token)
    ctx.out.blank()
    ctx.out.say(`1. Change one character of the payload: the first digit of exp, ${edit.from} → ${edit.to}, for decades more of access. The signature stays as it was.`)
    const mark = (text: string): string => text.slice(0, edit.at) + ctx.out.paint(['bgYellow', 'black'], text[edit.at] ?? '') + text.slice(edit.at + 1)
    const from = Math.max(0, edit.payloadBefore.lastIndexOf(',', edit.at - 8))
    const tail = (text: string): string => `${from > 0 ? '…' : ''}${mark(text).slice(from)}`
    ctx.out.verbatim([`payload before: ${tail(edit.payloadBefore)}`, `payload after:  ${tail(edit.payloadAfter)}`])
    const tampered = tally(await times(n, async () => await alice.feeds({ token: edit.token })))

    ctx.out.blank()
    ctx.out.say('2. Keep the claims, sign them with a secret of our own.')
    const wrong = signWithWrongSecret(token)
    const wrongSecret = tally(await times(n, async () => await alice.feeds({ token: wrong })))

    ctx.out.blank()
    ctx.out.say('3. Say "alg": "none" in the header and send no signature at all.')
    const none = unsigned(token)
    const unsignedTally = tally(await times(n, async () => await alice.feeds({ token: none })))
    return {
      result: { real, tampered, change: { from: edit.from, to: edit.to }, wrongSecret, unsigned: unsignedTally },
      lesson: `One changed character (exp ${edit.from} → ${edit.to}) and ${tampered.refused} of ${tampered.total} servers refused the token (${list(tampered.reasons)}): the signature no longer matches. Signed with a wrong secret: ${wrongSecret.refused} of ${wrongSecret.total} refused; unsigned: ${unsignedTally.refused} of ${unsignedTally.total}. Only a holder of JWT_SECRET can make a token the servers accept, so that secret is worth as much as every account.`
    }
  }
}

// ---------------------------------------------------------------------------

/** A key of JWT_SECRETS, as the walkthrough's rotation step hands them to the servers. */
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
  /** The old key removed from every server. */
  retired: { oldToken: Tally, newToken: Tally }
}

/** Restarts one server with these keys and waits until the balancer has it back; returns the seconds it took. */
async function restartWithKeys (ctx: StepContext, server: Cluster['servers'][number], keys: DemoKey[]): Promise<{ server: string, kids: string[], seconds: number }> {
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

/** The servers that refused (or failed) at least one of these answers. */
const refusers = (t: Tally): string[] => t.servers.filter((s) => (t.byServer[s]?.ok ?? 0) === 0)

// The step leaves its cluster on the new key alone: no other step asks for the same spec, so none shares it.
const step7: Step<JwtRotation> = {
  n: 7,
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
    ctx.out.blank()

    ctx.out.say(`Last, ${KEY_A.kid} is retired: ${shownSecrets(KEY_B)} everywhere. That is safe once no ${KEY_A.kid} token can still be alive, SESSION_TTL_SECONDS after pass 2 (an hour with npm start's default). Here it happens at once, to show what becomes of a token that is still signed with it.`)
    for (const server of ctx.cluster.servers) restarts.push(await restartWithKeys(ctx, server, [KEY_B]))
    const retired = { oldToken: await everywhere(alice), newToken: await everywhere(bob, newToken) }

    const result: JwtRotation = { kids: { old: KEY_A.kid, new: KEY_B.kid }, oldHeader, restarts, first, onePass, accepted, signing, retired }
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
  const retire = ` Retiring ${old} logged out whoever still held a token signed with it: alice's was refused by ${r.retired.oldToken.refused} of ${r.retired.oldToken.total} servers (${list(r.retired.oldToken.reasons)}), while bob's ${next} token worked on ${r.retired.newToken.ok} of ${r.retired.newToken.total}. A request costs the same either way (the kid picks the key: one HMAC), but a rotation is three rounds of restarts that every server must take part in, the last a token lifetime after the second.`
  return oldLine + onePass + twoPass + retire
}

// ---------------------------------------------------------------------------

export interface JwtLogout {
  ttlSeconds: number
  logout: Answer
  afterLogout: Tally
  /** Seconds from the logout until every server refused the token. */
  refusedAfterSeconds: number
  afterExpiry: Tally
}

const SHORT_TTL_SECONDS = 3

const step8: Step<JwtLogout> = {
  n: 8,
  title: 'JWT: log out, and the token still works',
  // A short lifetime, so the token's end comes within the walkthrough. The clock tolerance is
  // set to none for the same reason (servers that know no such variable ignore it).
  cluster: { mode: 'jwt', strategy: 'round-robin', sessionTtlSeconds: SHORT_TTL_SECONDS, serverEnv: { JWT_CLOCK_TOLERANCE_SECONDS: '0' } },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say(`The price of keeping no state. These servers issue tokens that live ${SHORT_TTL_SECONDS} s (SESSION_TTL_SECONDS=${SHORT_TTL_SECONDS}; npm start's default is 3600). Alice logs in, reads her feed and logs out.`)
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    await alice.feeds()
    const logout = await alice.logout()
    const loggedOutAt = Date.now()
    ctx.out.note('The logout cleared her cookie. Her client still holds the token, as would anyone who copied it. It reads the feed on every server:')
    const afterLogout = tally(await times(n, async () => await alice.feeds()))
    const exp = Number(decodeJwt(alice.token ?? '').payload.exp)
    ctx.out.blank()
    ctx.out.say(`It carries exp ${clock(exp)}. Waiting for that…`)
    let afterExpiry = afterLogout
    const deadline = exp * 1000 + 15_000
    await sleep(Math.max(0, exp * 1000 - Date.now()) + 250)
    for (;;) {
      afterExpiry = tally(await times(n, async () => await alice.feeds()))
      if (afterExpiry.ok === 0 || Date.now() > deadline) break
      ctx.out.note('(still accepted: the servers allow a little clock skew; waiting a second more)')
      await sleep(1000)
    }
    const refusedAfterSeconds = Math.round((Date.now() - loggedOutAt) / 100) / 10
    const redisMs = ctx.memo.redisAuthMs === undefined ? '' : ` (${ms(ctx.memo.redisAuthMs)} ms per request there)`
    const lesson = afterLogout.ok > 0
      ? `After the logout, ${afterLogout.ok} of ${afterLogout.total} servers still accepted the token: logout cleared a cookie, and no server keeps anything it could forget. It stopped working only at exp, ${refusedAfterSeconds} s after the logout (${list(afterExpiry.reasons)}); with npm start's 3600 s, a stolen or logged-out token works for up to an hour. A shorter lifetime narrows that window but means new tokens more often (refresh tokens: more requests, more moving parts). A revocation list closes it, but it is state again: every server checks it on every request, a shared-store round trip as in step 4${redisMs}. Step 9 runs one.`
      : `After the logout, ${afterLogout.refused} of ${afterLogout.total} servers refused the token (${list(afterLogout.reasons)}): these servers keep a list of logged-out tokens. That list is state again: every server checks it on every request, a shared-store round trip as in step 4${redisMs}, the very cost JWTs were meant to avoid.`
    return {
      result: { ttlSeconds: SHORT_TTL_SECONDS, logout, afterLogout, refusedAfterSeconds, afterExpiry },
      lesson
    }
  }
}

// ---------------------------------------------------------------------------

export interface JwtRevocation {
  beforeLogout: Tally
  afterLogout: Tally
  /** Commands the servers sent to Redis for the reads and the logout, by command. */
  commands: Record<string, number>
  reads: number
  loginWhileDown: Answer
  redisDown: Tally
  /** Alice's revoked token, once Redis came back. */
  revokedAfterReturn: Tally
}

const step9: Step<JwtRevocation> = {
  n: 9,
  title: 'JWT with a revocation list: logout works, and the state is back',
  cluster: { mode: 'jwt', strategy: 'round-robin', jwtRevocation: true },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say('The fix everyone reaches for: a list of revoked tokens. These servers run with JWT_REVOCATION=redis: logout writes the token\'s id (jti) into Redis until its exp, and every server looks it up on every request. Alice logs in, reads her feed, logs out and tries her token again.')
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    const before = await ctx.metric('session_store_commands_total', 'command')
    const beforeLogout = tally(await times(n, async () => await alice.feeds()))
    await alice.logout()
    const afterLogout = tally(await times(n, async () => await alice.feeds()))
    const after = await ctx.metric('session_store_commands_total', 'command')
    const commands: Record<string, number> = {}
    for (const [command, count] of Object.entries(after)) {
      const delta = count - (before[command] ?? 0)
      if (delta > 0) commands[command] = delta
    }
    const reads = beforeLogout.total + afterLogout.total
    ctx.out.note(`The servers' counters: ${Object.entries(commands).map(([c, k]) => `${k} ${c.toUpperCase()}`).join(', ')} for ${reads} reads and 1 logout.`)
    ctx.out.blank()

    const redis = ctx.cluster.redis
    if (redis === undefined) throw new Error('the walkthrough starts its own redis-server for the revocation list')
    ctx.out.say('Bob logs in. Then Redis stops: bob reads his feed, and carol tries to log in.')
    const bob = ctx.client('bob')
    await bob.login()
    await redis.stop()
    const redisDown = tally(await times(n, async () => await bob.feeds()))
    const loginWhileDown = await ctx.client('carol').login()
    ctx.out.blank()
    ctx.out.say('Redis starts again, empty: it keeps nothing on disk. Alice tries her revoked token once more.')
    await redis.start()
    await waitForStore(ctx)
    const revokedAfterReturn = tally(await times(n, async () => await alice.feeds()))
    const exists = commands.exists ?? 0
    const forgot = revokedAfterReturn.ok > 0
      ? ` And when this Redis came back empty, alice's revoked token was accepted again (${revokedAfterReturn.ok} of ${revokedAfterReturn.total}): the list is state, with all that comes with it.`
      : ` After Redis came back, her token was still refused (${revokedAfterReturn.refused} of ${revokedAfterReturn.total}).`
    return {
      result: { beforeLogout, afterLogout, commands, reads, loginWhileDown, redisDown, revokedAfterReturn },
      lesson: `After the logout ${afterLogout.refused} of ${afterLogout.total} servers refused alice's token (${list(afterLogout.reasons)}): logout works, because every server now asks Redis on every request (${exists} EXISTS for ${reads} reads). With Redis stopped, ${redisDown.failed} of ${redisDown.total} of bob's reads were 503 (a server that cannot check the list cannot accept the token)${loginWhileDown.status === 503 ? ', and carol could not log in either (503)' : `; carol's login got ${loginWhileDown.status}`}.${forgot} A JWT that must be revocable is a session id with extra steps.`
    }
  }
}

export const STEPS: ReadonlyArray<Step<unknown>> = [step1, step2, step3, step4, step5, step6, step7, step8, step9] as ReadonlyArray<Step<unknown>>
