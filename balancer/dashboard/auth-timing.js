// "Time the auth step": the same measurement as the walkthrough's (scripts/lib/auth-step-timing.ts)
// and the same quantity as compare's, so a student sees one order of magnitude in all three. The
// servers time the step themselves and say so in each answer's `Server-Timing: auth;dur=MS`; a
// first batch is sent and not counted (a fresh process runs its first requests unoptimised), and
// requests go several at a time, as on a server with traffic (a server left idle between requests
// wakes up with cold caches, which makes a signature check look like half a network round trip).
/* global fetch */
import { $ } from './dom.js'
import { state } from './state.js'

export const WARMUP = 200
export const BATCH = 200
export const IN_FLIGHT = 12
export const HOW = `median of ${BATCH} warm requests, ${IN_FLIGHT} at a time after ${WARMUP} not counted, from the servers' Server-Timing`

const AUTH_DURATION = /(?:^|,)\s*auth;dur=([0-9.]+)/

/** The `auth;dur` of a Server-Timing header value, in ms, or null. */
export function authDurationMs (serverTiming) {
  const match = AUTH_DURATION.exec(serverTiming ?? '')
  return match ? Number(match[1]) : null
}

export function median (values) {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]
}

/** µs below a millisecond, ms above: the unit the number needs. */
export function formatAuth (ms) {
  return ms < 1 ? `${(ms * 1000).toFixed(ms < 0.01 ? 1 : 0)} µs` : `${ms.toFixed(2)} ms`
}

/**
 * Sends WARMUP + BATCH authenticated requests through the balancer, IN_FLIGHT at a time, and
 * returns the median auth step of the counted ones, in all and per server (by x-served-by).
 * These bypass the panel's tally on purpose: they are a measurement, not the student's clicks;
 * the cards (the balancer's own counts) do show them.
 */
export async function timeAuthStep (onProgress) {
  const token = state.credential?.token
  if (!token) throw new Error('log in first: the auth step needs a credential to check')
  const all = []
  const byServer = new Map()
  let sent = 0
  let refused = 0
  const total = WARMUP + BATCH
  async function worker () {
    while (sent < total) {
      const index = sent++
      const res = await fetch('/feeds', { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' })
      await res.arrayBuffer()
      if (res.status !== 200) refused++
      const ms = authDurationMs(res.headers.get('server-timing'))
      if (index >= WARMUP && ms !== null) {
        all.push(ms)
        const server = res.headers.get('x-served-by') ?? '?'
        if (!byServer.has(server)) byServer.set(server, [])
        byServer.get(server).push(ms)
      }
      if (index % 50 === 0) onProgress?.(index, total)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  return {
    medianMs: median(all),
    samples: all.length,
    refused,
    perServer: Object.fromEntries([...byServer].map(([server, values]) => [server, median(values)]))
  }
}

/** The result on the panel, and each server's median on its card. */
export function showAuthTiming (result) {
  const el = $('auth-timing')
  if (result.medianMs === null) {
    el.textContent = `No answer carried Server-Timing (${result.refused} of ${WARMUP + BATCH} refused): the auth step is timed on requests a server checks.`
    return
  }
  el.textContent = `Auth step, ${state.mode ?? 'this'} mode: ${formatAuth(result.medianMs)} (${HOW})` +
    (result.refused > 0 ? `; ${result.refused} refused` : '')
  el.dataset.medianMs = String(result.medianMs)
  for (const card of state.cards.values()) {
    const ms = result.perServer[card.el.dataset.server]
    card.parts.auth.textContent = ms === undefined ? '' : `auth step ${formatAuth(ms)}`
    card.el.dataset.authMs = ms === undefined ? '' : String(ms)
  }
}
