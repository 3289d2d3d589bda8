import type { LoggerOptions } from 'pino'

/**
 * pino options shared by every process: the process's name bound into every
 * line, credentials never written, and human-friendly output only when a
 * person is watching a terminal (the launcher pretty-prints piped JSON itself).
 */
export function loggerOptions (name: string, level: string, pretty = process.stdout.isTTY === true): LoggerOptions {
  return {
    level,
    base: { server: name },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        'headers.authorization',
        'headers.cookie',
        'password',
        'token'
      ],
      censor: '[redacted]'
    },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {})
  }
}
