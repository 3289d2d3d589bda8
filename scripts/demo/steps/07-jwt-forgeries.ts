import { signWithWrongSecret, tamperExp, unsigned } from '../jwt.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { tally, type Tally } from '../tally.ts'
import { list } from '../words.ts'

export interface JwtForgeries {
  real: Tally
  tampered: Tally
  change: { from: string, to: string }
  wrongSecret: Tally
  unsigned: Tally
}

export const jwtForgeries: Step<JwtForgeries> = {
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
