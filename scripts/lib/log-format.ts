import { styleText } from 'node:util'

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
const SOURCE_COLOURS = ['cyan', 'magenta', 'yellow', 'blue', 'green', 'white'] as const
const LEVEL_COLOURS: Record<string, Parameters<typeof styleText>[0]> = { WARN: 'yellow', ERROR: 'red', FATAL: 'red', DEBUG: 'gray', TRACE: 'gray' }
// Fields every line has, or that the message already says.
const QUIET = new Set(['level', 'time', 'pid', 'hostname', 'server', 'msg', 'reqId', 'method', 'url', 'statusCode', 'reason'])

/**
 * Turns a child's pino JSON line into `app-2    | 12:01:02 INFO  GET /feeds 401 unknown_session user=alice`.
 * Lines that are not JSON (redis-server's own) pass through as they are.
 */
export function formatLogLine (source: string, line: string, colour: boolean, width = 8): string {
  const tag = source.padEnd(width)
  const paint = (style: Parameters<typeof styleText>[0], text: string): string => colour ? styleText(style, text) : text
  const sourceColour = SOURCE_COLOURS[hash(source) % SOURCE_COLOURS.length] ?? 'white'
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
    if (typeof record !== 'object' || record === null || typeof record.level !== 'number') throw new Error('not pino')
  } catch {
    return `${paint(sourceColour, tag)} | ${line}`
  }
  const level = LEVELS[record.level as number] ?? String(record.level)
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : ''
  const extras = Object.entries(record)
    .filter(([key, value]) => !QUIET.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
  const levelText = level.padEnd(5)
  return `${paint(sourceColour, tag)} | ${time} ${LEVEL_COLOURS[level] !== undefined ? paint(LEVEL_COLOURS[level], levelText) : levelText} ${String(record.msg ?? '')}${extras.length > 0 ? paint('gray', `  ${extras.join(' ')}`) : ''}`
}

function hash (text: string): number {
  let h = 0
  for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return h
}
