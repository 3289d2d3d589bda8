// Live traffic: each request the balancer reports is a dot from the balancer to the server that
// answered and a row in the list of recent requests. The counts on the cards are the balancer's
// own totals, which come with every batch (applyTotals): every answer since it started, from
// every client, whether or not this page saw it pass.
/* global window */
import { SYMBOL, classOf, noAnswers } from './answers.js'
import { renderTally } from './actions.js'
import { centre, updateBalancerCounts, updateCard } from './diagram.js'
import { formatAuth } from './auth-timing.js'
import { $, clock, h } from './dom.js'
import { renderPools } from './pools.js'
import { state } from './state.js'

const MAX_LOG_ROWS = 12
const MAX_DOTS_IN_FLIGHT = 40

let dotsInFlight = 0

/** The balancer's totals at the time of a batch: per upstream, and its own. */
export function applyTotals (batch) {
  for (const [url, answers] of Object.entries(batch.answers ?? {})) {
    const view = state.upstreams.get(url)
    if (view === undefined) continue
    view.answers = answers
    updateCard(url)
  }
  if (batch.ownAnswers) state.ownAnswers = batch.ownAnswers
  updateBalancerCounts()
}

export function showRequest (event) {
  state.seen++
  const answer = classOf(event.status)
  const card = cardFor(event)
  if (card) {
    const reason = event.reason ?? (event.status === 204 ? 'done' : 'accepted')
    card.parts.last.textContent = `last: ${event.status} ${reason}`
    animate(card.el, answer, card)
  } else {
    flash($('balancer'), answer, state)
  }
  addLogRow(event, answer)
  showSeen()
}

/** Requests the balancer only tallied (more than a batch holds, under load): counted, not listed. */
export function addOmitted (count) {
  state.seen += count
  showSeen()
}

function showSeen () {
  $('log-total').textContent = `(${state.seen} since this page opened)`
}

function cardFor (event) {
  if (event.upstream && state.cards.has(event.upstream)) return state.cards.get(event.upstream)
  for (const card of state.cards.values()) if (card.el.dataset.server === event.servedBy) return card
  return null
}

function animate (target, answer, holder) {
  if (dotsInFlight >= MAX_DOTS_IN_FLIGHT || window.matchMedia('(prefers-reduced-motion: reduce)').matches) {
    flash(target, answer, holder)
    return
  }
  const stage = $('stage')
  const from = centre($('balancer'), stage, 'bottom')
  const to = centre(target, stage, 'top')
  const dot = h('div', { class: `dot ${answer}` })
  $('dots').append(dot)
  dotsInFlight++
  const motion = dot.animate([
    { transform: `translate(${from.x}px, ${from.y}px)` },
    { transform: `translate(${to.x}px, ${to.y}px)` }
  ], { duration: 420, easing: 'ease-in' })
  motion.onfinish = () => {
    dot.remove()
    dotsInFlight--
    flash(target, answer, holder)
  }
}

function flash (el, answer, holder) {
  el.classList.remove('flash-accepted', 'flash-refused', 'flash-unavailable', 'flash-other')
  el.classList.add(`flash-${answer}`)
  clearTimeout(holder.flashTimer)
  holder.flashTimer = setTimeout(() => el.classList.remove(`flash-${answer}`), 450)
}

function addLogRow (event, answer) {
  const rows = $('log-rows')
  const text = `${SYMBOL[answer]} ${event.status} ${event.reason ?? (answer === 'accepted' ? 'accepted' : '')}`
  rows.prepend(h('tr', { class: answer },
    h('td', { text: String(state.seen) }),
    h('td', { text: clock(event.t) }),
    h('td', { class: 'request', text: `${event.method} ${event.path}` }),
    h('td', { text: event.servedBy ?? 'balancer' }),
    h('td', { class: 'answer', text: text.trim() }),
    h('td', { text: event.ms.toFixed(1) }),
    h('td', { class: 'auth', text: event.authMs == null ? '' : formatAuth(event.authMs) })))
  while (rows.children.length > MAX_LOG_ROWS) rows.lastElementChild.remove()
}

/** The cards and the panel count from now: both, so they count the same answers. */
export function resetCounts () {
  for (const [url, card] of state.cards) card.base = { ...(state.upstreams.get(url)?.answers ?? noAnswers()) }
  state.ownBase = { ...state.ownAnswers }
  for (const pool of state.pools.values()) for (const view of pool.upstreams) state.poolBases.set(view.url, { ...(view.answers ?? noAnswers()) })
  state.tally = noAnswers()
  state.seen = 0
  $('log-rows').replaceChildren()
  $('log-total').textContent = ''
  for (const url of state.cards.keys()) updateCard(url)
  updateBalancerCounts()
  renderPools()
  renderTally()
}
