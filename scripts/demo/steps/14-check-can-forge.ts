import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import type { Answer } from '../client.ts'
import { ISSUER_CLUSTER } from '../issuer-cluster.ts'
import { claimsFor, decodeJwt, signEd25519, signHs256 } from '../jwt.ts'
import { environmentOf } from '../process-env.ts'
import { times } from '../requests.ts'
import type { Step, StepContext } from '../step.ts'
import { tally, type Tally } from '../tally.ts'
import { list } from '../words.ts'

/** A forged token and what every server said to it. */
export interface Forgery { name: string, tally: Tally, users: string[] }

export interface CheckCanForge {
  hs256: {
    /** The app server whose environment was read, and how. */
    server: string
    source: string
    /** The variable the secret was found in. */
    variable: string
    /** A token for bob, who never logged in, minted with that secret. */
    forged: Forgery
  }
  eddsa: {
    server: string
    source: string
    /** Its environment's variables whose names say secret, key or private: none, if all is well. */
    keyLike: string[]
    /** Where it gets its keys from instead. */
    jwksUrl: string | undefined
    /** Alice's real token, the issuer's: the control. */
    real: Tally
    /** The tokens for bob that the compromised server could make. */
    forgeries: Forgery[]
  }
}

const JWT_NAMES = ['JWT_SECRET', 'JWT_SECRETS']
const KEY_LIKE = /SECRET|KEY|PRIVATE/i
const shown = (secret: string): string => `${secret.slice(0, 6)}… (${secret.length} characters)`

/** Sends the token to every server in turn (sequential requests go round them); who each accepted it as. */
async function everywhere (ctx: StepContext, name: string, token: string): Promise<Forgery> {
  const answers: Answer[] = await times(ctx.cluster.servers.length, async () => await ctx.client('mallory').feeds({ token }))
  const users = [...new Set(answers.filter((a) => a.status === 200).map((a) => String(a.body.user)))]
  return { name, tally: tally(answers), users }
}

export const checkCanForge: Step<CheckCanForge> = {
  title: 'a server that can check a token can also forge one',
  cluster: { mode: 'jwt', strategy: 'round-robin' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    const victim = ctx.cluster.servers[1] ?? ctx.cluster.servers[0]
    if (victim === undefined) throw new Error('no app server')
    ctx.out.say(`Say ${victim.id} is broken into: a dependency with a back door, a leaked .env, a debug page. Under the post's JWT (HS256, one secret) every server must hold the secret to check a token. Alice logs in, so the intruder knows what a token looks like; then the intruder reads ${victim.id}'s environment.`)
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    const read = environmentOf(victim)
    const variable = JWT_NAMES.find((name) => read.env[name] !== undefined)
    const stolen = variable === undefined ? undefined : read.env[variable]
    if (variable === undefined || stolen === undefined) throw new Error(`no JWT secret in ${victim.id}'s environment`)
    // JWT_SECRETS is kid:secret,...: the first signs.
    const secret = variable === 'JWT_SECRETS' ? (stolen.split(',')[0] ?? '').split(':').slice(1).join(':') : stolen
    ctx.out.verbatim([`${read.source}:  ${variable}=${shown(secret)}`], 'yellow')
    ctx.out.say('With it, a token for bob, who has not logged in: alice\'s header and claims, sub "bob", a fresh jti, an hour to live, signed with the stolen secret. It goes to every server.')
    const forgedToken = signHs256(decodeJwt(alice.token ?? '').header, claimsFor(alice.token ?? '', 'bob', 3600), secret)
    const forged = await everywhere(ctx, 'HS256 with the secret from the environment', forgedToken)
    ctx.out.blank()

    ctx.out.say('Now the same break-in under JWT_SIGNING=eddsa: an issuer process alone holds the private key; the app servers fetch its public keys (the JWKS) and hold nothing that signs.')
    const e = await ctx.switchCluster(ISSUER_CLUSTER)
    const eVictim = e.cluster.servers[1] ?? e.cluster.servers[0]
    if (eVictim === undefined) throw new Error('no app server')
    const eAlice = e.client('alice')
    await eAlice.login()
    const real = tally(await times(n, async () => await eAlice.feeds()))
    const eRead = environmentOf(eVictim)
    const keyLike = Object.keys(eRead.env).filter((name) => KEY_LIKE.test(name))
    const jwksUrl = eRead.env.JWKS_URL
    ctx.out.verbatim([`${eRead.source}:  ${Object.keys(eRead.env).filter((k) => /^(AUTH_MODE|JWT_|JWKS_)/.test(k)).sort().map((k) => `${k}=${eRead.env[k] ?? ''}`).join('  ')}`], 'yellow')
    e.out.note(keyLike.length === 0 ? `No variable named for a secret or a key; JWKS_URL is where anyone, ${eVictim.id} included, reads the public keys.` : `It holds ${list(keyLike)}!`)
    const mallory = e.client('mallory')
    const jwks = await mallory.request('GET', '/.well-known/jwks.json', { token: null })
    const issuerJwk = (jwks.body.keys as Array<{ kid: string, x: string }> | undefined)?.[0]
    if (issuerJwk === undefined) throw new Error('the JWKS holds no key')
    e.out.say(`The intruder tries every token ${eVictim.id} could make for bob, each sent to all ${n} servers:`)
    const claims = claimsFor(eAlice.token ?? '', 'bob', 3600)
    const own = generateKeyPairSync('ed25519').privateKey
    const publicPem = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: issuerJwk.x }, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
    const attempts: Array<[string, string]> = [
      ['an Ed25519 key of its own, under a kid of its own', signEd25519({ alg: 'EdDSA', typ: 'at+jwt', kid: randomBytes(32).toString('base64url') }, claims, own)],
      ['the same key, under the issuer\'s kid', signEd25519({ alg: 'EdDSA', typ: 'at+jwt', kid: issuerJwk.kid }, claims, own)],
      ['HS256 keyed with the issuer\'s public key (its PEM), under its kid: key confusion', signHs256({ alg: 'HS256', typ: 'at+jwt', kid: issuerJwk.kid }, claims, publicPem)]
    ]
    const forgeries: Forgery[] = []
    for (const [i, [name, token]] of attempts.entries()) {
      e.out.say(`${i + 1}. ${name}.`)
      forgeries.push(await everywhere(e, name, token))
    }
    const result: CheckCanForge = {
      hs256: { server: victim.id, source: read.source, variable, forged },
      eddsa: { server: eVictim.id, source: eRead.source, keyLike, jwksUrl, real, forgeries }
    }
    return { result, lesson: forgeLesson(result) }
  }
}

function forgeLesson (r: CheckCanForge): string {
  const { forged } = r.hs256
  const hs = `Under HS256 the secret read from ${r.hs256.server}'s environment made a token for bob, who never logged in: ${forged.tally.ok} of ${forged.tally.total} servers accepted it${forged.users.length === 0 ? '' : `, as ${list(forged.users)}`}. One broken server, or one leaked .env, is every account.`
  const refused = r.eddsa.forgeries.reduce((k, f) => k + f.tally.refused, 0)
  const total = r.eddsa.forgeries.reduce((k, f) => k + f.tally.total, 0)
  const accepted = r.eddsa.forgeries.reduce((k, f) => k + f.tally.ok, 0)
  const failed = r.eddsa.forgeries.reduce((k, f) => k + f.tally.failed, 0)
  const reasons = [...new Set(r.eddsa.forgeries.flatMap((f) => f.tally.reasons))]
  const ed = ` Under EdDSA, ${r.eddsa.server}'s environment held ${r.eddsa.keyLike.length === 0 ? 'no secret and no key, only JWKS_URL' : list(r.eddsa.keyLike)}; of the ${r.eddsa.forgeries.length} tokens it could make for bob (its own key, its own key under the issuer's kid, HS256 keyed with the public key), the servers refused ${refused} of ${total} sends (${list(reasons)})${accepted > 0 ? `, and accepted ${accepted}` : ''}${failed > 0 ? `, with ${failed} 5xx` : ', with no 5xx'}, while alice's real token passed ${r.eddsa.real.ok} of ${r.eddsa.real.total}.`
  return `${hs}${ed} A server that only verifies can read what passes through it, but cannot become anyone.`
}
