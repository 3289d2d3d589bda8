/** "a", "a and b", "a, b and c" */
export function list (items: string[]): string {
  if (items.length <= 1) return items.join('')
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`
}

/** The local time of day of a Unix time, hh:mm:ss. */
export function clock (epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toTimeString().slice(0, 8)
}

export function ms (value: number | undefined): string {
  if (value === undefined) return '?'
  return value < 0.1 ? value.toFixed(3) : value.toFixed(2)
}
