import t from 'tap'
import { postgresLocalCache, type PostgresLocalCache } from '../../../scripts/demo/steps/13-postgres-local-cache.ts'
import { STEPS } from '../../../scripts/demo/steps/index.ts'
import { runWalkthrough } from '../../../scripts/demo/walkthrough.ts'

// Real clusters on a machine that may be busy: more time than the suite's default.
t.setTimeout(300_000)

// Found by what it is, not by its number: steps added before it move it along.
const n = STEPS.indexOf(postgresLocalCache as (typeof STEPS)[number]) + 1

t.test('the postgres local-cache step: a logout the other servers\' caches never hear of, then one they all do', async (t) => {
  t.ok(n > 0, `the step is in the registry (step ${n})`)
  let output = ''
  const reports = await runWalkthrough({ fromStep: n, toStep: n, port: 0, colour: false, write: (text) => { output += text } })
  const step = reports[0]?.result as PostgresLocalCache
  const w = step.withoutInvalidation
  const p = step.withInvalidation
  t.same([w.reads.ok, w.reads.total], [6, 6], 'every read before the logout accepted')
  t.ok(w.readHits >= 3, `most of them from the caches (${w.readHits} of 6)`)
  const stale = Object.entries(w.acceptedAfter).filter(([, k]) => k > 0).map(([s]) => s).sort()
  t.same(stale, ['app-1', 'app-2', 'app-3'].filter((s) => s !== w.logoutServedBy), 'without invalidation, the two servers that did not take the logout still accept the session after it')
  t.equal(w.acceptedAfter[w.logoutServedBy], 0, 'the one that took it refuses it at once')
  t.ok(w.lastAcceptedMs !== undefined && w.lastAcceptedMs > 1000 && w.lastAcceptedMs < 4500, `until their entries expire (4 s after they were filled): the last acceptance ${Math.round(w.lastAcceptedMs ?? 0)} ms after the logout`)
  t.same([w.afterwards.refused, w.afterwards.reasons], [3, ['unknown_session']], 'then refused everywhere')
  const late = Object.values(p.acceptedAfter).reduce((a, b) => a + b, 0)
  t.ok(p.lastAcceptedMs === undefined || p.lastAcceptedMs < 100, `with NOTIFY, every server refuses it within 100 ms of the logout's answer (the last acceptance ended ${p.lastAcceptedMs === undefined ? 'before it was sent' : `${p.lastAcceptedMs.toFixed(1)} ms after it`}; ${late} of ${p.readsAfter} reads begun after it accepted)`)
  t.ok(p.readsAfter > 50, 'and there were plenty of reads after it')
  t.same([p.afterwards.refused, p.afterwards.reasons], [3, ['unknown_session']])
  t.match(reports[0]?.lesson, `accepting alice's session for up to ${((w.lastAcceptedMs ?? 0) / 1000).toFixed(1)} s more`)
  t.match(reports[0]?.lesson, late === 0 ? `none of the ${p.readsAfter} reads begun after the logout was answered was accepted` : `${late} of ${p.readsAfter} reads begun after the logout was answered`)
  t.match(reports[0]?.lesson, 'Fewer database reads, one more thing to keep in sync')
  t.match(output, /SESSION_CACHE=local, SESSION_CACHE_INVALIDATION=none, SESSION_CACHE_TTL_SECONDS=4/, 'the cluster is described as it runs')
})
