// The answers the balancer gave, counted by class of status, from its start: per upstream, and
// its own where no upstream answered. /_balancer/stats shows them and the dashboard starts from
// them, so what passed before a page opened is on it too. Counting is a branch and one
// increment per answer, on the hot path, always.

/** Answers by class: the same words on the dashboard's server cards and in its panel. */
export interface AnswerCounts {
  /** 2xx */
  accepted: number
  /** 401 and 403: the credential, or its absence, was refused */
  refused: number
  /** 503: a server (its session store) or the balancer (no healthy upstream) could not serve it */
  unavailable: number
  /** every other status: 1xx never (interim), 3xx, 400, 404, 413, 429, 500, 502, 504... */
  other: number
}

export type AnswerClass = keyof AnswerCounts

export function noAnswers (): AnswerCounts {
  return { accepted: 0, refused: 0, unavailable: 0, other: 0 }
}

export function answerClassOf (status: number): AnswerClass {
  if (status >= 200 && status < 300) return 'accepted'
  if (status === 401 || status === 403) return 'refused'
  if (status === 503) return 'unavailable'
  return 'other'
}

/** One more answer with this status. Field by field rather than counts[answerClassOf(status)]: no keyed store. */
export function countAnswer (counts: AnswerCounts, status: number): void {
  if (status >= 200 && status < 300) counts.accepted++
  else if (status === 401 || status === 403) counts.refused++
  else if (status === 503) counts.unavailable++
  else counts.other++
}
