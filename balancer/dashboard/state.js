// What the page knows, shared by its modules: the balancer's view of the servers, what the
// launcher says, and this page's own credential.

export const state = {
  strategy: '?',
  stickyCookie: 'lb',
  mode: null,
  /** url -> the balancer's view of the upstream */
  upstreams: new Map(),
  /** url -> { el, counts, parts } */
  cards: new Map(),
  /** what the launcher says (null when the balancer runs without one) */
  cluster: null,
  control: { enabled: false, reason: '' },
  seen: 0,
  credential: null,
  busy: false
}

export const SYMBOL = { ok: '✔', refused: '✘', failed: '⚠' }

export function outcomeOf (status) {
  if (status >= 500) return 'failed'
  if (status >= 400) return 'refused'
  return 'ok'
}
