import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import t from 'tap'
import type { Test } from 'tap'
import { call, feedsTimes, login, withCluster } from '../helpers/cluster.ts'
import { measureAuthStep } from '../../scripts/lib/auth-step-timing.ts'

// The dashboard in a real browser against a real cluster: the page loads, draws the servers,
// shows traffic as it passes, and its buttons work (the stop/start ones through the launcher).
t.setTimeout(300_000)

/** Debian's chromium (what .ci/run installs), or another one named by CHROMIUM_PATH. */
function findChromium (): string | undefined {
  return [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']
    .find((p): p is string => p !== undefined && p !== '' && existsSync(p))
}
const executablePath = findChromium()
// .ci/run installs chromium; the test skips only when .ci/run said why it could not, never silently.
const unavailable = executablePath === undefined ? process.env.CHROMIUM_UNAVAILABLE : undefined
const skip = unavailable !== undefined ? `chromium could not be installed here: ${unavailable}` : false

async function openBrowser (t: Test): Promise<BrowserContext | undefined> {
  if (executablePath === undefined) {
    t.fail('chromium not found: install it (Debian/Ubuntu: apt-get install -y chromium) or set CHROMIUM_PATH; .ci/run installs it')
    return undefined
  }
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-'))
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 }
  })
  t.teardown(async () => {
    await context.close()
    rmSync(dir, { recursive: true, force: true })
  })
  context.setDefaultTimeout(60_000)
  return context
}

/** Opens the dashboard and records every URL the page asks for. */
async function openDashboard (t: Test, context: BrowserContext, url: string): Promise<{ page: Page, requests: string[], errors: string[] }> {
  const page = await context.newPage()
  const requests: string[] = []
  const errors: string[] = []
  page.on('request', (r) => { requests.push(r.url()) })
  page.on('pageerror', (err) => { errors.push(err.message) })
  await page.goto(`${url}/_balancer/`)
  for (const id of ['app-1', 'app-2', 'app-3']) await page.waitForSelector(`.server[data-server="${id}"]`)
  await page.waitForSelector('#live.pill-live')
  return { page, requests, errors }
}

interface Answers { accepted: number, refused: number, unavailable: number, other: number }
const CLASSES = ['accepted', 'refused', 'unavailable', 'other'] as const

/** What a server's card counts, by answer class. */
async function counts (page: Page, server: string): Promise<Answers> {
  const card = page.locator(`.server[data-server="${server}"]`)
  const read = async (name: string): Promise<number> => Number(await card.getAttribute(`data-${name}`))
  return { accepted: await read('accepted'), refused: await read('refused'), unavailable: await read('unavailable'), other: await read('other') }
}

// Run in the page (as strings: this project type-checks without the DOM's types).
const CARD_SUMS = `Object.fromEntries(${JSON.stringify(CLASSES)}.map((name) => [name,
  [...document.querySelectorAll('.server')].reduce((n, el) => n + Number(el.dataset[name]), 0)]))`
const TALLY = `Object.fromEntries(${JSON.stringify(CLASSES)}.map((name) => [name, Number(document.getElementById('tally').dataset[name])]))`

/** The cards' counts added up, by answer class. */
async function cardTotals (page: Page): Promise<Answers> {
  return await page.evaluate(CARD_SUMS) as Answers
}

/** What the panel counts of this page's own answers, by answer class. */
async function pageTally (page: Page): Promise<Answers> {
  return await page.evaluate(TALLY) as Answers
}

// Polled from here: the page's CSP (script-src 'self') refuses the eval a string predicate
// given to waitForFunction would need, while evaluate() goes through the debugger protocol.
async function waitForSum (page: Page, what: string, sums: string, total: number): Promise<void> {
  const deadline = Date.now() + 30_000
  let last: Answers | undefined
  while (Date.now() < deadline) {
    last = await page.evaluate(sums) as Answers
    if (Object.values(last).reduce((a, b) => a + b, 0) === total) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${what} did not reach ${total} answers: ${JSON.stringify(last)}`)
}

async function waitForCardTotal (page: Page, total: number): Promise<void> {
  // The events arrive in batches, a few times a second.
  await waitForSum(page, 'the cards', CARD_SUMS, total)
}

async function waitForTallyTotal (page: Page, total: number): Promise<void> {
  await waitForSum(page, 'the panel', TALLY, total)
}

async function waitForText (page: Page, selector: string, text: string): Promise<void> {
  await page.locator(selector, { hasText: text }).waitFor()
}

t.test('memory mode: a login and twenty fetches show refusals on the servers that lack the session', { skip }, async (t) => {
  const context = await openBrowser(t)
  if (context === undefined) return
  const cluster = await withCluster(t, { mode: 'memory', servers: 3 })
  // The README's login and six fetches, with curl, before any page is open.
  const curl = await login(cluster.url)
  const curlFeeds = await feedsTimes(cluster.url, curl.token, 6)
  t.same(curlFeeds.map((a) => a.status).sort(), [200, 200, 401, 401, 401, 401], 'strict rotation: two of six on the server that knows the session')
  const { page, requests, errors } = await openDashboard(t, context, cluster.url)

  t.same(await cardTotals(page), { accepted: 3, refused: 4, unavailable: 0, other: 0 }, 'the cards start from what passed before the page opened: the login and six fetches')
  t.same(await counts(page, curl.servedBy), { accepted: 3, refused: 0, unavailable: 0, other: 0 }, `${curl.servedBy} took the login and accepted its two fetches`)
  // The cards and the panel count the same thing, and say so with the same words.
  const legend = await page.textContent('#counts-legend') ?? ''
  const panel = await page.textContent('#tally') ?? ''
  for (const word of CLASSES) {
    t.match(legend, word, `the cards' legend says "${word}"`)
    t.match(panel, word, `the panel says "${word}"`)
  }

  await page.click('#reset')
  t.same(await cardTotals(page), { accepted: 0, refused: 0, unavailable: 0, other: 0 }, 'reset: the cards count from now')
  t.same(await pageTally(page), { accepted: 0, refused: 0, unavailable: 0, other: 0 }, 'reset: the panel too')
  await page.click('#login')
  await waitForText(page, '#cred-summary', 'alice, issued by app-')
  for (let i = 0; i < 6; i++) await page.click('#fetch1')
  await waitForTallyTotal(page, 7)
  await waitForCardTotal(page, 7)
  const tally = await pageTally(page)
  t.same(await cardTotals(page), tally, `after a login and six fetches the cards and the panel agree (${tally.accepted} accepted, ${tally.refused} refused)`)
  t.same(tally, { accepted: 3, refused: 4, unavailable: 0, other: 0 }, 'the login and the two fetches its server took, accepted; four refused')
  t.match(await page.textContent('#tally'), '3 accepted')
  t.match(await page.textContent('#tally'), '4 refused')

  t.match(await page.textContent('#mode'), 'memory')
  t.match(await page.textContent('#strategy'), 'round-robin')
  t.match(await page.textContent('#store-title'), 'no shared store')
  t.match(await page.textContent('#lesson'), 'Only the server you logged in on knows you')
  // The wires are drawn on the next animation frame after the servers appear.
  await page.waitForFunction("document.querySelectorAll('#wires line').length >= 4", undefined, { timeout: 5000 }).catch(() => {})
  t.equal(await page.locator('#wires line').count(), 4, 'the diagram: client to balancer, balancer to each server')

  const home = /issued by (app-\d)/.exec(await page.textContent('#cred-summary') ?? '')?.[1] ?? ''
  t.match(await page.textContent('#cred-parts'), `only in ${home}’s memory`, 'the credential panel says where the session lives')

  await page.click('#fetch20')
  await waitForText(page, '#answer', '20 fetches sent')
  await waitForTallyTotal(page, 27)
  await waitForCardTotal(page, 27)
  // 26 fetches in strict rotation over three servers since the login: its server took 8 or 9.
  t.match(await page.textContent('#tally'), /(?:9|10) accepted · ✘ 1[78] refused/)
  t.same(await cardTotals(page), await pageTally(page), 'the cards and the panel still agree')
  const others = ['app-1', 'app-2', 'app-3'].filter((id) => id !== home)
  const homeCounts = await counts(page, home)
  t.equal(homeCounts.refused, 0, `${home}, where alice logged in, refused nothing`)
  t.ok(homeCounts.accepted >= 9, `${home} accepted the login and its share of the fetches (${homeCounts.accepted})`)
  for (const id of others) {
    const c = await counts(page, id)
    t.ok(c.refused >= 8 && c.accepted === 0, `${id} never saw the login: ${c.refused} refused, ${c.accepted} accepted`)
  }
  t.match(await page.locator('#log-rows tr').first().textContent(), 'GET /feeds')
  t.equal(await page.locator('#log-rows tr').count(), 12, 'the log keeps the last twelve')
  t.ok(await page.locator('#log-rows tr.refused', { hasText: 'unknown_session' }).count() > 0, 'refusals are listed with their reason')

  await page.click('#tamper')
  t.match(await page.textContent('#cred-summary'), 'TAMPERED')
  await page.click('#fetch1')
  await waitForText(page, '#answer', '401')
  t.match(await page.textContent('#answer'), /unknown_session|invalid_token/, 'a changed session id is nobody\'s session')

  // Stop and start, relayed to the launcher that owns the processes.
  const victim = others[0] ?? 'app-2'
  const server = cluster.servers.find((s) => s.id === victim)
  await page.click(`button[data-action="stop"][data-target="${victim}"]`)
  await waitForText(page, `.server[data-server="${victim}"] .state`, 'stopped')
  t.equal(server?.running, false, `${victim} really stopped`)
  await page.click(`button[data-action="start"][data-target="${victim}"]`)
  await waitForText(page, `.server[data-server="${victim}"] .state`, 'up')
  t.equal(server?.running, true, `${victim} really runs again`)

  t.same(requests.filter((u) => !u.startsWith(`${cluster.url}/`)), [], 'the page asked nothing of any other origin')
  t.same(errors, [], 'no script error')
})

t.test('jwt mode: the token decoded, tampered with, forged, and still good after logout', { skip }, async (t) => {
  const context = await openBrowser(t)
  if (context === undefined) return
  const cluster = await withCluster(t, { mode: 'jwt', servers: 3 })
  const { page, errors } = await openDashboard(t, context, cluster.url)
  t.match(await page.textContent('#mode'), 'jwt')
  t.match(await page.textContent('#store-title'), 'JWT_SECRET')

  await page.selectOption('#user', 'bob')
  await page.click('#login')
  await waitForText(page, '#cred-summary', 'bob, issued by')
  const parts = await page.textContent('#cred-parts') ?? ''
  t.match(parts, '"alg":"HS256"', 'the header, decoded')
  t.match(parts, '"sub":"bob"', 'the payload, decoded: plain JSON')
  t.match(parts, 'HMAC-SHA256(header + "." + payload, JWT_SECRET)')
  t.match(parts, 'not encryption')

  await page.click('#fetch1')
  // Not '200': the login's answer before it says 200 too.
  await waitForText(page, '#answer', 'bob’s feed')
  t.match(await page.textContent('#answer'), /200.*bob’s feed|bob’s feed.*200/s)

  // The auth step, timed as the walkthrough and compare time it: the same order of magnitude.
  await page.click('#time-auth')
  await waitForText(page, '#auth-timing', 'Auth step, jwt mode')
  const timing = await page.textContent('#auth-timing') ?? ''
  t.match(timing, "median of 200 warm requests, 12 at a time after 200 not counted, from the servers' Server-Timing", 'it says how it measured, in the walkthrough\'s words')
  const pageMs = Number(await page.getAttribute('#auth-timing', 'data-median-ms'))
  const fromNode = await measureAuthStep({ url: cluster.url, token: await page.evaluate("document.getElementById('cred-token').textContent") as string })
  t.ok(pageMs > 0 && pageMs < 1, `a signature check is well under a millisecond on the page (${pageMs} ms)`)
  t.ok(pageMs < fromNode.medianMs * 10 && fromNode.medianMs < pageMs * 10, `the page (${pageMs} ms) and the walkthrough's measure (${fromNode.medianMs} ms) agree within an order of magnitude`)
  for (const id of ['app-1', 'app-2', 'app-3']) t.ok(Number(await page.getAttribute(`.server[data-server="${id}"]`, 'data-auth-ms')) > 0, `${id}'s card shows its own median`)
  t.match(await page.locator('#log-rows tr td.auth').first().textContent(), /µs|ms/, 'each request in the list shows its auth step, from Server-Timing')

  await page.click('#tamper')
  t.equal(await page.locator('#cred-parts .changed').count(), 1, 'the changed character is marked')
  await page.click('#fetch1')
  await waitForText(page, '#answer', '401')
  t.match(await page.textContent('#answer'), 'invalid_token')

  await page.click('#forge')
  await waitForText(page, '#cred-summary', 'FORGED')
  await page.click('#fetch1')
  await waitForText(page, '#answer', '401')
  t.match(await page.textContent('#answer'), 'invalid_token', 'a token signed with another secret is refused')

  await page.click('#restore')
  await page.click('#logout')
  await waitForText(page, '#answer', 'logged out on')
  const beforeFetches = await pageTally(page)
  await page.click('#fetch20')
  await waitForText(page, '#answer', '20 fetches sent')
  t.same(await pageTally(page), { ...beforeFetches, accepted: beforeFetches.accepted + 20 }, 'after logout the token still works on every server: 20 more accepted, none refused')
  t.match(await page.textContent('#cred-parts'), 'it still works until exp')
  t.same(errors, [], 'no script error')
})

/** One click of "Fetch feed", waited for by the panel's count, and the answer the page showed for it. */
async function fetchOnce (page: Page): Promise<string> {
  const before = await pageTally(page)
  await page.click('#fetch1')
  await waitForTallyTotal(page, Object.values(before).reduce((a, b) => a + b, 0) + 1)
  return await page.textContent('#answer') ?? ''
}

t.test('postgres mode: the database in the diagram, stopped and started from the page, and the session still there', { skip }, async (t) => {
  const context = await openBrowser(t)
  if (context === undefined) return
  const cluster = await withCluster(t, { mode: 'postgres', servers: 3 })
  const { page, requests, errors } = await openDashboard(t, context, cluster.url)
  t.match(await page.textContent('#mode'), 'mode: postgres')
  t.match(await page.getAttribute('#mode', 'title'), 'PostgreSQL', 'the pill says where the sessions live')
  await waitForText(page, '#store-note', 'every server reads every session here')
  t.equal(await page.textContent('#store-title'), 'PostgreSQL')
  t.match(await page.textContent('#lesson'), 'one UPDATE … RETURNING per request')
  t.match(await page.textContent('#lesson'), 'every session is still there')
  for (const id of ['app-1', 'app-2', 'app-3']) t.match(await page.textContent(`.server[data-server="${id}"] small`), 'sessions: in PostgreSQL', `${id}'s card says where its sessions are`)
  await page.waitForFunction("document.querySelectorAll('#wires line.wire-store').length === 3", undefined, { timeout: 5000 }).catch(() => {})
  t.equal(await page.locator('#wires line.wire-store').count(), 3, 'a wire from every server to the database')
  t.equal(await page.locator('#store-actions button[data-target="postgres"]').count(), 2, 'the database has its Stop and Start buttons')

  await page.click('#login')
  await waitForText(page, '#cred-summary', 'alice, issued by app-')
  t.match(await page.textContent('#cred-parts'), 'in a PostgreSQL table, which every server asks on every request')
  t.match(await fetchOnce(page), 'alice’s feed')

  await page.click('button[data-action="stop"][data-target="postgres"]')
  await waitForText(page, '#store-note', 'stopped: no server can read a session')
  t.equal(cluster.postgres?.running, false, 'PostgreSQL really stopped')
  t.match(await fetchOnce(page), /503 from app-\d: session_store_unavailable/, 'with the database stopped a read is a 503')
  await page.click('button[data-action="start"][data-target="postgres"]')
  await waitForText(page, '#control-note', 'postgres started')
  t.equal(cluster.postgres?.running, true, 'PostgreSQL really runs again')
  // Each server finds the database again on its next query or probe.
  const deadline = Date.now() + 15_000
  let answer = ''
  while (Date.now() < deadline) {
    answer = await fetchOnce(page)
    if (answer.includes('alice’s feed')) break
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  t.match(answer, /200 from app-\d: alice’s feed/, 'after the restart the same session works: it was on disk')

  await page.click('#tamper')
  t.match(await fetchOnce(page), /401 from app-\d: (?:unknown_session|invalid_token)/, 'a changed session id is nobody\'s session')
  t.same(requests.filter((u) => !u.startsWith(`${cluster.url}/`)), [], 'the page asked nothing of any other origin')
  t.same(errors, [], 'no script error')
})

t.test('cookie mode: no store, a key; the sealed value taken apart, nothing in it readable, a changed byte refused', { skip }, async (t) => {
  const context = await openBrowser(t)
  if (context === undefined) return
  const cluster = await withCluster(t, { mode: 'cookie', servers: 3 })
  const { page, requests, errors } = await openDashboard(t, context, cluster.url)
  t.match(await page.textContent('#mode'), 'mode: cookie')
  t.match(await page.getAttribute('#mode', 'title'), 'sealed in the cookie')
  await waitForText(page, '#store-title', 'COOKIE_SECRET')
  t.match(await page.textContent('#store-note'), 'no store: only a key every server holds')
  t.equal(await page.locator('#store-actions button').count(), 0, 'a key has no Stop button')
  t.match(await page.textContent('#lesson'), 'nothing the client can read')
  for (const id of ['app-1', 'app-2', 'app-3']) t.match(await page.textContent(`.server[data-server="${id}"] small`), 'sealed in the cookie')
  await page.waitForFunction("document.querySelectorAll('#wires line.wire-secret').length === 3", undefined, { timeout: 5000 }).catch(() => {})
  t.equal(await page.locator('#wires line.wire-secret').count(), 3, 'each server wired to the key, as in jwt mode')

  await page.selectOption('#user', 'carol')
  await page.click('#login')
  await waitForText(page, '#cred-summary', 'carol, issued by app-')
  const value = await page.textContent('#cred-token') ?? ''
  t.match(value, /^[A-Za-z0-9_-]{66}$/, 'the value: 66 characters of base64url')
  const parts = await page.textContent('#cred-parts') ?? ''
  const hex = Buffer.from(value, 'base64url').toString('hex')
  for (const [name, from, to] of [['version', 0, 1], ['key id', 1, 5], ['nonce', 5, 17], ['ciphertext', 17, 33], ['tag', 33, 49]] as const) {
    t.match(parts, new RegExp(`${name} +${to - from} bytes +${hex.slice(2 * from, 2 * to)}`), `${name}: its ${to - from} bytes, as they are in the value`)
  }
  t.match(parts, 'nothing here decodes to carol\'s name or the session\'s expiry')
  t.notMatch(parts.replace('decodes to carol\'s name', ''), 'carol', 'the name appears nowhere in the value\'s bytes')
  t.ok(await page.isDisabled('#forge'), '"Sign with a wrong secret" is for jwt mode only')

  t.match(await fetchOnce(page), 'carol’s feed')
  await page.click('#tamper')
  t.match(await page.textContent('#cred-summary'), 'TAMPERED')
  t.equal(await page.locator('#cred-parts .changed').count(), 1, 'the changed byte is marked')
  t.match(await page.textContent('#cred-parts'), 'one bit of the first ciphertext byte')
  const tampered = await page.textContent('#cred-token') ?? ''
  const diff = [...Buffer.from(value, 'base64url')].filter((b, i) => b !== Buffer.from(tampered, 'base64url')[i])
  t.equal(diff.length, 1, 'one byte of the value changed')
  const refusedBy = new Set<string>()
  for (let i = 0; i < 3; i++) {
    const refused = await fetchOnce(page)
    t.match(refused, /401 from app-\d: invalid_token/, 'refused: the tag no longer matches')
    refusedBy.add(/from (app-\d)/.exec(refused)?.[1] ?? '')
  }
  t.equal(refusedBy.size, 3, 'by every server')

  await page.click('#restore')
  await page.click('#logout')
  await waitForText(page, '#answer', 'logged out on')
  t.match(await page.textContent('#cred-parts'), 'it still works until it expires')
  const acceptedBy = new Set<string>()
  for (let i = 0; i < 3; i++) {
    const accepted = await fetchOnce(page)
    t.match(accepted, /200 from app-\d: carol’s feed/, 'accepted after logout')
    acceptedBy.add(/from (app-\d)/.exec(accepted)?.[1] ?? '')
  }
  t.equal(acceptedBy.size, 3, 'after logout the value still works on every server')
  t.same(requests.filter((u) => !u.startsWith(`${cluster.url}/`)), [], 'the page asked nothing of any other origin')
  t.same(errors, [], 'no script error')
})

t.test('jwt --signing eddsa: the issuer as its own box, and which key signed the page\'s token', { skip }, async (t) => {
  const context = await openBrowser(t)
  if (context === undefined) return
  const cluster = await withCluster(t, { mode: 'jwt', signing: 'eddsa', servers: 3 })
  const { page, requests, errors } = await openDashboard(t, context, cluster.url)
  const issuer = page.locator('.pool-upstream[data-server="issuer-1"]')
  await issuer.waitFor()
  t.equal(await page.locator('.pool-upstream').count(), 1, 'one box for the one issuer')
  t.equal(await issuer.getAttribute('data-pool'), 'issuer')
  t.match(await issuer.textContent(), /pool issuer: \/login \/token\/ \/logout \/\.well-known\/jwks\.json/, 'with the paths the balancer routes to it')
  t.equal(await page.locator('.server').count(), 3, 'the app servers keep their own cards')
  await waitForText(page, '#store-title', 'JWKS')
  t.match(await page.textContent('#store-note'), 'no secret, nothing that signs', 'no JWT_SECRET box: the servers hold only public keys')
  t.match(await page.textContent('#lesson'), 'the issuer alone holds a private key')
  await page.waitForFunction("document.querySelectorAll('#wires line.wire-pool').length === 1", undefined, { timeout: 5000 }).catch(() => {})
  t.equal(await page.locator('#wires line.wire-pool').count(), 1, 'the balancer wired to the issuer')

  const jwksKids = async (): Promise<string[]> => ((await call(`${cluster.url}/.well-known/jwks.json`)).body.keys as Array<{ kid: string }>).map((k) => k.kid)
  const [first = ''] = await jwksKids()
  await page.selectOption('#user', 'bob')
  await page.click('#login')
  await waitForText(page, '#cred-summary', 'bob, issued by issuer-1')
  t.equal(await page.getAttribute('#cred-kid', 'data-kid'), first, 'the credential panel names the key that signed the token: the JWKS\'s')
  t.match(await page.textContent('#cred-parts'), 'Ed25519(header + "." + payload, the issuer\'s private key)')
  await page.locator(`.pool-upstream .kid.signed-yours[data-kid="${first}"]`).waitFor()
  t.pass('the issuer\'s box marks that key as the one that signed the page\'s token')
  t.ok(Number(await issuer.getAttribute('data-accepted')) >= 1, 'and counts the login it answered')
  t.match(await fetchOnce(page), /200 from app-\d: bob’s feed/, 'an app server accepts it')

  // A new key that signs at once: the next login's token names it, and the box follows.
  const rotation = await cluster.rotateIssuerKey({ activateInSeconds: 0 })
  // Signing from the next whole second (keys.ts), once the issuer has read it: its /health says.
  const issuerUrl = cluster.issuers[0]?.url ?? ''
  let signing = ''
  for (let i = 0; i < 50 && signing !== rotation.kid; i++) {
    signing = String((await call(`${issuerUrl}/health`)).body.signing)
    if (signing !== rotation.kid) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(signing, rotation.kid, 'the issuer signs with the new key')
  await page.click('#login')
  await page.locator(`#cred-kid[data-kid="${rotation.kid}"]`).waitFor()
  t.pass('after a rotation the panel names the new key')
  await page.locator(`.pool-upstream .kid.signed-yours[data-kid="${rotation.kid}"]`).waitFor()
  t.equal(await page.locator('.pool-upstream .kid').count(), 2, 'the box lists both published keys')
  t.equal(await page.locator(`.pool-upstream .kid.signed-yours[data-kid="${first}"]`).count(), 0, 'and marks only the one that signed the current token')

  await cluster.issuers[0]?.kill()
  await page.locator('.pool-upstream.is-down[data-server="issuer-1"]').waitFor({ timeout: 10_000 })
  t.pass('the issuer killed: its box shows it down')
  t.same(requests.filter((u) => !u.startsWith(`${cluster.url}/`)), [], 'the page asked nothing of any other origin')
  t.same(errors, [], 'no script error')
})
