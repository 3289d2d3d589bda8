import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { ConfigError } from '../lib/config.ts'
import { loggerOptions } from '../lib/logger.ts'
import { reportListeningPort } from '../lib/report-port.ts'
import { buildApp } from './app.ts'
import { loadServerConfig } from './config.ts'

// The only file that touches process: environment, signals, exit codes.
let config
try {
  config = loadServerConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`app server: ${err.message}\n`)
  process.exit(1)
}

const logger = pino(loggerOptions(config.serverId, config.logLevel))
const app = await buildApp(config, { logger })

closeWithGrace({ delay: 10_000, logger }, async ({ signal, err }) => {
  if (err !== undefined) logger.error({ err }, 'closing after an error')
  else logger.info({ signal }, 'closing: finishing requests in flight')
  await app.close()
})

try {
  await app.listen({ port: config.port, host: config.host, listenTextResolver: (address) => `listening on ${address} in ${config.mode} mode` })
  reportListeningPort(app.server, logger)
} catch (err) {
  const code = (err as { code?: string }).code
  logger.fatal({ err }, code === 'EADDRINUSE' ? `port ${config.port} is taken: choose another PORT` : 'could not start')
  process.exit(1)
}
