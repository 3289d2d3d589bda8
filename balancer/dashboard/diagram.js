// The diagram: client, balancer, one card per server with its counts, the session store or the
// secret, and the wires between them. Redrawn from state.js whenever the balancer or the
// launcher says something changed.
/* global document, requestAnimationFrame */
import { controlButtons } from './cluster-control.js'
import { $, h } from './dom.js'
import { CLASSES, SYMBOL, noAnswers, since, total } from './answers.js'
import { hasIssuer } from './pools.js'
import { state } from './state.js'

const LESSONS = {
  memory: 'memory mode: each server keeps its sessions in its own memory. Only the server you logged in on knows you; the others refuse you (red).',
  redis: 'redis mode: every server reads the session from Redis: one network round trip per request. Stop Redis, and everyone is locked out (503).',
  postgres: 'postgres mode: every server reads the session from a PostgreSQL table: one UPDATE … RETURNING per request, which renews the idle timeout (a read that writes), so it costs more than Redis’s lookup. Stop PostgreSQL, and everyone is locked out (503); start it again, and every session is still there, where a Redis that keeps nothing on disk forgets them.',
  jwt: 'jwt mode: every server checks the token’s signature with the same JWT_SECRET. No lookup, no shared state, and no way to take a token back before it expires.',
  cookie: 'cookie mode: the whole session travels in the cookie, sealed with AES-256-GCM under a COOKIE_SECRET every server holds. No lookup, no shared state, and, unlike a JWT, nothing the client can read; like a JWT, no way to take it back before it expires.',
  sticky: 'sticky balancer: a cookie pins each client to one server, so memory sessions work… until that server goes away, and its users are logged out. The load follows the pins, not the servers.',
  jwtEddsa: 'jwt mode with JWT_SIGNING=eddsa: the issuer alone holds a private key and signs every token; the servers check signatures with its public keys (the JWKS) and hold nothing that signs. A broken-into server cannot mint a token. Access tokens live minutes and are renewed with a refresh token; a key is rotated by publishing a new one, with no restart.',
  jwtRevocation: 'jwt mode with a revocation list (JWT_REVOCATION=redis): logout works everywhere, because every server asks Redis on every request. State again: stop Redis, and no token can be checked (503).'
}

/** The mode pill's tooltip: where the session lives, in a few words. */
const MODE_TITLES = {
  memory: 'AUTH_MODE=memory: each server keeps its own sessions',
  redis: 'AUTH_MODE=redis: sessions in one Redis every server asks',
  postgres: 'AUTH_MODE=postgres: sessions as rows in one PostgreSQL table every server asks',
  jwt: 'AUTH_MODE=jwt: a signed token, readable by anyone, checked with JWT_SECRET',
  cookie: 'AUTH_MODE=cookie: the session sealed in the cookie with COOKIE_SECRET, readable by no client'
}

export function serverName (view) {
  if (view.servedBy) return view.servedBy
  const target = state.cluster?.targets.find((t) => t.url === view.url)
  if (target) return target.id
  return ':' + new URL(view.url).port
}

function targetFor (view) {
  return state.cluster?.targets.find((t) => t.url === view.url)
}

export function renderServers () {
  const row = $('servers')
  row.replaceChildren()
  const old = state.cards
  state.cards = new Map()
  for (const view of state.upstreams.values()) {
    // A card counts from where "Reset counts" left it (hello starts afresh when the balancer restarted).
    const base = old.get(view.url)?.base ?? noAnswers()
    const parts = {
      name: h('span', { class: 'name' }),
      state: h('span', { class: 'state' }),
      where: h('small'),
      accepted: h('span', { class: 'accepted', title: 'accepted (2xx)' }),
      refused: h('span', { class: 'refused', title: 'refused (401, 403)' }),
      unavailable: h('span', { class: 'unavailable', title: 'unavailable (503)' }),
      other: h('span', { class: 'other', title: 'other answers' }),
      last: h('span', { class: 'last' }),
      auth: h('small', { class: 'auth', title: 'the auth step on this server: see Time the auth step' }),
      actions: h('span', { class: 'actions' })
    }
    const el = h('div', { class: 'box server', 'data-url': view.url },
      parts.name, parts.state, parts.where,
      h('div', { class: 'counts' }, parts.accepted, parts.refused, parts.unavailable, parts.other),
      parts.last, parts.auth, parts.actions)
    row.append(el)
    state.cards.set(view.url, { el, base, parts, flashTimer: undefined })
    updateCard(view.url)
  }
  updateMode()
  requestAnimationFrame(drawWires)
}

export function updateCard (url) {
  const card = state.cards.get(url)
  const view = state.upstreams.get(url)
  if (!card || !view) return
  const { parts } = card
  const counts = since(view.answers, card.base)
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
  // Accepted and refused always; unavailable and other when there are any (the legend names all four).
  for (const name of CLASSES) {
    const shown = name === 'accepted' || name === 'refused' || counts[name] > 0
    parts[name].textContent = shown ? `${SYMBOL[name]} ${counts[name]}` : ''
    card.el.dataset[name] = String(counts[name])
  }
  parts.actions.replaceChildren(...(target ? controlButtons(target, refreshDiagram) : []))
}

function whereText (view) {
  const mode = view.mode ?? state.mode
  if (mode === 'memory') return 'sessions: its own memory'
  if (mode === 'redis') return view.store === 'down' ? 'sessions: Redis (unreachable!)' : 'sessions: in Redis'
  if (mode === 'postgres') return view.store === 'down' ? 'sessions: PostgreSQL (unreachable!)' : 'sessions: in PostgreSQL'
  if (mode === 'jwt') return view.store === 'down' ? 'revocation list unreachable!' : revocationList() ? 'signatures + revocation list' : hasIssuer() ? 'checks signatures (public keys)' : 'checks signatures'
  if (mode === 'cookie') return 'sessions: sealed in the cookie'
  return view.url
}

function currentMode () {
  if (state.cluster?.mode) return state.cluster.mode
  for (const view of state.upstreams.values()) if (view.mode) return view.mode
  return state.mode
}

export function updateMode () {
  const mode = currentMode()
  state.mode = mode
  $('mode').textContent = `mode: ${mode ?? '?'}`
  $('mode').title = mode === 'jwt' && hasIssuer() ? 'AUTH_MODE=jwt, JWT_SIGNING=eddsa: a token only the issuer can sign, checked with its public keys' : MODE_TITLES[mode] ?? 'the servers\' AUTH_MODE'
  $('strategy').textContent = state.strategy
  const lesson = mode === 'jwt' && hasIssuer() ? LESSONS.jwtEddsa : mode === 'jwt' && revocationList() ? LESSONS.jwtRevocation : state.strategy === 'sticky' && mode !== 'jwt' ? LESSONS.sticky : LESSONS[mode]
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
export function revocationList () {
  if (state.mode !== 'jwt') return false
  if (state.cluster?.targets.some((t) => t.kind === 'redis')) return true
  return [...state.upstreams.values()].some((v) => v.store === 'up' || v.store === 'down')
}

/** Whether every server asks one store on every request: redis and postgres modes, jwt with a revocation list. */
function sharedStore () {
  return state.mode === 'redis' || state.mode === 'postgres' || revocationList()
}

function updateStore () {
  const mode = state.mode
  const box = $('store')
  // The launcher's private store process, when it started one: postgres in postgres mode, else redis.
  const storeTarget = state.cluster?.targets.find((t) => t.kind === (mode === 'postgres' ? 'postgres' : 'redis'))
  box.classList.remove('store-none', 'store-up', 'store-down')
  $('store-actions').replaceChildren()
  if (sharedStore()) {
    const views = [...state.upstreams.values()]
    const down = views.filter((v) => v.store === 'down').length
    const stopped = storeTarget !== undefined && !storeTarget.running
    const what = mode === 'jwt' ? 'the revocation list' : 'a session'
    $('store-title').textContent = mode === 'postgres' ? 'PostgreSQL' : mode === 'redis' ? 'Redis' : 'Redis: revoked tokens'
    $('store-note').textContent = stopped
      ? `stopped: no server can read ${what}`
      : down > 0 ? `${down} of ${views.length} servers cannot reach it` : mode === 'jwt' ? 'JWT_REVOCATION=redis: every server checks it on every request' : 'every server reads every session here'
    box.classList.add(stopped || down > 0 ? 'store-down' : 'store-up')
    if (storeTarget) $('store-actions').replaceChildren(...controlButtons(storeTarget, refreshDiagram))
  } else if (mode === 'jwt' && hasIssuer()) {
    $('store-title').textContent = 'JWKS: the issuer\'s public keys'
    $('store-note').textContent = 'each server fetches them and checks signatures with them: no secret, nothing that signs'
    box.classList.add('store-none')
  } else if (mode === 'jwt') {
    $('store-title').textContent = 'JWT_SECRET'
    $('store-note').textContent = 'the same secret on every server: no store, no lookup'
    box.classList.add('store-none')
  } else if (mode === 'cookie') {
    $('store-title').textContent = 'COOKIE_SECRET'
    $('store-note').textContent = 'no store: only a key every server holds, to seal each session into its cookie and open it again'
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

export function updatePin () {
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

export function centre (el, stage, edge) {
  const r = el.getBoundingClientRect()
  const s = stage.getBoundingClientRect()
  const y = edge === 'top' ? r.top : edge === 'bottom' ? r.bottom : r.top + r.height / 2
  const x = edge === 'left' ? r.left : edge === 'right' ? r.right : r.left + r.width / 2
  return { x: x - s.left, y: y - s.top }
}

export function drawWires () {
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
    if (sharedStore()) line(centre(card.el, stage, 'bottom'), centre($('store'), stage, 'top'), 'wire-store')
    else if (state.mode === 'jwt' || state.mode === 'cookie') line(centre(card.el, stage, 'bottom'), centre($('store'), stage, 'top'), 'wire-secret')
  }
  // The balancer's other pools (the issuer): the paths ROUTES sends them.
  for (const box of document.querySelectorAll('#pools .pool-upstream')) line(centre(balancer, stage, 'bottom'), centre(box, stage, 'top'), 'wire-pool')
  svg.replaceChildren(...lines)
}

/** The balancer's own answers (a 503 with no server up, a 413), on its box when there are any. */
export function updateBalancerCounts () {
  const own = since(state.ownAnswers, state.ownBase)
  const box = $('balancer-own')
  box.textContent = total(own) === 0
    ? ''
    : 'its own answers: ' + CLASSES.filter((name) => own[name] > 0).map((name) => `${SYMBOL[name]} ${own[name]} ${name}`).join(' · ')
  for (const name of CLASSES) box.dataset[name] = String(own[name])
}

/** Every card and the mode again, after the launcher stopped or started something. */
export function refreshDiagram () {
  for (const url of state.cards.keys()) updateCard(url)
  updateMode()
}
