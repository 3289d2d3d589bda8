import { formatAuthMs, type AuthStepTiming } from '../lib/auth-step-timing.ts'

/** "a", "a and b", "a, b and c" */
export function list (items: string[]): string {
  if (items.length <= 1) return items.join('')
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`
}

/** The local time of day of a Unix time, hh:mm:ss. */
export function clock (epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toTimeString().slice(0, 8)
}

/** "0.018 ms": an auth step's median, or "?" when it was not measured in this walkthrough. */
export function ms (timing: AuthStepTiming | undefined): string {
  return timing === undefined ? '?' : `${formatAuthMs(timing.medianMs)} ms`
}

/** The note a step prints after timing the auth step: the number, and how it was measured. */
export function timingNote (timing: AuthStepTiming, what: string): string {
  return `(and ${timing.warmup + timing.samples} more requests, not shown, to time the auth step: ${ms(timing)} for ${what}, the ${timing.how})`
}
