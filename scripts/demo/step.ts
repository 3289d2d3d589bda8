import type { Cluster, ClusterOptions } from '../cluster.ts'
import type { AuthStepTiming } from '../lib/auth-step-timing.ts'
import type { DemoClient } from './client.ts'
import type { Narrator } from './narrator.ts'

/**
 * The cluster a step runs on: the options of startCluster that change what the servers do.
 * Consecutive steps with the same spec share one cluster.
 */
export type ClusterSpec = Required<Pick<ClusterOptions, 'mode' | 'strategy'>> &
  Pick<ClusterOptions, 'sessionTtlSeconds' | 'serverEnv' | 'jwtRevocation' | 'jwtSecrets' | 'loginThrottleStore' | 'sessionCache' | 'signing' | 'issuerEnv'>

/** What one step measured and a later one quotes, by the name the first gave it. */
export interface Memo {
  /** The auth step's timing, e.g. memo.authStep.redis from the redis step, quoted by the jwt steps. */
  authStep: Partial<Record<string, AuthStepTiming>>
  /** The shared secret's rotation (the key rotation step): restarts it took, their seconds in all, and the requests refused on the way. */
  secretRotation?: { restarts: number, seconds: number, refused: number }
}

export interface StepContext {
  cluster: Cluster
  out: Narrator
  memo: Memo
  /** A new client (a browser stand-in with its own cookies) for a demo user. */
  client (user: string): DemoClient
  /** Resolves once every server runs and the balancer counts it healthy. */
  settle (): Promise<void>
  /** The app server with this id, or a clear error. */
  server (id: string | null): Cluster['servers'][number]
  /**
   * A counter from every server's /metrics, summed over the samples whose labels include
   * `labels` (all of them when none are given, whatever their label values): in all, and per
   * server id.
   */
  counter (name: string, labels?: Record<string, string>): Promise<{ total: number, byServer: Record<string, number> }>
  /**
   * Times the auth step for this credential the one way every step does (scripts/lib/
   * auth-step-timing.ts), through the balancer; the requests are not shown.
   */
  timeAuthStep (token: string): Promise<AuthStepTiming>
  /**
   * Another step's number: its place in steps/index.ts. A step that names another ("as in step
   * 4") asks here, so inserting a step renumbers the text with the registry.
   */
  numberOf (step: Step<unknown>): number
  /**
   * Stops this step's cluster and starts one to `spec`, for a step that shows two set-ups
   * side by side; the context returned works on the new one.
   */
  switchCluster (spec: ClusterSpec): Promise<StepContext>
}

export interface StepOutcome<R> {
  result: R
  /** One or two sentences, true of what the step just showed: its numbers come from `result`. */
  lesson: string
}

/** One step of the walkthrough; its number is its place in steps/index.ts. */
export interface Step<R = unknown> {
  title: string
  cluster: ClusterSpec
  run (ctx: StepContext): Promise<StepOutcome<R>>
}
