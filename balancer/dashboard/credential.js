// The credential panel: the token this page holds, taken apart. A JWT's header and payload are
// only base64url (anyone can read them); a sealed cookie is bytes nobody but the servers can open;
// a session id says nothing by itself.
/* global document */
import { revocationList } from './diagram.js'
import { h, $ } from './dom.js'
import { decodeJwt } from './jwt.js'
import { hasIssuer, renderPools } from './pools.js'
import { asText, sealedParts } from './sealed.js'
import { state } from './state.js'

export function renderCredential () {
  const cred = state.credential
  const summary = $('cred-summary')
  const tokenLine = $('cred-token')
  const parts = $('cred-parts')
  tokenLine.replaceChildren()
  parts.replaceChildren()
  // The issuer's box marks the key that signed this token.
  renderPools()
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
    const eddsa = jwt.header.alg === 'EdDSA'
    const kid = typeof jwt.header.kid === 'string' ? jwt.header.kid : null
    add('Signed with the key (kid)', h('pre', { id: 'cred-kid', 'data-kid': kid ?? '', text: kid ?? '(none named)' }),
      h('small', { class: 'note', text: eddsa ? 'one of the issuer\'s keys: its public half is in the JWKS, its private half only in the issuer' : 'the name of one of the secrets every server holds (JWT_SECRETS)' }))
    add('Signature', h('pre', { text: eddsa ? 'Ed25519(header + "." + payload, the issuer\'s private key)' : 'HMAC-SHA256(header + "." + payload, JWT_SECRET)' }))
    let note = eddsa
      ? 'Base64url is an encoding, not encryption: whoever holds the token reads the header and the payload. The signature was made with a private key only the issuer holds; every server checks it with the public key the JWKS publishes under this kid, and none of them could have made it.'
      : 'Base64url is an encoding, not encryption: whoever holds the token reads the header and the payload. The signature proves the token was made with the secret and not changed since; it hides nothing. This page cannot check it: only the servers hold JWT_SECRET.'
    if (cred.altered?.kind === 'tampered') note = `You changed one character of the payload (${cred.altered.what}) and kept the old signature. It no longer matches: every server will refuse it.`
    if (cred.altered?.kind === 'forged') note = 'Signed with a random secret: a real HMAC, but not with JWT_SECRET. Every server will refuse it.'
    if (cred.loggedOut && !cred.altered) {
      note = hasIssuer()
        ? 'You logged out: the issuer revoked your refresh token\'s family, so this token is never renewed; it still works until its exp, a few minutes at most. Fetch and see.'
        : revocationList()
          ? 'You logged out: the token’s id (jti) is now on the revocation list in Redis, which every server checks on every request. Fetch and see.'
          : 'You logged out: the server cleared the cookie, but it keeps no record of this token, so it still works until exp. Fetch and see.'
    }
    parts.append(h('p', { class: 'note', text: note }))
  } else if (cred.mode === 'cookie' && sealedParts(cred.token)) {
    renderSealed(cred, tokenLine, add, parts)
  } else {
    tokenLine.append(h('span', { class: 't-payload', text: cred.token }))
    const where = cred.mode === 'redis'
      ? 'in Redis, which every server asks on every request'
      : cred.mode === 'postgres'
        ? 'in a PostgreSQL table, which every server asks on every request'
        : `only in ${cred.issuedBy}’s memory: no other server has heard of it`
    add('Session id', h('p', { class: 'note', text: `A random 256-bit reference. It says nothing by itself: the session it names lives ${where}.` }))
    if (cred.altered) parts.append(h('p', { class: 'note', text: `You changed ${cred.altered.what}: no server has a session by that name.` }))
    if (cred.loggedOut && !cred.altered) {
      const shared = cred.mode === 'redis' || cred.mode === 'postgres'
      parts.append(h('p', { class: 'note', text: shared ? 'You logged out: the session was deleted from the store every server reads. Fetch and see.' : 'You logged out: only the server that took the logout deleted its copy. Fetch and see.' }))
    }
  }
}

/** cookie mode: the value's bytes, part by part, none of them readable; the changed byte marked. */
function renderSealed (cred, tokenLine, add, parts) {
  tokenLine.append(h('span', { class: 't-sealed', text: cred.token }))
  const layout = h('pre', { class: 'sealed' })
  for (const part of sealedParts(cred.token)) {
    const changed = cred.altered?.kind === 'tampered' && cred.altered.at >= part.at && cred.altered.at < part.at + part.length
    const label = `${part.name.padEnd(10)} ${String(part.length).padStart(2)} bytes  `
    if (changed) {
      const i = (cred.altered.at - part.at) * 2
      layout.append(label, part.hex.slice(0, i), h('span', { class: 'changed', text: part.hex.slice(i, i + 2) }), part.hex.slice(i + 2), '\n')
    } else {
      layout.append(`${label}${part.hex}\n`)
    }
  }
  add('Sealed value (base64url → bytes): nobody can read it', layout)
  add('The same bytes as text', h('pre', { text: asText(cred.token) }))
  let note = `Unlike a JWT's payload, nothing here decodes to ${cred.user}'s name or the session's expiry: both are inside the ciphertext, sealed with AES-256-GCM under COOKIE_SECRET, which only the servers hold. The tag proves it was sealed with that key and not changed since.`
  if (cred.altered?.kind === 'tampered') note = `You changed ${cred.altered.what} and kept the old tag. It no longer matches: every server will refuse it (invalid_token). Without the tag, the flipped bit would have changed what is sealed, where the expiry sits.`
  if (cred.loggedOut && !cred.altered) note = 'You logged out: the server cleared the cookie, but it keeps no record of this value, so it still works until it expires, as a JWT does. Fetch and see.'
  parts.append(h('p', { class: 'note', text: note }))
}

function expiryText (exp) {
  const seconds = Math.round(exp - Date.now() / 1000)
  const at = new Date(exp * 1000)
  const when = Number.isNaN(at.getTime()) ? String(exp) : `${at.toLocaleDateString()} ${at.toTimeString().slice(0, 8)}`
  if (seconds <= 0) return `exp ${when}: expired`
  if (seconds > 86_400 * 365) return `exp ${when}: in ${Math.round(seconds / (86_400 * 365))} years`
  return `exp ${when}: in ${seconds >= 120 ? Math.round(seconds / 60) + ' min' : seconds + ' s'}`
}

export function tickExpiry () {
  for (const el of document.querySelectorAll('[data-exp]')) el.textContent = expiryText(Number(el.dataset.exp))
}
