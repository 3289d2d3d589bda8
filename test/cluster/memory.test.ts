import t from 'tap'
import { call, feedsTimes, login, tally, withCluster } from '../helpers/cluster.ts'

t.test('memory mode: only the server that saw the login knows the session', async (t) => {
  const cluster = await withCluster(t, { mode: 'memory', servers: 3 })
  const { token, servedBy: home } = await login(cluster.url)
  t.match(home, /^app-[123]$/)

  const answers = await feedsTimes(cluster.url, token, 30)
  const ok = answers.filter((a) => a.status === 200)
  const refused = answers.filter((a) => a.status === 401)
  t.equal(ok.length, 10, 'exactly the 10 requests that land on the login server succeed')
  t.equal(refused.length, 20, 'the other 20 are refused')
  t.ok(ok.every((a) => a.servedBy === home && a.body.user === 'alice'), 'every success comes from the login server')
  t.ok(refused.every((a) => a.body.reason === 'unknown_session'), 'every refusal says unknown_session')
  t.ok(refused.every((a) => a.servedBy !== home && a.body.servedBy === a.servedBy), 'every refusal names the server that refused it')
  const others = cluster.servers.map((s) => s.id).filter((id) => id !== home)
  t.same(tally(answers), Object.fromEntries([[home, { 200: 10 }], ...others.map((id) => [id, { 401: 10 }])]), '10 requests per server')
})

t.test('memory mode: logout ends the session only on the server that handled it', async (t) => {
  const cluster = await withCluster(t, { mode: 'memory', servers: 3 })
  const { token, servedBy: home } = await login(cluster.url)
  const auth = { authorization: `Bearer ${token}` }

  // Round robin sends the next request to another server, which has nothing to delete.
  const elsewhere = await call(`${cluster.url}/logout`, { method: 'POST', headers: auth })
  t.equal(elsewhere.status, 204)
  t.not(elsewhere.servedBy, home, 'the logout landed on a server that never saw the session')
  const afterElsewhere = await feedsTimes(cluster.url, token, 30)
  t.equal(afterElsewhere.filter((a) => a.status === 200).length, 10, 'the session still works on its own server')

  let logout
  do logout = await call(`${cluster.url}/logout`, { method: 'POST', headers: auth })
  while (logout.servedBy !== home)
  t.equal(logout.status, 204)
  const afterHome = await feedsTimes(cluster.url, token, 30)
  t.equal(afterHome.filter((a) => a.status === 200).length, 0, 'once the home server logs out, the session is gone everywhere')
  t.ok(afterHome.every((a) => a.status === 401 && a.body.reason === 'unknown_session'))
})
