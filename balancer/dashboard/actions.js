// The "Try it" buttons: real requests through the balancer, like any other client's, so they
// show up in the event stream too; and the token changed by hand, to see who refuses it.
/* global crypto, fetch, TextEncoder */
import { renderCredential } from './credential.js'
import { updateMode, updatePin } from './diagram.js'
import { $, sleep } from './dom.js'
import { decodeJwt, toBase64url } from './jwt.js'
import { flipCiphertextBit, sealedParts } from './sealed.js'
import { CLASSES, SYMBOL, classOf, describeCounts, total } from './answers.js'
import { refreshJwks } from './pools.js'
import { state } from './state.js'
import { showAuthTiming, timeAuthStep } from './auth-timing.js'

const PASSWORDS = { alice: 'wonderland', bob: 'builder', carol: 'lighthouse' }

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
  // Counted as the balancer counts it on the server's card: by class of status, every request.
  state.tally[classOf(res.status)]++
  renderTally()
  return { status: res.status, servedBy: res.headers.get('x-served-by'), data }
}

/** The panel's count of this page's answers, in the words of the cards' legend. */
export function renderTally () {
  const el = $('tally')
  el.textContent = `This page's answers, to every request it sent: ${describeCounts(state.tally)}`
  for (const name of CLASSES) el.dataset[name] = String(state.tally[name])
  el.dataset.total = String(total(state.tally))
}

function say (text, outcome) {
  const answer = $('answer')
  answer.textContent = text
  answer.className = `answer ${outcome ?? ''}`
}

function describe (answer) {
  const kind = classOf(answer.status)
  const from = answer.servedBy ? ` from ${answer.servedBy}` : ' from the balancer'
  if (kind === 'accepted') {
    const feeds = answer.data.feeds
    return [`${SYMBOL.accepted} ${answer.status}${from}` + (feeds ? `: ${answer.data.user}’s feed, ${feeds.length} posts` : ''), kind]
  }
  return [`${SYMBOL[kind]} ${answer.status}${from}: ${answer.data.reason ?? answer.data.error ?? ''}`, kind]
}

export async function busy (work) {
  if (state.busy) return
  state.busy = true
  for (const id of ['login', 'fetch1', 'fetch20', 'logout', 'time-auth', 'tamper', 'forge', 'restore']) $(id).disabled = true
  try {
    await work()
  } catch (err) {
    say(`⚠ ${err.message}`, 'notice')
  } finally {
    state.busy = false
    for (const id of ['login', 'fetch1', 'fetch20', 'logout', 'time-auth', 'tamper', 'restore']) $(id).disabled = false
    updateMode()
  }
}

export async function login () {
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
  say(`${SYMBOL.accepted} 200: ${username} logged in on ${answer.servedBy}`, 'accepted')
  renderCredential()
  // The issuer's keys now, so its box can mark the one that signed this token (a rotation may have added it).
  await refreshJwks()
}

// Each answer is counted in the panel's tally (call), with every other answer this page got: the
// same count as the cards', so there is no second, fetches-only count to disagree with them.
export async function fetchFeed (times) {
  let last
  for (let i = 0; i < times; i++) {
    last = await call('GET', '/feeds')
    if (times === 1) say(...describe(last))
    else say(`${i + 1} of ${times}: ${describe(last)[0]}`, classOf(last.status))
    // Slow enough to watch each request reach its server.
    if (times > 1) await sleep(120)
  }
  if (times > 1) say(`${times} fetches sent; the last: ${describe(last)[0]}. Counts below and on each server.`, classOf(last.status))
}

export async function timeAuth () {
  say('Timing the auth step: 400 requests, 12 at a time…', 'notice')
  const result = await timeAuthStep((done, total) => say(`Timing the auth step: ${done} of ${total}…`, 'notice'))
  showAuthTiming(result)
  say(result.medianMs === null ? 'No answer said how long its auth step took.' : 'Timed: the median is below, and each server\'s on its card.', result.medianMs === null ? 'notice' : 'accepted')
}

export async function logout () {
  const answer = await call('POST', '/logout')
  if (state.credential) state.credential.loggedOut = true
  const kept = state.credential ? ' This page keeps the old token: fetch again and see who still accepts it.' : ''
  say(`${SYMBOL[classOf(answer.status)]} ${answer.status}: logged out on ${answer.servedBy ?? 'the balancer'}.${kept}`, classOf(answer.status))
  renderCredential()
}

export function tamper () {
  const cred = state.credential
  if (!cred) {
    say('Log in first: there is no token to tamper with.', 'notice')
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
  } else if (cred.mode === 'cookie' && sealedParts(cred.real)) {
    // One bit of the first ciphertext byte: one byte changed, which the tag catches.
    const flip = flipCiphertextBit(cred.real)
    cred.token = flip.value
    cred.altered = { kind: 'tampered', what: `one bit of the first ciphertext byte (${flip.from} → ${flip.to})`, at: flip.at }
  } else {
    const from = cred.real[0]
    const to = from === 'A' ? 'B' : 'A'
    cred.token = to + cred.real.slice(1)
    cred.altered = { kind: 'tampered', what: `the session id’s first character ${from} → ${to}`, at: 0 }
  }
  say('Tampered: the next fetch sends the changed token.', 'notice')
  renderCredential()
}

export async function forge () {
  const cred = state.credential
  const claims = cred && decodeJwt(cred.real)
    ? JSON.parse(decodeJwt(cred.real).payloadText)
    : { sub: $('user').value, iss: 'auth-cluster', aud: 'auth-cluster-api', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 }
  if (!crypto.subtle) {
    say('This browser offers no WebCrypto here: open the page on 127.0.0.1 or localhost.', 'notice')
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
  say('Forged: the same claims, signed with a random secret. Fetch to see what the servers say.', 'notice')
  renderCredential()
}

export function restore () {
  if (!state.credential) return
  state.credential.token = state.credential.real
  state.credential.altered = null
  say('Back to the token the server issued.', '')
  renderCredential()
}
