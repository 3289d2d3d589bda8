import t from 'tap'
import { withCluster } from '../helpers/cluster.ts'
import { tally, upload, type UploadOutcome } from '../helpers/upload.ts'

// Issue 10: a login body of a few MB through the balancer was a 502 EPIPE most of the time,
// though the app server had answered 413. Through real processes: the balancer refuses a body
// over its MAX_BODY_BYTES (1 MiB) itself, and passes on the app's own 413 for one under it but
// over the app's 16 KiB; never a 5xx, and no upstream failure counted for either.

async function failures (baseUrl: string): Promise<number> {
  const stats = await (await fetch(`${baseUrl}/_balancer/stats`)).json() as { upstreams: Array<{ failures: number }> }
  return stats.upstreams.reduce((sum, u) => sum + u.failures, 0)
}

const MB = 1_000_000

t.test('bodies over MAX_BODY_BYTES: 413 every time, never a 5xx', async (t) => {
  const cluster = await withCluster(t, { mode: 'memory', servers: 2 })
  const before = await failures(cluster.url)
  for (const [size, tries] of [[1.1 * MB, 20], [2 * MB, 20], [5 * MB, 20], [50 * MB, 4]] as const) {
    for (const chunked of [false, true]) {
      const outcomes: UploadOutcome[] = []
      for (let i = 0; i < tries; i++) outcomes.push(await upload(`${cluster.url}/login`, size, { chunked }))
      const how = `${size / MB} MB ${chunked ? 'chunked' : 'with a Content-Length'}`
      t.same(tally(outcomes), { 413: tries }, `${how}: 413, ${tries} of ${tries}`)
      if (chunked) {
        // Streamed on, a chunked body meets the app servers' own 16 KiB limit first: either
        // answer is a 413 (the balancer's own count is tested in test/balancer/bodies.test.ts).
        t.ok(outcomes.every((o) => o.json?.error === 'payload_too_large'), `${how}: a JSON payload_too_large every time`)
      } else {
        t.ok(outcomes.every((o) => o.json?.limit === 1024 * 1024 && o.json.error === 'payload_too_large'), `${how}: the balancer's own answer, at once`)
      }
    }
  }
  t.equal(await failures(cluster.url), before, 'no upstream failure counted')
})

t.test("a body under the balancer's limit but over the app's: the app's 413, never a 502", async (t) => {
  const cluster = await withCluster(t, { mode: 'memory', servers: 2 })
  const before = await failures(cluster.url)
  for (const size of [100_000, 500_000, 1_000_000]) {
    for (const chunked of [false, true]) {
      const outcomes: UploadOutcome[] = []
      for (let i = 0; i < 20; i++) outcomes.push(await upload(`${cluster.url}/login`, size, { chunked }))
      const how = `${size / 1000} kB ${chunked ? 'chunked' : 'with a Content-Length'}`
      t.same(tally(outcomes), { 413: 20 }, `${how}: 413, 20 of 20`)
      t.ok(outcomes.every((o) => o.json?.error === 'payload_too_large' && String(o.json.servedBy).startsWith('app-')), `${how}: the app server's own answer`)
    }
  }
  // Ten at once, as a busy balancer sees them.
  const together = await Promise.all(Array.from({ length: 10 }, (_, i) => upload(`${cluster.url}/login`, 500_000, { chunked: i % 2 === 0 })))
  t.same(tally(together), { 413: 10 }, '500 kB, ten at once: 413 each')
  t.equal(await failures(cluster.url), before, 'an upstream refusing a body early is not an upstream failure')
})
