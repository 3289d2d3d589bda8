import type { Answer, DemoClient } from './client.ts'
import { times } from './requests.ts'
import { median } from './tally.ts'

/** Extra requests, not shown, so a median of the auth step rests on more than a handful. */
export const TIMING_SAMPLES = 24
export async function sampleAuthMs (client: DemoClient, shown: Answer[]): Promise<number | undefined> {
  const quiet = await times(TIMING_SAMPLES, async () => await client.feeds({ quiet: true }))
  return median([...shown, ...quiet].map((a) => a.authMs ?? NaN))
}
