// The live dashboard: plain browser JavaScript, no build step, no dependencies,
// nothing loaded from another origin. It listens to the balancer's event
// stream (/_balancer/events) and sends its own requests through the balancer
// like any other client, so they show up in the stream too.
/* global document, window, EventSource, fetch, crypto, TextEncoder, TextDecoder, ResizeObserver, requestAnimationFrame, atob, btoa */
'use strict'

const PASSWORDS = { alice: 'wonderland', bob: 'builder', carol: 'lighthouse' }
const MAX_LOG_ROWS = 12
const MAX_DOTS_IN_FLIGHT = 40
const LESSONS = {
  memory: 'memory mode: each server keeps its sessions in its own memory. Only the server you logged in on knows you; the others refuse you (red).',
  redis: 'redis mode: every server reads the session from Redis: one network round trip per request. Stop Redis, and everyone is locked out (503).',
  jwt: 'jwt mode: every server checks the token’s signature with the same JWT_SECRET. No lookup, no shared state, and no way to take a token back before it expires.',
  sticky: 'sticky balancer: a cookie pins each client to one server, so memory sessions work… until that server goes away, and its users are logged out. The load follows the pins, not the servers.',
  jwtRevocation: 'jwt mode with a revocation list (JWT_REVOCATION=redis): logout works everywhere, because every server asks Redis on every request. State again: stop Redis, and no token can be checked (503).'
}
const SYMBOL = { ok: '✔', refused: '✘', failed: '⚠' }

const $ = (id) => document.getElementById(id)

const state = {
  strategy: '?',
  stickyCookie: 'lb',
  mode: null,
  /** url -> the balancer's view of the upstream */
  upstreams: new Map(),
  /** url -> { el, counts, parts } */
  cards: new Map(),
  /** what the launcher says (null when the balancer runs without one) */
  cluster: null,
  control: { enabled: false, reason: '' },
  seen: 0,
  credential: null,
  busy: false
}

// ---- small DOM helpers (text only: paths and names come from the network) ----

function h (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value
    else if (key === 'text') node.textContent = value
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else node.setAttribute(key, value)
  }
  for (const child of children) if (child != null) node.append(child)
  return node
}

function outcomeOf (status) {
  if (status >= 500) return 'failed'
  if (status >= 400) return 'refused'
  return 'ok'
}

function clock (t) {
  return new Date(t).toTimeString().slice(0, 8)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- base64url and JWTs ----

function fromBase64url (text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4)
  const binary = atob(base64)
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)))
}

function toBase64url (bytes) {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function decodeJwt (token) {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  try {
    return { parts, header: JSON.parse(fromBase64url(parts[0])), payloadText: fromBase64url(parts[1]) }
  } catch {
    return null
  }
}

// ---- the diagram ----

function serverName (view) {
  if (view.servedBy) return view.servedBy
  const target = state.cluster?.targets.find((t) => t.url === view.url)
  if (target) return target.id
  return ':' + new URL(view.url).port
}

function targetFor (view) {
  return state.cluster?.targets.find((t) => t.url === view.url)
}

function renderServers () {
  const row = $('servers')
  row.replaceChildren()
  const old = state.cards
  state.cards = new Map()
  for (const view of state.upstreams.values()) {
    const counts = old.get(view.url)?.counts ?? { ok: 0, refused: 0, failed: 0 }
    const parts = {
      name: h('span', { class: 'name' }),
      state: h('span', { class: 'state' }),
      where: h('small'),
      ok: h('span', { class: 'ok', title: 'accepted' }),
      refused: h('span', { class: 'refused', title: 'refused (4xx)' }),
      failed: h('span', { class: 'failed', title: 'failed (5xx)' }),
      last: h('span', { class: 'last' }),
      actions: h('span', { class: 'actions' })
    }
    const el = h('div', { class: 'box server', 'data-url': view.url },
      parts.name, parts.state, parts.where,
      h('div', { class: 'counts' }, parts.ok, parts.refused, parts.failed),
      parts.last, parts.actions)
    row.append(el)
    state.cards.set(view.url, { el, counts, parts, flashTimer: undefined })
    updateCard(view.url)
  }
  updateMode()
  requestAnimationFrame(drawWires)
}

function updateCard (url) {
  const card = state.cards.get(url)
  const view = state.upstreams.get(url)
  if (!card || !view) return
  const { parts, counts } = card
  const name = serverName(view)
  card.el.dataset.server = name
  parts.name.textContent = name
  const target = targetFor(view)
  const stopped = target ? !target.running : false
  const down = !view.healthy || stopped
  parts.state.textContent = stopped ? '■ stopped' : view.healthy ? '● up' : '✘ down'
  parts.state.className = 'state ' + (down ? 'down' : 'up')
  card.el.classList.toggle('is-down', down)
  parts.where.textContent = whereText(view)
  parts.ok.textContent = `${SYMBOL.ok} ${counts.ok}`
  parts.refused.textContent = `${SYMBOL.refused} ${counts.refused}`
  parts.failed.textContent = counts.failed > 0 ? `${SYMBOL.failed} ${counts.failed}` : ''
  card.el.dataset.ok = String(counts.ok)
  card.el.dataset.refused = String(counts.refused)
  card.el.dataset.failed = String(counts.failed)
  parts.actions.replaceChildren(...(target ? controlButtons(target) : []))
}

function whereText (view) {
  const mode = view.mode ?? state.mode
  if (mode === 'memory') return 'sessions: its own memory'
  if (mode === 'redis') return view.store === 'down' ? 'sessions: Redis (unreachable!)' : 'sessions: in Redis'
  if (mode === 'jwt') return view.store === 'down' ? 'revocation list unreachable!' : revocationList() ? 'signatures + revocation list' : 'checks signatures'
  return view.url
}

function currentMode () {
  if (state.cluster?.mode) return state.cluster.mode
  for (const view of state.upstreams.values()) if (view.mode) return view.mode
  return state.mode
}

function updateMode () {
  const mode = currentMode()
  state.mode = mode
  $('mode').textContent = `mode: ${mode ?? '?'}`
  $('strategy').textContent = state.strategy
  const lesson = mode === 'jwt' && revocationList() ? LESSONS.jwtRevocation : state.strategy === 'sticky' && mode !== 'jwt' ? LESSONS.sticky : LESSONS[mode]
  $('lesson').textContent = lesson ?? 'Waiting for the servers to say which mode they run in…'
  const pins = state.strategy === 'sticky'
  $('balancer-note').textContent = pins
    ? `sticky: a cookie (${state.stickyCookie}=…) pins each client to one server`
    : 'round robin: each request to the next server'
  $('forge').disabled = state.busy || mode !== 'jwt'
  $('forge').title = mode === 'jwt' ? 'sign the same claims with a secret the servers do not have' : 'only for jwt mode'
  updateStore()
  updatePin()
}

/** jwt mode with JWT_REVOCATION=redis: the servers report a store, and the launcher a Redis. */
function revocationList () {
  if (state.mode !== 'jwt') return false
  if (state.cluster?.targets.some((t) => t.kind === 'redis')) return true
  return [...state.upstreams.values()].some((v) => v.store === 'up' || v.store === 'down')
}

function updateStore () {
  const mode = state.mode
  const box = $('store')
  const redisTarget = state.cluster?.targets.find((t) => t.kind === 'redis')
  box.classList.remove('store-none', 'store-up', 'store-down')
  $('store-actions').replaceChildren()
  if (mode === 'redis' || revocationList()) {
    const views = [...state.upstreams.values()]
    const down = views.filter((v) => v.store === 'down').length
    const stopped = redisTarget !== undefined && !redisTarget.running
    const what = mode === 'redis' ? 'a session' : 'the revocation list'
    $('store-title').textContent = mode === 'redis' ? 'Redis' : 'Redis: revoked tokens'
    $('store-note').textContent = stopped
      ? `stopped: no server can read ${what}`
      : down > 0 ? `${down} of ${views.length} servers cannot reach it` : mode === 'redis' ? 'every server reads every session here' : 'JWT_REVOCATION=redis: every server checks it on every request'
    box.classList.add(stopped || down > 0 ? 'store-down' : 'store-up')
    if (redisTarget) $('store-actions').replaceChildren(...controlButtons(redisTarget))
  } else if (mode === 'jwt') {
    $('store-title').textContent = 'JWT_SECRET'
    $('store-note').textContent = 'the same secret on every server: no store, no lookup'
    box.classList.add('store-none')
  } else if (mode === 'memory') {
    $('store-title').textContent = 'no shared store'
    $('store-note').textContent = 'each server keeps its own Map of sessions'
    box.classList.add('store-none')
  } else {
    $('store-title').textContent = '?'
    $('store-note').textContent = ''
  }
  requestAnimationFrame(drawWires)
}

function updatePin () {
  const match = new RegExp(`(?:^|;\\s*)${state.stickyCookie}=([^;]*)`).exec(document.cookie)
  const pin = state.strategy === 'sticky' && match ? match[1] : null
  let pinnedName = null
  for (const [url, card] of state.cards) {
    const view = state.upstreams.get(url)
    const pinned = pin !== null && view?.pin === pin
    card.el.classList.toggle('is-pinned', pinned)
    if (pinned) pinnedName = serverName(view)
  }
  $('client-note').textContent = pinnedName ? `you · pinned to ${pinnedName}` : 'you'
}

function centre (el, stage, edge) {
  const r = el.getBoundingClientRect()
  const s = stage.getBoundingClientRect()
  const y = edge === 'top' ? r.top : edge === 'bottom' ? r.bottom : r.top + r.height / 2
  const x = edge === 'left' ? r.left : edge === 'right' ? r.right : r.left + r.width / 2
  return { x: x - s.left, y: y - s.top }
}

function drawWires () {
  const stage = $('stage')
  const svg = $('wires')
  const lines = []
  const line = (a, b, cls) => {
    const l = document.createElementNS('http://www.w3.org/2000/svg', 'line')
    l.setAttribute('x1', a.x)
    l.setAttribute('y1', a.y)
    l.setAttribute('x2', b.x)
    l.setAttribute('y2', b.y)
    if (cls) l.setAttribute('class', cls)
    lines.push(l)
  }
  const balancer = $('balancer')
  line(centre($('client'), stage, 'right'), centre(balancer, stage, 'left'))
  for (const card of state.cards.values()) {
    line(centre(balancer, stage, 'bottom'), centre(card.el, stage, 'top'))
    if (state.mode === 'redis' || revocationList()) line(centre(card.el, stage, 'bottom'), centre($('store'), stage, 'top'), 'wire-store')
    else if (state.mode === 'jwt') line(centre(card.el, stage, 'bottom'), centre($('store'), stage, 'top'), 'wire-secret')
  }
  svg.replaceChildren(...lines)
}

// ---- live traffic ----

let dotsInFlight = 0

function showRequest (event) {
  state.seen++
  const outcome = outcomeOf(event.status)
  const card = cardFor(event)
  if (card) {
    card.counts[outcome]++
    const reason = event.reason ?? (event.status === 204 ? 'done' : 'accepted')
    card.parts.last.textContent = `last: ${event.status} ${reason}`
    updateCard(card.el.dataset.url)
    animate(card.el, outcome, card)
  } else {
    flash($('balancer'), outcome, state)
  }
  addLogRow(event, outcome)
  $('log-total').textContent = `(${state.seen} since this page opened)`
}

function cardFor (event) {
  if (event.upstream && state.cards.has(event.upstream)) return state.cards.get(event.upstream)
  for (const card of state.cards.values()) if (card.el.dataset.server === event.servedBy) return card
  return null
}

function animate (target, outcome, holder) {
  if (dotsInFlight >= MAX_DOTS_IN_FLIGHT || window.matchMedia('(prefers-reduced-motion: reduce)').matches) {
    flash(target, outcome, holder)
    return
  }
  const stage = $('stage')
  const from = centre($('balancer'), stage, 'bottom')
  const to = centre(target, stage, 'top')
  const dot = h('div', { class: `dot ${outcome}` })
  $('dots').append(dot)
  dotsInFlight++
  const motion = dot.animate([
    { transform: `translate(${from.x}px, ${from.y}px)` },
    { transform: `translate(${to.x}px, ${to.y}px)` }
  ], { duration: 420, easing: 'ease-in' })
  motion.onfinish = () => {
    dot.remove()
    dotsInFlight--
    flash(target, outcome, holder)
  }
}

function flash (el, outcome, holder) {
  el.classList.remove('flash-ok', 'flash-refused', 'flash-failed')
  el.classList.add(`flash-${outcome}`)
  clearTimeout(holder.flashTimer)
  holder.flashTimer = setTimeout(() => el.classList.remove(`flash-${outcome}`), 450)
}

function addLogRow (event, outcome) {
  const rows = $('log-rows')
  const answer = `${SYMBOL[outcome]} ${event.status} ${event.reason ?? (outcome === 'ok' ? 'accepted' : '')}`
  rows.prepend(h('tr', { class: outcome },
    h('td', { text: String(state.seen) }),
    h('td', { text: clock(event.t) }),
    h('td', { class: 'request', text: `${event.method} ${event.path}` }),
    h('td', { text: event.servedBy ?? 'balancer' }),
    h('td', { class: 'answer', text: answer.trim() }),
    h('td', { text: event.ms.toFixed(1) })))
  while (rows.children.length > MAX_LOG_ROWS) rows.lastElementChild.remove()
}

function addOmitted (omitted) {
  for (const [servedBy, tally] of Object.entries(omitted)) {
    const card = cardFor({ upstream: null, servedBy })
    if (!card) continue
    for (const key of ['ok', 'refused', 'failed']) card.counts[key] += tally[key]
    updateCard(card.el.dataset.url)
  }
}

// ---- the event stream ----

function connect () {
  const source = new EventSource('events')
  const live = $('live')
  source.onopen = () => {
    live.textContent = '● live'
    live.className = 'pill pill-live'
  }
  source.onerror = () => {
    live.textContent = 'reconnecting…'
    live.className = 'pill pill-wait'
  }
  source.addEventListener('hello', (e) => {
    const hello = JSON.parse(e.data)
    const sameUpstreams = hello.upstreams.length === state.upstreams.size && hello.upstreams.every((u) => state.upstreams.has(u.url))
    state.strategy = hello.strategy
    state.stickyCookie = hello.stickyCookie ?? 'lb'
    state.control = hello.control
    state.cluster = null
    state.upstreams = new Map(hello.upstreams.map((u) => [u.url, u]))
    // A new cluster behind the same URL (npm run demo moves from mode to mode): start counting again.
    if (!sameUpstreams) state.cards = new Map()
    $('control-note').textContent = hello.control.enabled ? '' : hello.control.reason
    renderServers()
  })
  source.addEventListener('upstream', (e) => {
    const view = JSON.parse(e.data)
    if (!state.upstreams.has(view.url)) return
    state.upstreams.set(view.url, view)
    updateCard(view.url)
    updateMode()
  })
  source.addEventListener('upstreams', (e) => {
    state.upstreams = new Map(JSON.parse(e.data).map((u) => [u.url, u]))
    renderServers()
  })
  source.addEventListener('cluster', (e) => {
    state.cluster = JSON.parse(e.data)
    for (const url of state.cards.keys()) updateCard(url)
    updateMode()
  })
  source.addEventListener('requests', (e) => {
    const batch = JSON.parse(e.data)
    for (const event of batch.requests) showRequest(event)
    if (batch.omitted) addOmitted(batch.omitted)
  })
}

// ---- stop and start (through the launcher) ----

function controlButtons (target) {
  if (!state.control.enabled) return []
  const stop = h('button', { type: 'button', 'data-action': 'stop', 'data-target': target.id, text: 'Stop', onclick: () => control('stop', target.id) })
  const start = h('button', { type: 'button', 'data-action': 'start', 'data-target': target.id, text: 'Start', onclick: () => control('start', target.id) })
  stop.disabled = !target.running
  start.disabled = target.running
  return [stop, start]
}

async function control (action, target) {
  const note = $('control-note')
  note.textContent = `${action === 'stop' ? 'Stopping' : 'Starting'} ${target}…`
  for (const button of document.querySelectorAll('.actions button')) button.disabled = true
  try {
    const res = await fetch('control', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action, target })
    })
    const body = await res.json()
    if (res.ok) {
      state.cluster = body.cluster
      note.textContent = `${target} ${action === 'stop' ? 'stopped' : 'started'}.` + (action === 'stop' && target !== 'redis' ? ' The balancer routes around it once it notices.' : '')
    } else {
      note.textContent = `Could not ${action} ${target}: ${body.message ?? body.error}`
    }
  } catch (err) {
    note.textContent = `Could not ${action} ${target}: ${err.message}`
  }
  for (const url of state.cards.keys()) updateCard(url)
  updateMode()
}

// ---- the buttons: real requests through the balancer ----

async function call (method, path, body) {
  const headers = {}
  const token = state.credential?.token
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' })
  const text = await res.text()
  let data = {}
  try {
    data = text ? JSON.parse(text) : {}
  } catch {
    data = { error: text.slice(0, 80) }
  }
  updatePin()
  return { status: res.status, servedBy: res.headers.get('x-served-by'), data }
}

function say (text, outcome) {
  const answer = $('answer')
  answer.textContent = text
  answer.className = `answer ${outcome ?? ''}`
}

function describe (answer) {
  const outcome = outcomeOf(answer.status)
  const from = answer.servedBy ? ` from ${answer.servedBy}` : ' from the balancer'
  if (outcome === 'ok') {
    const feeds = answer.data.feeds
    return [`${SYMBOL.ok} ${answer.status}${from}` + (feeds ? `: ${answer.data.user}’s feed, ${feeds.length} posts` : ''), outcome]
  }
  return [`${SYMBOL[outcome]} ${answer.status}${from}: ${answer.data.reason ?? answer.data.error ?? ''}`, outcome]
}

async function busy (work) {
  if (state.busy) return
  state.busy = true
  for (const id of ['login', 'fetch1', 'fetch20', 'logout', 'tamper', 'forge', 'restore']) $(id).disabled = true
  try {
    await work()
  } catch (err) {
    say(`${SYMBOL.failed} ${err.message}`, 'failed')
  } finally {
    state.busy = false
    for (const id of ['login', 'fetch1', 'fetch20', 'logout', 'tamper', 'restore']) $(id).disabled = false
    updateMode()
  }
}

async function login () {
  const username = $('user').value
  const saved = state.credential
  state.credential = null // log in with no credential attached
  const answer = await call('POST', '/login', { username, password: PASSWORDS[username] })
  if (answer.status !== 200) {
    state.credential = saved
    say(...describe(answer))
    return
  }
  if (answer.data.mode && !state.mode) state.mode = answer.data.mode
  state.credential = {
    token: answer.data.token,
    real: answer.data.token,
    user: username,
    issuedBy: answer.servedBy,
    mode: answer.data.mode,
    loggedOut: false,
    altered: null
  }
  say(`${SYMBOL.ok} 200: ${username} logged in on ${answer.servedBy}`, 'ok')
  renderCredential()
}

async function fetchFeed (times) {
  const tally = { ok: 0, refused: 0, failed: 0 }
  for (let i = 0; i < times; i++) {
    const answer = await call('GET', '/feeds')
    tally[outcomeOf(answer.status)]++
    if (times === 1) say(...describe(answer))
    else say(`${i + 1} of ${times}: ${describe(answer)[0]}`, outcomeOf(answer.status))
    // Slow enough to watch each request reach its server.
    if (times > 1) await sleep(120)
  }
  if (times > 1) {
    const parts = [`${tally.ok} accepted`, `${tally.refused} refused`]
    if (tally.failed > 0) parts.push(`${tally.failed} failed`)
    say(`${times} fetches: ${parts.join(', ')}`, tally.ok === times ? 'ok' : tally.ok === 0 ? 'refused' : '')
  }
}

async function logout () {
  const answer = await call('POST', '/logout')
  if (state.credential) state.credential.loggedOut = true
  const kept = state.credential ? ' This page keeps the old token: fetch again and see who still accepts it.' : ''
  say(`${SYMBOL[outcomeOf(answer.status)]} ${answer.status}: logged out on ${answer.servedBy ?? 'the balancer'}.${kept}`, outcomeOf(answer.status))
  renderCredential()
}

function tamper () {
  const cred = state.credential
  if (!cred) {
    say('Log in first: there is no token to tamper with.', 'failed')
    return
  }
  const jwt = decodeJwt(cred.real)
  if (jwt) {
    // One character of the payload: the first digit of exp, the expiry pushed years ahead.
    const text = jwt.payloadText
    const at = text.search(/"exp":\d/) + '"exp":'.length
    const from = text[at]
    const to = from === '9' ? '8' : String(Number(from) + 1)
    const edited = text.slice(0, at) + to + text.slice(at + 1)
    cred.token = `${jwt.parts[0]}.${toBase64url(new TextEncoder().encode(edited))}.${jwt.parts[2]}`
    cred.altered = { kind: 'tampered', what: `exp: its first digit ${from} → ${to}, the expiry pushed years ahead`, at }
  } else {
    const from = cred.real[0]
    const to = from === 'A' ? 'B' : 'A'
    cred.token = to + cred.real.slice(1)
    cred.altered = { kind: 'tampered', what: `the session id’s first character ${from} → ${to}`, at: 0 }
  }
  say('Tampered: the next fetch sends the changed token.', 'failed')
  renderCredential()
}

async function forge () {
  const cred = state.credential
  const claims = cred && decodeJwt(cred.real)
    ? JSON.parse(decodeJwt(cred.real).payloadText)
    : { sub: $('user').value, iss: 'auth-cluster', aud: 'auth-cluster-api', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 }
  if (!crypto.subtle) {
    say('This browser offers no WebCrypto here: open the page on 127.0.0.1 or localhost.', 'failed')
    return
  }
  const enc = new TextEncoder()
  const input = `${toBase64url(enc.encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' })))}.${toBase64url(enc.encode(JSON.stringify(claims)))}`
  const key = await crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  const signature = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(input)))
  const token = `${input}.${toBase64url(signature)}`
  state.credential = cred
    ? { ...cred, token, altered: { kind: 'forged' } }
    : { token, real: token, user: claims.sub, issuedBy: 'this page', mode: 'jwt', loggedOut: false, altered: { kind: 'forged' } }
  say('Forged: the same claims, signed with a random secret. Fetch to see what the servers say.', 'failed')
  renderCredential()
}

function restore () {
  if (!state.credential) return
  state.credential.token = state.credential.real
  state.credential.altered = null
  say('Back to the token the server issued.', '')
  renderCredential()
}

// ---- the credential panel ----

function renderCredential () {
  const cred = state.credential
  const summary = $('cred-summary')
  const tokenLine = $('cred-token')
  const parts = $('cred-parts')
  tokenLine.replaceChildren()
  parts.replaceChildren()
  if (!cred) {
    summary.textContent = 'None yet: log in.'
    return
  }
  const flags = []
  if (cred.loggedOut) flags.push('logged out')
  if (cred.altered?.kind === 'tampered') flags.push('TAMPERED')
  if (cred.altered?.kind === 'forged') flags.push('FORGED')
  summary.textContent = `${cred.user}, issued by ${cred.issuedBy}${flags.length ? ' · ' + flags.join(' · ') : ''}`
  const add = (term, ...detail) => parts.append(h('dt', { text: term }), h('dd', {}, ...detail))
  const jwt = decodeJwt(cred.token)
  if (jwt) {
    const [header, payload, signature] = jwt.parts
    tokenLine.append(h('span', { class: 't-header', text: header }), '.', h('span', { class: 't-payload', text: payload }), '.', h('span', { class: 't-signature', text: signature }))
    add('Header (base64url → JSON)', h('pre', { text: JSON.stringify(jwt.header) }))
    const payloadPre = h('pre')
    if (cred.altered?.kind === 'tampered') {
      const at = cred.altered.at
      payloadPre.append(jwt.payloadText.slice(0, at), h('span', { class: 'changed', text: jwt.payloadText[at] }), jwt.payloadText.slice(at + 1))
    } else {
      payloadPre.textContent = jwt.payloadText
    }
    let expiry = null
    try {
      const claims = JSON.parse(jwt.payloadText)
      if (typeof claims.exp === 'number') expiry = h('small', { class: 'note', 'data-exp': String(claims.exp), text: expiryText(claims.exp) })
    } catch {}
    add('Payload (base64url → JSON): anyone can read it', payloadPre, expiry)
    add('Signature', h('pre', { text: 'HMAC-SHA256(header + "." + payload, JWT_SECRET)' }))
    let note = 'Base64url is an encoding, not encryption: whoever holds the token reads the header and the payload. The signature proves the token was made with the secret and not changed since; it hides nothing. This page cannot check it: only the servers hold JWT_SECRET.'
    if (cred.altered?.kind === 'tampered') note = `You changed one character of the payload (${cred.altered.what}) and kept the old signature. It no longer matches: every server will refuse it.`
    if (cred.altered?.kind === 'forged') note = 'Signed with a random secret: a real HMAC, but not with JWT_SECRET. Every server will refuse it.'
    if (cred.loggedOut && !cred.altered) {
      note = revocationList()
        ? 'You logged out: the token’s id (jti) is now on the revocation list in Redis, which every server checks on every request. Fetch and see.'
        : 'You logged out: the server cleared the cookie, but it keeps no record of this token, so it still works until exp. Fetch and see.'
    }
    parts.append(h('p', { class: 'note', text: note }))
  } else {
    tokenLine.append(h('span', { class: 't-payload', text: cred.token }))
    const where = cred.mode === 'redis'
      ? 'in Redis, which every server asks on every request'
      : `only in ${cred.issuedBy}’s memory: no other server has heard of it`
    add('Session id', h('p', { class: 'note', text: `A random 256-bit reference. It says nothing by itself: the session it names lives ${where}.` }))
    if (cred.altered) parts.append(h('p', { class: 'note', text: `You changed ${cred.altered.what}: no server has a session by that name.` }))
    if (cred.loggedOut && !cred.altered) parts.append(h('p', { class: 'note', text: 'You logged out: only the server that took the logout deleted its copy. Fetch and see.' }))
  }
}

function expiryText (exp) {
  const seconds = Math.round(exp - Date.now() / 1000)
  const at = new Date(exp * 1000)
  const when = Number.isNaN(at.getTime()) ? String(exp) : `${at.toLocaleDateString()} ${at.toTimeString().slice(0, 8)}`
  if (seconds <= 0) return `exp ${when}: expired`
  if (seconds > 86_400 * 365) return `exp ${when}: in ${Math.round(seconds / (86_400 * 365))} years`
  return `exp ${when}: in ${seconds >= 120 ? Math.round(seconds / 60) + ' min' : seconds + ' s'}`
}

function tickExpiry () {
  for (const el of document.querySelectorAll('[data-exp]')) el.textContent = expiryText(Number(el.dataset.exp))
}

// ---- start ----

function resetCounts () {
  for (const card of state.cards.values()) card.counts = { ok: 0, refused: 0, failed: 0 }
  state.seen = 0
  $('log-rows').replaceChildren()
  $('log-total').textContent = ''
  for (const url of state.cards.keys()) updateCard(url)
}

$('login').addEventListener('click', () => busy(login))
$('fetch1').addEventListener('click', () => busy(() => fetchFeed(1)))
$('fetch20').addEventListener('click', () => busy(() => fetchFeed(20)))
$('logout').addEventListener('click', () => busy(logout))
$('tamper').addEventListener('click', () => tamper())
$('forge').addEventListener('click', () => busy(forge))
$('restore').addEventListener('click', () => restore())
$('reset').addEventListener('click', () => resetCounts())
new ResizeObserver(() => drawWires()).observe($('stage'))
setInterval(tickExpiry, 1000)
connect()
