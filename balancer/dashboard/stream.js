// The balancer's event stream (/_balancer/events): hello (the servers, the strategy, whether
// stop and start work), upstream and upstreams (health, what each /health says), pool (another
// pool's upstreams, the issuer's), cluster (from the launcher) and requests (batches of what passed through).
/* global EventSource */
import { renderTally } from './actions.js'
import { noAnswers } from './answers.js'
import { renderServers, updateBalancerCounts, updateCard, updateMode } from './diagram.js'
import { $ } from './dom.js'
import { applyPoolTotals, refreshJwks, renderPools } from './pools.js'
import { addOmitted, applyTotals, showRequest } from './requests.js'
import { state } from './state.js'

export function connect () {
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
    state.ownAnswers = hello.ownAnswers ?? noAnswers()
    state.pools = new Map((hello.pools ?? []).map((p) => [p.name, p]))
    state.routes = hello.routes ?? []
    // A new balancer behind the same URL (npm run demo moves from cluster to cluster), or other
    // servers: its totals start from zero, and so do the cards and this page's answers. A mere
    // reconnect to the same balancer keeps where "Reset counts" left them.
    if (!sameUpstreams || hello.startedAt !== state.startedAt) {
      state.cards = new Map()
      state.poolBases = new Map()
      state.ownBase = noAnswers()
      if (state.startedAt !== undefined) state.tally = noAnswers()
      state.startedAt = hello.startedAt
    }
    $('control-note').textContent = hello.control.enabled ? '' : hello.control.reason
    renderServers()
    renderPools()
    refreshJwks()
    updateBalancerCounts()
    renderTally()
  })
  source.addEventListener('pool', (e) => {
    const pool = JSON.parse(e.data)
    state.pools.set(pool.name, pool)
    renderPools()
    updateMode()
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
    applyTotals(batch)
    applyPoolTotals(batch.answers ?? {})
    for (const event of batch.requests) showRequest(event)
    if (batch.omittedCount) addOmitted(batch.omittedCount)
  })
}
