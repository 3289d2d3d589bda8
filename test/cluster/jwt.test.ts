import t from 'tap'
import { feeds, feedsTimes, login, tally, withCluster } from '../helpers/cluster.ts'
import { forgeJwt, unsignedJwt, validClaims, withEditedPayload } from '../helpers/jwt-forge.ts'

t.test('jwt mode: every server accepts the token, and refuses every forgery', async (t) => {
  const cluster = await withCluster(t, { mode: 'jwt', servers: 3 })
  const secret = cluster.jwtSecret
  if (secret === undefined) throw new Error('expected the cluster secret')
  const { token } = await login(cluster.url)

  const answers = await feedsTimes(cluster.url, token, 30)
  t.same(tally(answers), { 'app-1': { 200: 10 }, 'app-2': { 200: 10 }, 'app-3': { 200: 10 } }, 'all 30 succeed, 10 on each server')

  const forgeries: Record<string, { token: string, reason: string }> = {
    'payload edited, signature kept': { token: withEditedPayload(token, (c) => ({ ...c, sub: 'bob' })), reason: 'invalid_token' },
    'alg none': { token: unsignedJwt(validClaims()), reason: 'invalid_token' },
    expired: { token: forgeJwt(validClaims({ iat: 1_000_000, exp: 1_000_600 }), secret), reason: 'expired' },
    'another audience': { token: forgeJwt(validClaims({ aud: 'some-other-api' }), secret), reason: 'invalid_token' },
    'signed with another secret': { token: forgeJwt(validClaims(), 'x'.repeat(48)), reason: 'invalid_token' },
    'random garbage': { token: 'q3Vx.not-a-jwt.~~~', reason: 'invalid_token' }
  }
  for (const [name, forgery] of Object.entries(forgeries)) {
    const refusals = await Promise.all([0, 1, 2].map(async () => await feeds(cluster.url, forgery.token)))
    t.ok(refusals.every((a) => a.status === 401 && a.body.reason === forgery.reason), `${name}: 401 ${forgery.reason} from every server`)
    t.same(new Set(refusals.map((a) => a.servedBy)), new Set(['app-1', 'app-2', 'app-3']), `${name}: tried on all three servers`)
  }
  const genuine = forgeJwt(validClaims(), secret)
  t.equal((await feeds(cluster.url, genuine)).status, 200, 'the same claims signed with the real secret pass: the checks above are the signature and claims, not luck')
})

t.test('the balancer skips a killed server and keeps answering', async (t) => {
  const cluster = await withCluster(t, { mode: 'jwt', servers: 3 })
  const { token } = await login(cluster.url)
  const victim = cluster.servers[1]
  if (victim === undefined) throw new Error('expected three servers')

  await victim.kill()
  const answers = await feedsTimes(cluster.url, token, 30)
  t.ok(answers.every((a) => a.status === 200), 'every request after the kill succeeds')
  t.notOk(answers.some((a) => a.servedBy === victim.id), `${victim.id} gets none of them`)
  const stats = await (await fetch(`${cluster.url}/_balancer/stats`)).json() as { upstreams: Array<{ url: string, healthy: boolean }> }
  t.equal(stats.upstreams.find((u) => u.url === victim.url)?.healthy, false, 'the balancer reports it unhealthy')

  await victim.start()
  let back = false
  for (let i = 0; i < 50 && !back; i++) {
    back = (await feeds(cluster.url, token)).servedBy === victim.id
    if (!back) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(back, `${victim.id} rejoins the rotation once it is back`)
})
