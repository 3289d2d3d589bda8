import { parseArgs } from 'node:util'
import { measureCredentialSizes, measureMemorySessions, measurePostgresSessions, measureRedisSessions } from './session-memory.ts'

/**
 * `node --expose-gc session-memory-process.ts --sessions N [--memory] [--redis URL] [--postgres URL]`:
 * prints one JSON line with what a session costs in memory mode, in Redis and in PostgreSQL, and
 * what a credential weighs (always; with --sessions 0 that is all it measures).
 */
const USAGE = 'usage: node --expose-gc session-memory-process.ts --sessions N [--memory] [--redis URL] [--postgres URL]\n'
const { values } = parseArgs({
  options: { sessions: { type: 'string' }, memory: { type: 'boolean', default: false }, redis: { type: 'string' }, postgres: { type: 'string' } },
  strict: true
})
const sessions = Number(values.sessions ?? 0)
if (!Number.isInteger(sessions) || sessions < 0 || (sessions === 0 && (values.memory || values.redis !== undefined || values.postgres !== undefined))) {
  process.stderr.write(USAGE)
  process.exit(2)
}
const memory = values.memory ? await measureMemorySessions(sessions) : null
const redis = values.redis !== undefined ? await measureRedisSessions(sessions, values.redis) : null
const postgres = values.postgres !== undefined ? await measurePostgresSessions(sessions, values.postgres) : null
const credentials = await measureCredentialSizes()
process.stdout.write(`${JSON.stringify({ memory, redis, postgres, credentials })}\n`)
