import type { Reporter } from './run-compare.ts'

function clock (ms: number): string {
  const s = Math.floor(ms / 1000)
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
}

/**
 * Progress on stderr, so stdout holds only the results. On a terminal, one status line that
 * rewrites itself under the finished steps; elsewhere (CI, a pipe), only the finished steps,
 * one plain line each.
 */
export function createReporter (stream: NodeJS.WriteStream = process.stderr, tty = stream.isTTY === true): Reporter & { clear (): void } {
  const started = performance.now()
  let shown = false
  const clear = (): void => {
    if (shown) stream.write('\r\x1b[2K')
    shown = false
  }
  return {
    step (text) {
      clear()
      stream.write(`[${clock(performance.now() - started)}] ${text}\n`)
    },
    status (text) {
      if (!tty) return
      clear()
      const line = `[${clock(performance.now() - started)}] ${text}`
      // One line only: a line longer than the terminal would wrap, and \r would not reach its start.
      const columns = stream.columns > 0 ? stream.columns : 100
      stream.write(line.slice(0, Math.max(20, columns - 1)))
      shown = true
    },
    clear
  }
}
