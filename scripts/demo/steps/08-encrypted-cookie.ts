import type { Answer, DemoClient } from '../client.ts'
import { decodeJwt, tamperExp } from '../jwt.ts'
import { times } from '../requests.ts'
import { flipExpiryBit, foundAnywhere, sealedParts, tryDecodings, type Decoding, type Found, type SealedPartName } from '../sealed.ts'
import type { Step, StepContext } from '../step.ts'
import { tally, type Tally } from '../tally.ts'
import { list } from '../words.ts'
import { jwtStateless } from './06-jwt-stateless.ts'
import { jwtLogout } from './10-jwt-logout.ts'
import { jwtRevocation } from './11-jwt-revocation.ts'

/** One credential as a client holds it: what it gives away, and what the servers make of it. */
export interface CredentialSeen {
  /** The characters sent with every request. */
  length: number
  /** Every decoding tried, and what of the user name and the expiry showed in each. */
  decodings: Decoding[]
  found: Found[]
  /** The expiry looked for: the Unix times it may be (the login's second on this clock, plus its expiresIn). */
  expiry: number[]
  /** The value as issued, on every server. */
  real: Tally
  /** One byte changed, on every server. */
  changed: Tally
  logout: Answer
  /** The value as issued, after the logout, on every server. */
  afterLogout: Tally
}

export interface EncryptedCookie {
  jwt: CredentialSeen & { payload: Record<string, unknown>, change: { from: string, to: string } }
  cookie: CredentialSeen & {
    parts: Array<{ name: SealedPartName, hex: string }>
    /** One bit of the first ciphertext byte: the one that would move the sealed expiry later. */
    change: { byteAt: number, from: string, to: string, laterBySeconds: number }
  }
}

const FOUND_WORDS: Record<Found, string> = { user: 'the user name', expiry: 'the expiry' }

/** One line per decoding: what it gave, and what of the user and the expiry shows in it. */
function decodingLines (decodings: Decoding[], expiry: number): string[] {
  return decodings.map((d) => {
    const gave = d.gave.length > 44 ? `${d.gave.slice(0, 41)}...` : d.gave
    const shown = d.found.length === 0 ? `no "alice", no ${expiry}` : `shows ${list(d.found.map((f) => FOUND_WORDS[f]))}`
    return `${d.name.padEnd(10)} ${gave.padEnd(45)} ${shown}`
  })
}

/** Alice logs in; her value is tried in every decoding, and read on every server. */
async function logIn (ctx: StepContext): Promise<{ alice: DemoClient, token: string, expiry: number[], decodings: Decoding[], real: Tally }> {
  const n = ctx.cluster.servers.length
  const alice = ctx.client('alice')
  const before = Math.floor(Date.now() / 1000)
  const login = await alice.login()
  const after = Math.floor(Date.now() / 1000)
  const token = alice.token ?? ''
  // The server read its clock during the login: its second is one of these (the same clock here).
  const expiry = Array.from({ length: after - before + 1 }, (_, i) => before + i + Number(login.body.expiresIn))
  const real = tally(await times(n, async () => await alice.feeds()))
  return { alice, token, expiry, decodings: tryDecodings(token, { user: 'alice', expiry }), real }
}

/** The changed value on every server; then a logout, and the value as issued on every server again. */
async function changeAndLogOut (ctx: StepContext, alice: DemoClient, changed: string): Promise<Pick<CredentialSeen, 'changed' | 'logout' | 'afterLogout'>> {
  const n = ctx.cluster.servers.length
  const changedTally = tally(await times(n, async () => await alice.feeds({ token: changed })))
  ctx.out.say('Alice logs out, and sends her value again, as anyone who copied it could.')
  const logout = await alice.logout()
  const afterLogout = tally(await times(n, async () => await alice.feeds()))
  return { changed: changedTally, logout, afterLogout }
}

// Right after the JWT's forgeries, on their cluster (the same spec), then on a cookie cluster:
// the JWT just read and forged, beside what the post thought it was.
export const encryptedCookie: Step<EncryptedCookie> = {
  title: 'an encrypted session (cookie mode): what the post thought a JWT was',
  cluster: { mode: 'jwt', strategy: 'round-robin' },
  async run (ctx) {
    ctx.out.say(`The post calls the JWT encrypted; step ${ctx.numberOf(jwtStateless)} read one with no key. An encrypted session exists, and is older: the whole session in the cookie, sealed with AES-256-GCM under a key every server holds (AUTH_MODE=cookie, as Rails' cookie store does). Alice logs in on a jwt cluster, then on a cookie cluster; each time we try to read her credential, change one byte of it, and log out.`)
    ctx.out.blank()
    const jwtLogin = await logIn(ctx)
    const { payload, payloadText } = decodeJwt(jwtLogin.token)
    ctx.out.say(`Her JWT, ${jwtLogin.token.length} characters. Its payload, base64url-decoded:`)
    ctx.out.verbatim([`payload: ${payloadText}`], 'yellow')
    ctx.out.say('Every decoding a curious client might try, and what shows in it:')
    ctx.out.verbatim(decodingLines(jwtLogin.decodings, jwtLogin.expiry[0] ?? 0))
    const edit = tamperExp(jwtLogin.token)
    ctx.out.say(`One byte of the payload changed (exp's first digit, ${edit.from} → ${edit.to}), to every server:`)
    const jwtAfter = await changeAndLogOut(ctx, jwtLogin.alice, edit.token)
    ctx.out.blank()

    ctx.out.say('Now servers in cookie mode.')
    const cookieCtx = await ctx.switchCluster({ mode: 'cookie', strategy: 'round-robin' })
    const cookieLogin = await logIn(cookieCtx)
    const parts = sealedParts(cookieLogin.token)
    ctx.out.say(`Her value, ${cookieLogin.token.length} characters: base64url of a version byte, a key id, a random nonce, the sealed session and the tag that authenticates it (docs/modes.md):`)
    ctx.out.verbatim(parts.map((p) => `${p.name.padEnd(10)} ${String(p.hex.length / 2).padStart(2)} bytes  ${p.hex}`), 'yellow')
    ctx.out.say(`The same decodings, looking for "alice" and her expiry, ${cookieLogin.expiry[0] ?? 0} (the login's second plus the expiresIn its answer gave), as digits or as 4 bytes either way round:`)
    ctx.out.verbatim(decodingLines(cookieLogin.decodings, cookieLogin.expiry[0] ?? 0))
    const flip = flipExpiryBit(cookieLogin.token, cookieLogin.expiry[0] ?? 0)
    const days = Math.round(flip.laterBySeconds / 86_400)
    ctx.out.say(`One byte changed: one bit of the first ciphertext byte, ${flip.before} → ${flip.after}. AES-GCM encrypts by XOR with a key stream, so that flips the same bit of what is sealed, where the expiry sits: unchecked, it would now end ${days} days later. To every server:`)
    const cookieAfter = await changeAndLogOut(cookieCtx, cookieLogin.alice, flip.value)

    const jwt: EncryptedCookie['jwt'] = {
      length: jwtLogin.token.length,
      decodings: jwtLogin.decodings,
      found: foundAnywhere(jwtLogin.decodings),
      expiry: jwtLogin.expiry,
      real: jwtLogin.real,
      payload,
      change: { from: edit.from, to: edit.to },
      ...jwtAfter
    }
    const cookie: EncryptedCookie['cookie'] = {
      length: cookieLogin.token.length,
      decodings: cookieLogin.decodings,
      found: foundAnywhere(cookieLogin.decodings),
      expiry: cookieLogin.expiry,
      real: cookieLogin.real,
      parts,
      change: { byteAt: flip.byteAt, from: flip.before, to: flip.after, laterBySeconds: flip.laterBySeconds },
      ...cookieAfter
    }
    return { result: { jwt, cookie }, lesson: lesson(ctx, jwt, cookie) }
  }
}

function lesson (ctx: StepContext, jwt: EncryptedCookie['jwt'], cookie: EncryptedCookie['cookie']): string {
  const where = (c: CredentialSeen): string => list(c.decodings.filter((d) => d.found.length > 0).map((d) => d.name))
  const read = jwt.found.length === 2 && cookie.found.length === 0
    ? `Alice's JWT gave her name and its expiry away to ${where(jwt)}, no key needed; her sealed value, decoded as ${list(cookie.decodings.map((d) => d.name))}, showed neither, as text or as bytes (${cookie.length} characters against the JWT's ${jwt.length}). The post's "the JWT is encrypted" is false of a JWT and true of this.`
    : `Alice's JWT showed ${jwt.found.length === 0 ? 'nothing' : list(jwt.found.map((f) => FOUND_WORDS[f]))} in ${where(jwt) || 'no decoding'}; her sealed value showed ${cookie.found.length === 0 ? 'nothing' : `${list(cookie.found.map((f) => FOUND_WORDS[f]))} in ${where(cookie)}`}.`
  const changed = (t: Tally): string => `${t.refused + t.failed} of ${t.total} servers${t.reasons.length === 0 ? '' : ` (${list(t.reasons)})`}`
  const tamper = ` One byte changed was refused by ${changed(jwt.changed)} for the JWT and ${changed(cookie.changed)} for the sealed value: the JWT's signature and the cookie's authentication tag each catch it, where encryption alone would have let the flipped bit move the sealed expiry ${Math.round(cookie.change.laterBySeconds / 86_400)} days later.`
  const kept = (t: Tally): string => `${t.ok} of ${t.total}`
  const shared = jwt.afterLogout.ok > 0 && cookie.afterLogout.ok > 0
    ? ` What they share: after the logout, the JWT still worked on ${kept(jwt.afterLogout)} servers and the sealed value on ${kept(cookie.afterLogout)}: no server keeps anything it could forget, so neither can be taken back before it expires without state (step ${ctx.numberOf(jwtLogout)} waits out a JWT's exp; step ${ctx.numberOf(jwtRevocation)} keeps a revocation list, and pays for it).`
    : ` After the logout, the JWT worked on ${kept(jwt.afterLogout)} servers and the sealed value on ${kept(cookie.afterLogout)}.`
  return read + tamper + shared
}
