// The balancer's other pools (ROUTES), each upstream a box of its own above the app servers: in
// jwt mode with JWT_SIGNING=eddsa, the issuer, the one process that can sign. Its box lists the
// keys its JWKS publishes and marks the one that signed this page's token.
/* global fetch, requestAnimationFrame */
import { SYMBOL, noAnswers, since } from './answers.js'
import { drawWires } from './diagram.js'
import { $, h } from './dom.js'
import { decodeJwt } from './jwt.js'
import { state } from './state.js'

/** The pool the issuer's paths go to, when there is one: the balancer's ROUTES say which. */
export function issuerPool () {
  const route = state.routes.find((r) => r.prefix === '/.well-known/jwks.json')
  return route === undefined ? undefined : state.pools.get(route.pool)
}

/** jwt mode with an issuer: the app servers verify with its public keys and hold no secret. */
export function hasIssuer () {
  return issuerPool() !== undefined && (issuerPool()?.upstreams.length ?? 0) > 0
}

/** The kid in the header of this page's token, if it is a JWT that names one. */
export function tokenKid () {
  const jwt = state.credential ? decodeJwt(state.credential.token) : null
  return typeof jwt?.header.kid === 'string' ? jwt.header.kid : null
}

export function renderPools () {
  const row = $('pools')
  const boxes = []
  for (const pool of state.pools.values()) {
    const prefixes = state.routes.filter((r) => r.pool === pool.name).map((r) => r.prefix)
    for (const view of pool.upstreams) {
      const base = state.poolBases.get(view.url) ?? noAnswers()
      const counts = since(view.answers, base)
      const name = view.servedBy ?? `${pool.name} :${new URL(view.url).port}`
      const keys = pool === issuerPool() ? keysLine() : null
      boxes.push(h('div', {
        class: `box pool-upstream${view.healthy ? '' : ' is-down'}`,
        'data-pool': pool.name,
        'data-server': name,
        'data-url': view.url,
        'data-accepted': String(counts.accepted),
        'data-refused': String(counts.refused),
        'data-unavailable': String(counts.unavailable)
      },
      h('span', { class: 'name', text: name }),
      h('span', { class: `state ${view.healthy ? 'up' : 'down'}`, text: view.healthy ? '● up' : '✘ down' }),
      h('small', { class: 'routes', text: `pool ${pool.name}: ${prefixes.join(' ')}` }),
      h('div', { class: 'counts' },
        h('span', { class: 'accepted', text: `${SYMBOL.accepted} ${counts.accepted}` }),
        h('span', { class: 'refused', text: `${SYMBOL.refused} ${counts.refused}` }),
        ...(counts.unavailable > 0 ? [h('span', { class: 'unavailable', text: `${SYMBOL.unavailable} ${counts.unavailable}` })] : [])),
      ...(keys === null ? [] : [keys])))
    }
  }
  row.replaceChildren(...boxes)
  row.hidden = boxes.length === 0
  requestAnimationFrame(drawWires)
}

/** The issuer's keys as its JWKS publishes them, the one that signed this page's token marked. */
function keysLine () {
  const kid = tokenKid()
  const line = h('small', { class: 'keys' })
  if (state.jwksKids === null) {
    line.textContent = 'signs with its private key; its JWKS: …'
    return line
  }
  line.append('signs with its private key; its JWKS publishes ')
  state.jwksKids.forEach((k, i) => {
    if (i > 0) line.append(', ')
    line.append(h('span', { class: k === kid ? 'kid signed-yours' : 'kid', 'data-kid': k, title: k === kid ? 'the key that signed your token' : k, text: `${k.slice(0, 8)}…${k === kid ? ' (your token)' : ''}` }))
  })
  return line
}

/** The JWKS, read through the balancer like any client would: public keys only. */
export async function refreshJwks () {
  if (!hasIssuer()) {
    state.jwksKids = null
    return
  }
  try {
    const res = await fetch('/.well-known/jwks.json', { cache: 'no-store' })
    const body = await res.json()
    state.jwksKids = Array.isArray(body.keys) ? body.keys.map((k) => String(k.kid)) : null
  } catch {
    state.jwksKids = null
  }
  renderPools()
}

/** A batch's totals for the pools' upstreams. */
export function applyPoolTotals (answers) {
  let changed = false
  for (const pool of state.pools.values()) {
    for (const view of pool.upstreams) {
      if (answers[view.url] !== undefined) {
        view.answers = answers[view.url]
        changed = true
      }
    }
  }
  if (changed) renderPools()
}
