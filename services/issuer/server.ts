import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { ConfigError } from '../../lib/config.ts'
import { loggerOptions } from '../../lib/logger.ts'
import { reportListeningPort } from '../../lib/report-port.ts'
import { buildIssuer } from './app.ts'
import { loadIssuerConfig } from './config.ts'

// The issuer's process: the only file of services/issuer/ that touches process (environment,
// signals, exit codes).
let config
try {
  config = loadIssuerConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`issuer: ${err.message}\n`)
  process.exit(1)
}

const logger = pino(loggerOptions(config.serverId, config.logLevel))
let app
try {
  app = await buildIssuer(config, { logger })
} catch (err) {
  // No usable key in ISSUER_KEYS_DIR, or the directory cannot be read: nothing to sign with.
  logger.fatal({ err: (err as Error).message }, 'cannot start the issuer')
  process.exit(1)
}
const issuer = app

// SIGHUP means "read the keys again" (a rotation wrote a new one), as it means "reload" to nginx;
// so close-with-grace must not take it as a reason to close.
closeWithGrace({ delay: 10_000, logger, skip: ['SIGHUP'] }, async ({ signal, err }) => {
  if (err !== undefined) logger.error({ err }, 'closing after an error')
  else logger.info({ signal }, 'closing: finishing requests in flight')
  await issuer.close()
})
process.on('SIGHUP', () => {
  issuer.issuerKeys.rescan().then(
    () => { logger.info({ signing: issuer.issuerKeys.signing().kid, published: issuer.issuerKeys.published().map((k) => k.kid) }, 'SIGHUP: keys read again') },
    (err: unknown) => { logger.warn({ err: (err as Error).message }, 'SIGHUP: cannot read ISSUER_KEYS_DIR: keeping the keys held') }
  )
})

try {
  await issuer.listen({ port: config.port, host: config.host, listenTextResolver: (address) => `issuer listening on ${address}` })
  reportListeningPort(issuer.server, logger)
} catch (err) {
  const code = (err as { code?: string }).code
  logger.fatal({ err }, code === 'EADDRINUSE' ? `port ${config.port} is taken: choose another PORT` : 'could not start')
  process.exit(1)
}
