// The live dashboard: plain browser JavaScript in ES modules, no build step, no dependencies,
// nothing loaded from another origin. It listens to the balancer's event stream
// (/_balancer/events) and sends its own requests through the balancer like any other client,
// so they show up in the stream too.
//   stream.js           the event stream, and what each event changes
//   diagram.js          the servers, the store, the wires
//   pools.js            the balancer's other pools: the issuer, its keys
//   requests.js         the dots, the counts on each card, the list of recent requests
//   actions.js          the "Try it" buttons
//   auth-timing.js      "Time the auth step", measured as the walkthrough and compare do
//   credential.js       the token, taken apart (jwt.js, sealed.js)
//   cluster-control.js  stop and start, through the launcher
/* global ResizeObserver */
import { busy, fetchFeed, forge, login, logout, restore, tamper, timeAuth } from './actions.js'
import { tickExpiry } from './credential.js'
import { drawWires } from './diagram.js'
import { $ } from './dom.js'
import { resetCounts } from './requests.js'
import { connect } from './stream.js'

$('login').addEventListener('click', () => busy(login))
$('fetch1').addEventListener('click', () => busy(() => fetchFeed(1)))
$('fetch20').addEventListener('click', () => busy(() => fetchFeed(20)))
$('logout').addEventListener('click', () => busy(logout))
$('time-auth').addEventListener('click', () => busy(timeAuth))
$('tamper').addEventListener('click', () => tamper())
$('forge').addEventListener('click', () => busy(forge))
$('restore').addEventListener('click', () => restore())
$('reset').addEventListener('click', () => resetCounts())
new ResizeObserver(() => drawWires()).observe($('stage'))
setInterval(tickExpiry, 1000)
connect()
