// Answers by class, as the balancer counts them (balancer/answer-counts.ts): the server cards
// and this page's panel count the same classes and say them with the same words.

export const CLASSES = ['accepted', 'refused', 'unavailable', 'other']
export const SYMBOL = { accepted: '✔', refused: '✘', unavailable: '⚠', other: '•' }

/** accepted 2xx, refused 401/403, unavailable 503, other: everything else. */
export function classOf (status) {
  if (status >= 200 && status < 300) return 'accepted'
  if (status === 401 || status === 403) return 'refused'
  if (status === 503) return 'unavailable'
  return 'other'
}

export function noAnswers () {
  return { accepted: 0, refused: 0, unavailable: 0, other: 0 }
}

/** `counts` less `base`, class by class (what came since a reset). */
export function since (counts, base) {
  const out = noAnswers()
  for (const name of CLASSES) out[name] = Math.max(0, (counts?.[name] ?? 0) - (base?.[name] ?? 0))
  return out
}

export function total (counts) {
  return CLASSES.reduce((n, name) => n + counts[name], 0)
}

/** "✔ 3 accepted · ✘ 4 refused · ⚠ 0 unavailable · • 0 other": every class, in words. */
export function describeCounts (counts) {
  return CLASSES.map((name) => `${SYMBOL[name]} ${counts[name]} ${name}`).join(' · ')
}
