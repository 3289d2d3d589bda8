// Stop and start, relayed by the balancer to the launcher that owns the processes (npm start).
// Started any other way, the balancer says why it cannot, and there are no buttons.
/* global document, fetch */
import { $, h } from './dom.js'
import { state } from './state.js'

export function controlButtons (target, onDone) {
  if (!state.control.enabled) return []
  const stop = h('button', { type: 'button', 'data-action': 'stop', 'data-target': target.id, text: 'Stop', onclick: () => control('stop', target.id, onDone) })
  const start = h('button', { type: 'button', 'data-action': 'start', 'data-target': target.id, text: 'Start', onclick: () => control('start', target.id, onDone) })
  stop.disabled = !target.running
  start.disabled = target.running
  return [stop, start]
}

async function control (action, target, onDone) {
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
      note.textContent = `${target} ${action === 'stop' ? 'stopped' : 'started'}.` + (action === 'stop' && target !== 'redis' && target !== 'postgres' ? ' The balancer routes around it once it notices.' : '')
    } else {
      note.textContent = `Could not ${action} ${target}: ${body.message ?? body.error}`
    }
  } catch (err) {
    note.textContent = `Could not ${action} ${target}: ${err.message}`
  }
  onDone()
}
