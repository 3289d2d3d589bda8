import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { activationDelaySeconds, writeNewKey } from '../../services/issuer/keys.ts'
import { ManagedProcess, type LogSink } from './managed-process.ts'
import { httpOk } from './probes.ts'

const ISSUER_ENTRY = fileURLToPath(new URL('../../services/issuer/server.ts', import.meta.url))

/** The balancer's ROUTES in eddsa mode: what the issuer answers, everything else to the app servers. */
export const ISSUER_ROUTES = '/login:issuer,/token/:issuer,/logout:issuer,/.well-known/jwks.json:issuer'

export interface Issuer extends ManagedProcess {
  /** issuer-1 ... issuer-N */
  readonly id: string
  readonly url: string
  readonly port: number
}

/**
 * The issuers' private keys, in a directory of this run's own (mode 0700, made by mkdtemp) that
 * only the issuers are told of: made with one key that signs at once, removed by `remove()`
 * (which the cluster's stop calls), and at the latest when the launcher's process exits.
 */
export interface KeysDir {
  readonly path: string
  remove (): void
}

export async function makeKeysDir (): Promise<KeysDir> {
  const path = mkdtempSync(join(tmpdir(), 'auth-cluster-issuer-keys-'))
  let removed = false
  const remove = (): void => {
    if (removed) return
    removed = true
    process.off('exit', remove)
    rmSync(path, { recursive: true, force: true })
  }
  // Whatever way the launcher ends (SIGKILL aside), no private key is left behind.
  process.once('exit', remove)
  try {
    await writeNewKey({ intoDir: path }, Date.now() - 1000)
  } catch (err) {
    remove()
    throw err
  }
  return { path, remove }
}

export interface IssuerOptions {
  count: number
  keysDir: string
  redisUrl: string
  logLevel: string
  /** Everything else the issuers read (ACCESS_TTL_SECONDS, the login throttle...), as given. */
  env: Record<string, string>
  /** Only what a Node child needs from the launcher's environment. */
  inheritedEnv: Record<string, string>
  onLog: LogSink
  ownProcessGroup: boolean
}

/** issuer-1 ... issuer-N, unstarted, each reporting its own port like the app servers. */
export function issuerProcesses (options: IssuerOptions): Array<ManagedProcess & { id: string }> {
  return Array.from({ length: options.count }, (_, i) => {
    const id = `issuer-${i + 1}`
    const proc: ManagedProcess = new ManagedProcess({
      name: id,
      command: process.execPath,
      args: [ISSUER_ENTRY],
      env: {
        ...options.inheritedEnv,
        ...options.env,
        HOST: '127.0.0.1',
        SERVER_ID: id,
        LOG_LEVEL: options.logLevel,
        REDIS_URL: options.redisUrl,
        ISSUER_KEYS_DIR: options.keysDir
      },
      portVariable: 'PORT',
      isReady: async () => await httpOk(`http://127.0.0.1:${String(proc.reportedPort)}/health`),
      ownProcessGroup: options.ownProcessGroup
    }, options.onLog)
    return Object.assign(proc, { id })
  })
}

/**
 * A rotation: a new key written into the directory, published by every issuer at once (SIGHUP
 * makes them read the directory now rather than within the second) and signing once every app
 * server can have fetched it, `activationDelaySeconds` from now unless told otherwise. The old key
 * is retired by the issuers themselves once its last token has expired.
 */
export async function rotateKey (keysDir: string, issuers: readonly ManagedProcess[], timing: { jwksRefreshSeconds: number, clockToleranceSeconds: number, activateInSeconds?: number | undefined }): Promise<{ kid: string, signFrom: number }> {
  const delay = timing.activateInSeconds ?? activationDelaySeconds(timing.jwksRefreshSeconds, timing.clockToleranceSeconds)
  const { kid, signFrom } = await writeNewKey({ intoDir: keysDir }, Date.now() + delay * 1000)
  for (const issuer of issuers) issuer.signal('SIGHUP')
  return { kid, signFrom }
}
