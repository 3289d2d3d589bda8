import type { ManagedProcess } from '../../lib/managed-process.ts'
import type { AuthStepTiming } from '../../lib/auth-step-timing.ts'
import { times } from '../requests.ts'
import type { Step, StepContext } from '../step.ts'
import { storeCommandsDuring, waitForStore } from '../store.ts'
import { tally, type Tally } from '../tally.ts'
import { list, ms, timingNote } from '../words.ts'
import { redisSessions } from './04-redis-sessions.ts'

/** The same requests on one store: what they cost, its outage, and a restart of it. */
export interface StoreRun {
  store: 'redis' | 'postgres'
  fetches: Tally
  /** Commands the servers sent to the store for the login, from their own counters (summed over every label). */
  loginCommands: number
  /** And for the reads. */
  readCommands: number
  commandsPerRead: number
  authStep: AuthStepTiming
  /** Reads with the store stopped, one per server. */
  down: Tally
  slowestWhileDownMs: number
  /** Reads with the session from before, once the store was started again and every server reached it. */
  afterRestart: Tally
}

export interface DatabaseBesideRedis {
  redis: StoreRun
  postgres: StoreRun
  /** PostgreSQL's auth step median over Redis's, measured in this step the same way. */
  costRatio: number
}

/** What each store's commands are called, as the README and the servers' logs call them. */
const COMMANDS = {
  redis: { login: 'SET', read: 'GETEX', name: 'Redis', lookup: 'a Redis lookup' },
  postgres: { login: 'INSERT', read: 'UPDATE … RETURNING', name: 'PostgreSQL', lookup: 'an UPDATE … RETURNING in PostgreSQL' }
} as const

/**
 * Alice logs in and reads, the auth step is timed, then the store is stopped and started again.
 * Counting commands sums session_store_commands_total over its labels, so it reads the same
 * whatever a label calls a command.
 */
async function onStore (ctx: StepContext, store: StoreRun['store'], storeProcess: ManagedProcess, against: string): Promise<StoreRun> {
  const n = ctx.cluster.servers.length
  const words = COMMANDS[store]
  const alice = ctx.client('alice')
  const login = await storeCommandsDuring(ctx, async () => await alice.login())
  const reads = await storeCommandsDuring(ctx, async () => await times(6, async () => await alice.feeds()))
  const fetches = tally(reads.value)
  const commandsPerRead = reads.commands / reads.value.length
  ctx.out.note(`The servers' own counters (session_store_commands_total in /metrics): ${login.commands} ${words.login} for 1 login, ${reads.commands} ${words.read} for ${reads.value.length} reads.`)
  const authStep = await ctx.timeAuthStep(alice.token ?? '')
  ctx.out.note(timingNote(authStep, `${words.lookup}${against}`))

  ctx.out.blank()
  ctx.out.say(`${words.name} stops. Alice reads her feed on every server.`)
  await storeProcess.stop()
  const downAnswers = await times(n, async () => await alice.feeds())
  ctx.out.blank()
  ctx.out.say(`${words.name} starts again. Alice reads her feed with the session she had.`)
  await storeProcess.start()
  await waitForStore(ctx)
  const afterRestart = tally(await times(n, async () => await alice.feeds()))
  return {
    store,
    fetches,
    loginCommands: login.commands,
    readCommands: reads.commands,
    commandsPerRead,
    authStep,
    down: tally(downAnswers),
    slowestWhileDownMs: Math.max(...downAnswers.map((a) => a.ms)),
    afterRestart
  }
}

/** "3 of 3 reads were 503 session_store_unavailable" */
function refusedLine (t: Tally, what: string): string {
  return `${t.failed + t.refused} of ${t.total} ${what}${t.reasons.length === 0 ? '' : ` ${t.failed > 0 ? '503' : '401'} ${list(t.reasons)}`}`
}

function costLine (redis: AuthStepTiming, postgres: AuthStepTiming, ratio: number): string {
  const both = `the auth step's median was ${ms(redis)} for a GETEX and ${ms(postgres)} for an UPDATE … RETURNING (each the ${redis.how})`
  const times = `${ratio.toFixed(1)} times`
  // Two batches of the same requests move by tens of percent on a busy machine (the key rotation
  // step times two alike ones): a smaller gap than half again is said to be one.
  if (ratio >= 1.5) return `${both}: the database cost ${times} the cache per request, since its lookup is a write too (a new row version, the idle timeout moved)`
  if (ratio > 1) return `${both}: the database cost ${times} the cache here, a gap two batches of the same requests can open on a busy machine by themselves (run it again to see it wider), though its lookup is a write too`
  return `${both}: this time the database cost no more than the cache, though its lookup is a write (run it again to see whether that holds)`
}

// Right after the redis step, on the cluster it leaves (the same spec, so the walkthrough keeps
// it), then on a postgres cluster: one step, so its lesson sets the two stores' numbers side by
// side, measured minutes apart on the same machine rather than steps apart.
export const postgresBesideRedis: Step<DatabaseBesideRedis> = {
  title: 'sessions in PostgreSQL beside Redis: the price per request, and what survives a restart',
  cluster: { mode: 'redis', strategy: 'round-robin' },
  async run (ctx) {
    ctx.out.say(`The post's first shared store was the database. The same requests on two clusters: sessions in Redis, as in step ${ctx.numberOf(redisSessions)}, then in a PostgreSQL table (AUTH_MODE=postgres). Alice logs in and reads her feed six times; then the store is stopped, and started again.`)
    ctx.out.blank()
    const redisProcess = ctx.cluster.redis
    if (redisProcess === undefined) throw new Error('the walkthrough starts its own redis-server in redis mode')
    const redis = await onStore(ctx, 'redis', redisProcess, '')
    if (redis.afterRestart.ok === 0) ctx.out.note('This Redis keeps nothing on disk (the launcher starts it with --save "" --appendonly no): it came back empty.')
    ctx.out.blank()

    ctx.out.say('Now the same on servers that keep each session as a row in PostgreSQL: every read is one UPDATE … RETURNING, which reads the session and moves its idle timeout at once.')
    const pgCtx = await ctx.switchCluster({ mode: 'postgres', strategy: 'round-robin' })
    const postgresProcess = pgCtx.cluster.postgres
    if (postgresProcess === undefined) throw new Error('the walkthrough starts its own PostgreSQL in postgres mode')
    const postgres = await onStore(pgCtx, 'postgres', postgresProcess, `, against ${ms(redis.authStep)} for ${COMMANDS.redis.lookup} above, measured the same way`)
    ctx.memo.authStep.postgres = postgres.authStep
    if (postgres.afterRestart.ok > 0) ctx.out.note('PostgreSQL wrote its table to disk as it stopped and read it back as it started: the session was still there.')

    const costRatio = postgres.authStep.medianMs / redis.authStep.medianMs
    const perRead = (r: StoreRun): string => `${r.commandsPerRead} ${COMMANDS[r.store].read}${r.commandsPerRead === 1 ? '' : 's'} per read`
    const kept = (r: StoreRun): string => r.afterRestart.ok === r.afterRestart.total
      ? `${COMMANDS[r.store].name} still had alice's session (${r.afterRestart.ok} of ${r.afterRestart.total} accepted)`
      : r.afterRestart.ok === 0
        ? `${COMMANDS[r.store].name} had forgotten it (${refusedLine(r.afterRestart, 'refused')})`
        : `${COMMANDS[r.store].name} accepted ${r.afterRestart.ok} of ${r.afterRestart.total} (${list(r.afterRestart.reasons)})`
    const keptOnlyByPostgres = postgres.afterRestart.ok === postgres.afterRestart.total && redis.afterRestart.ok === 0
    const trade = keptOnlyByPostgres
      ? ` The trade: a database ${costRatio > 1 ? 'costs more per request than a cache, and ' : ''}keeps what a cache without persistence loses.`
      : ''
    return {
      result: { redis, postgres, costRatio },
      lesson: `With either store every server read alice's session (${redis.fetches.ok} of ${redis.fetches.total} with Redis, ${postgres.fetches.ok} of ${postgres.fetches.total} with PostgreSQL), at ${perRead(redis)} against ${perRead(postgres)}, and ${costLine(redis.authStep, postgres.authStep, costRatio)}. Stopped, each took every server down with it: ${refusedLine(redis.down, 'reads')} with Redis, ${refusedLine(postgres.down, 'reads')} with PostgreSQL, the slowest answer in ${Math.round(redis.slowestWhileDownMs)} ms and ${Math.round(postgres.slowestWhileDownMs)} ms. Restarted, ${kept(postgres)}, and ${kept(redis)}.${trade}`
    }
  }
}
