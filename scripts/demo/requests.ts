import type { Answer } from './client.ts'

export const sleep = async (millis: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, millis))

/** Sends `count` requests one after another: sequential requests go round the servers in turn. */
export async function times (count: number, send: () => Promise<Answer>): Promise<Answer[]> {
  const answers: Answer[] = []
  for (let i = 0; i < count; i++) answers.push(await send())
  return answers
}

/** Sends `count` requests at the same moment, none waiting for another's answer. */
export async function atOnce (count: number, send: (i: number) => Promise<Answer>): Promise<Answer[]> {
  return await Promise.all(Array.from({ length: count }, async (_, i) => await send(i)))
}
