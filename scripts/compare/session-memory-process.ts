import { parseArgs } from 'node:util'
import { measureCredentialSizes, measureMemorySessions, measureRedisSessions } from './session-memory.ts'

/**
 * `node --expose-gc session-memory-process.ts --sessions N [--memory] [--redis URL]`: prints one
 * JSON line with what a session costs in memory mode and in Redis, and what a credential weighs
 * (always; with --sessions 0 that is all it measures).
 */
const { values } = parseArgs({
  options: { sessions: { type: 'string' }, memory: { type: 'boolean', default: false }, redis: { type: 'string' } },
  strict: true
})
const sessions = Number(values.sessions ?? 0)
if (!Number.isInteger(sessions) || sessions < 0 || (sessions === 0 && (values.memory || values.redis !== undefined))) {
  process.stderr.write('usage: node --expose-gc session-memory-process.ts --sessions N [--memory] [--redis URL]\n')
  process.exit(2)
}
const memory = values.memory ? await measureMemorySessions(sessions) : null
const redis = values.redis !== undefined ? await measureRedisSessions(sessions, values.redis) : null
const credentials = await measureCredentialSizes()
process.stdout.write(`${JSON.stringify({ memory, redis, credentials })}\n`)
