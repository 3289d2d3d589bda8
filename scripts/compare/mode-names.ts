import type { CompareMode } from './modes.ts'

/**
 * The name each measured cluster's results carry. A mode named twice in --modes runs twice, on
 * clusters of its own: `--modes jwt,jwt` gives `jwt` and `jwt#2`. The same mode measured twice
 * should differ by no more than the noise; when it does, something other than the mode moves
 * the numbers (the order, a cold process), and compare's own test checks exactly that.
 */
export function runNames (modes: CompareMode[]): Array<{ mode: CompareMode, name: string }> {
  const seen = new Map<string, number>()
  return modes.map((mode) => {
    const count = (seen.get(mode) ?? 0) + 1
    seen.set(mode, count)
    return { mode, name: count === 1 ? mode : `${mode}#${count}` }
  })
}

/** The mode a result's name stands for: `jwt#2` is jwt. */
export function baseMode (name: string): string {
  return name.replace(/#\d+$/, '')
}
