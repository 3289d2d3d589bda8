// Live traffic: each request the balancer reports is a dot from the balancer to the server that
// answered, a count on that server's card, and a row in the list of recent requests.
/* global window */
import { centre, updateCard } from './diagram.js'
import { $, clock, h } from './dom.js'
import { SYMBOL, outcomeOf, state } from './state.js'

const MAX_LOG_ROWS = 12
const MAX_DOTS_IN_FLIGHT = 40

let dotsInFlight = 0

export function showRequest (event) {
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

export function addOmitted (omitted) {
  for (const [servedBy, tally] of Object.entries(omitted)) {
    const card = cardFor({ upstream: null, servedBy })
    if (!card) continue
    for (const key of ['ok', 'refused', 'failed']) card.counts[key] += tally[key]
    updateCard(card.el.dataset.url)
  }
}

export function resetCounts () {
  for (const card of state.cards.values()) card.counts = { ok: 0, refused: 0, failed: 0 }
  state.seen = 0
  $('log-rows').replaceChildren()
  $('log-total').textContent = ''
  for (const url of state.cards.keys()) updateCard(url)
}
