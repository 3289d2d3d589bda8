import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parse } from 'yaml'
import { AUTH_MODES, type AuthMode } from '../services/auth/authenticator.ts'
import { ServerEnvSchema } from '../services/config.ts'
import { IssuerEnvSchema } from '../services/issuer/config.ts'
import { PUBLISHED_JWT_SECRETS } from '../services/published-secrets.ts'
import { UsageError } from './lib/cli.ts'
import { freePort, isPortFree } from './lib/ports.ts'
import { checkEddsa } from './docker/eddsa.ts'
import { ensureBaseImages, findBuilder, findCompose, findEngine } from './docker/engine.ts'
import { check, DEADLINE, http, log, notes, outcomes, root, run, running, Skip, tail, waitFor, type Reply, type Run, type RunOptions } from './docker/smoke.ts'

const USAGE = `Usage: npm run test:docker -- [--modes jwt,jwt-eddsa,memory,redis,postgres,cookie] [--keep]

The Docker smoke test: builds the image, brings the compose stack up with the host-network
override (docker/compose.host-network.yml) and .env.example as it is, logs in through the
balancer, checks that x-served-by rotates over the three app servers and that each mode answers
as it should, that keygen made one JWT secret the stack keeps and that a published one is
refused, tries UPSTREAMS_DNS in a container, the nginx and bench profiles and a graceful stop,
and always tears the stack down.

Without a Docker engine or Compose it is SKIPPED (exit code 77), never passed. It never pulls:
missing base images (node:24-slim, redis:7, postgres:18, nginx:1.28) are built as STAND-INS from Debian
packages by scripts/docker/standin-images.sh when run as root with debootstrap, and it says so.
  --modes LIST   which modes, in order (default jwt,jwt-eddsa,memory,redis,postgres,cookie; jwt-eddsa is jwt
                 mode with JWT_SIGNING=eddsa: the issuer service signs, and a key rotation is tried)
  --keep         leave the stack running at the end (tear down with the printed command)`

const PROJECT = 'auth-cluster-smoke'
const IMAGE = 'auth-cluster:latest'
// The fixed ports of docker/compose.host-network.yml; the balancer's is chosen here.
const FIXED_PORTS = { redis: 6380, postgres: 5433, 'app-1': 3001, 'app-2': 3002, 'app-3': 3003, issuer: 3100, nginx: 8081 }
const SERVERS = ['app-1', 'app-2', 'app-3']
// docker-compose.yml's volume for the JWT secret, as Compose names it in this project.
const SECRET_VOLUME = `${PROJECT}_jwt-secret`

/** What a smoke run brings the stack up in: an AUTH_MODE, or jwt with JWT_SIGNING=eddsa. */
type SmokeMode = AuthMode | 'jwt-eddsa'
const SMOKE_MODES: readonly SmokeMode[] = [...AUTH_MODES, 'jwt-eddsa']
const DEFAULT_MODES: readonly SmokeMode[] = ['jwt', 'jwt-eddsa', 'memory', 'redis', 'postgres', 'cookie']
/** The AUTH_MODE a smoke mode runs, which /health and /login report. */
const authModeOf = (mode: SmokeMode): AuthMode => mode === 'jwt-eddsa' ? 'jwt' : mode

// ---- the stack ----------------------------------------------------------------------------

interface Stack {
  /** compose with the project, files and env of this run, for any subcommand. */
  compose (args: string[], options?: RunOptions & { mode?: SmokeMode }): Promise<Run>
  balancerUrl: string
}

async function prepareStack (compose: { command: string[], major: number }, work: string): Promise<Stack> {
  const balancerPort = (await isPortFree(8080)) ? 8080 : await freePort()
  const envFile = join(work, 'smoke.env')
  // The quick start's .env (cp .env.example .env), not the user's: no JWT secret, so keygen makes
  // one. Only what this run must change: a free port, and quieter logs.
  // JWKS_REFRESH_SECONDS short, so a key rotation in eddsa mode is over in seconds.
  const changes: Record<string, string> = { BALANCER_PORT: String(balancerPort), LOG_LEVEL: 'warn', SESSION_TTL_SECONDS: '600', JWKS_REFRESH_SECONDS: '2' }
  writeFileSync(envFile, readFileSync(join(root, '.env.example'), 'utf8').split('\n')
    .map((line) => {
      const name = line.slice(0, line.indexOf('='))
      return /^[A-Z_]+=/.test(line) && name in changes ? `${name}=${changes[name] ?? ''}` : line
    }).join('\n'))
  const files = ['-f', join(root, 'docker-compose.yml'), '-f', join(root, 'docker/compose.host-network.yml')]
  const [command, ...prefix] = compose.command as [string, ...string[]]
  const base = [...prefix, '--env-file', envFile, '-p', PROJECT]
  // Every later command (nginx, ps, down) keeps the mode of the last `up`, or Compose would
  // see the app servers' configuration change and recreate them.
  let currentMode: SmokeMode = 'jwt'
  const envFor = (mode: SmokeMode | undefined): NodeJS.ProcessEnv => {
    if (mode !== undefined) currentMode = mode
    const env = { ...process.env }
    // The shell's value would win over the env file's: none of the app servers' settings (Compose
    // passes them all, e.g. a JWT_SECRETS beside our JWT_SECRET would stop every server) or ports.
    for (const name of [...Object.keys(ServerEnvSchema.properties), ...Object.keys(IssuerEnvSchema.properties), 'BALANCER_PORT', 'NGINX_PORT']) delete env[name]
    env.AUTH_MODE = authModeOf(currentMode)
    env.JWT_SIGNING = currentMode === 'jwt-eddsa' ? 'eddsa' : 'hs256'
    return env
  }

  if (compose.major >= 2) {
    return {
      balancerUrl: `http://127.0.0.1:${balancerPort}`,
      compose: async (args, options = {}) => await run(command, [...base, ...files, ...args], { ...options, env: envFor(options.mode) })
    }
  }

  // Compose v1 (1.28 and later) refuses published ports under host networking, where v2 only
  // warns, and has no `!reset` to drop them: merge the two files with `config`, drop `ports`
  // from host-network services, and run that.
  notes.push('Compose v1: the two files were merged with `docker-compose config` and the published ports (meaningless under host networking) dropped, as v1 refuses them')
  return {
    balancerUrl: `http://127.0.0.1:${balancerPort}`,
    compose: async (args, options = {}) => {
      const env = envFor(options.mode)
      const merged = await run(command, [...base, ...files, 'config'], { env, echo: false, pastDeadline: options.pastDeadline })
      if (merged.code !== 0) return merged
      const doc = parse(merged.stdout) as { services: Record<string, Record<string, unknown>> }
      for (const service of Object.values(doc.services)) if (service.network_mode === 'host') delete service.ports
      const file = join(work, 'merged.json')
      // JSON is YAML, and unlike a YAML 1.2 dump it cannot turn "no" into false for v1's parser.
      writeFileSync(file, JSON.stringify(doc, null, 1))
      return await run(command, [...base, '-f', file, '--project-directory', root, ...args], { ...options, env })
    }
  }
}

async function containerOf (stack: Stack, service: string): Promise<string> {
  return (await stack.compose(['ps', '-q', service], { echo: false })).stdout.trim().split('\n')[0] ?? ''
}

/** Up (or recreated in a new mode), and the balancer sees three healthy servers in that mode. */
async function upInMode (stack: Stack, mode: SmokeMode): Promise<boolean> {
  const up = await stack.compose(['up', '-d', '--no-build'], { mode, timeoutMs: 420_000 })
  if (!check(`[${mode}] compose up`, up.code === 0, tail(up.stderr))) return false
  const ready = await waitFor(`three healthy servers in ${mode} mode`, async () => {
    const stats = await http(`${stack.balancerUrl}/_balancer/stats`)
    const upstreams = (stats.body.upstreams ?? []) as Array<{ healthy: boolean }>
    if (upstreams.length !== 3 || !upstreams.every((u) => u.healthy)) return false
    const seen = new Set<string>()
    for (let i = 0; i < 3; i++) {
      const health = await http(`${stack.balancerUrl}/health`)
      if (health.status !== 200 || health.body.mode !== authModeOf(mode)) return false
      seen.add(health.servedBy)
    }
    return seen.size === 3
  }, 240_000)
  return check(`[${mode}] the balancer reports three healthy app servers, all in ${mode} mode`, ready)
}

async function checkMode (stack: Stack, mode: SmokeMode): Promise<void> {
  const url = stack.balancerUrl
  const login = await http(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'wonderland' }) })
  const token = String(login.body.token ?? '')
  check(`[${mode}] POST /login through the balancer: 200, mode ${authModeOf(mode)}, a token and an HttpOnly cookie`,
    login.status === 200 && login.body.mode === authModeOf(mode) && token !== '' && /HttpOnly/i.test(login.headers.get('set-cookie') ?? ''),
    `${login.status} ${JSON.stringify(login.body)}`)

  const replies: Reply[] = []
  for (let i = 0; i < 9; i++) replies.push(await http(`${url}/feeds`, { headers: { authorization: `Bearer ${token}` } }))
  const order = replies.map((r) => r.servedBy)
  const counts = new Map<string, number>()
  for (const id of order) counts.set(id, (counts.get(id) ?? 0) + 1)
  check(`[${mode}] x-served-by rotates over app-1, app-2, app-3 (3 each of 9)`,
    SERVERS.every((id) => counts.get(id) === 3) && order.slice(0, 3).every((id, i) => order[i + 3] === id && order[i + 6] === id),
    `order: ${order.join(' ')}`)

  const ok = replies.filter((r) => r.status === 200)
  const refused = replies.filter((r) => r.status === 401)
  if (mode === 'memory') {
    check('[memory] 2 of 3 GET /feeds refused: 3 × 200 from the login server, 6 × 401 unknown_session',
      ok.length === 3 && refused.length === 6 && ok.every((r) => r.servedBy === login.servedBy) && refused.every((r) => r.body.reason === 'unknown_session'),
      replies.map((r) => `${r.servedBy}:${r.status}`).join(' '))
  } else {
    check(`[${mode}] every GET /feeds succeeds, on every server`, ok.length === 9 && ok.every((r) => r.body.user !== undefined),
      replies.map((r) => `${r.servedBy}:${r.status}`).join(' '))
  }
  // The auth cookie (in eddsa mode the refresh cookie, for /token, comes too).
  const cookie = login.headers.getSetCookie().find((c) => c.startsWith('auth='))?.split(';')[0] ?? ''
  const byCookie = await http(`${url}/feeds`, { headers: { cookie } })
  check(`[${mode}] the cookie works as well as the header`, mode === 'memory' ? [200, 401].includes(byCookie.status) : byCookie.status === 200, `${byCookie.status}`)
  const logout = await http(`${url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  check(`[${mode}] POST /logout: 204`, logout.status === 204, `${logout.status}`)
}

/**
 * The one part of DNS discovery host networking can show: the image's balancer, given
 * UPSTREAMS_DNS, resolves the name inside its container (here through an /etc/hosts entry,
 * as there is no Docker DNS) and sends traffic to what it found.
 */
async function checkDnsDiscovery (cleanup: Array<() => Promise<unknown>>): Promise<void> {
  const port = await freePort()
  const started = await run('docker', ['run', '-d', '--rm', '--network', 'host', '--add-host', 'app:127.0.0.1',
    '-e', 'UPSTREAMS_DNS=app:3001', '-e', 'HOST=127.0.0.1', '-e', `PORT=${port}`, '-e', 'LOG_LEVEL=warn', IMAGE, 'node', 'balancer/server.ts'], { timeoutMs: 60_000 })
  const id = started.stdout.trim()
  if (id !== '') cleanup.push(async () => await run('docker', ['rm', '-f', id], { echo: false, timeoutMs: 60_000, pastDeadline: true }))
  let last = ''
  const found = started.code === 0 && await waitFor('the DNS-discovering balancer', async () => {
    const health = await http(`http://127.0.0.1:${port}/health`)
    last = `${health.status} ${health.servedBy}`
    return health.status === 200 && health.servedBy === 'app-1'
  }, 60_000)
  check('UPSTREAMS_DNS in a container: a balancer given app:3001 finds app-1 by name', found, `${started.stderr.trim()} last answer: ${last}`)
}

async function checkNginx (stack: Stack): Promise<void> {
  const up = await stack.compose(['--profile', 'nginx', 'up', '-d', '--no-build', 'nginx'], { timeoutMs: 180_000 })
  if (!check('[nginx profile] compose up nginx', up.code === 0, tail(up.stderr))) return
  const url = `http://127.0.0.1:${FIXED_PORTS.nginx}`
  const seen = new Set<string>()
  const ready = await waitFor('nginx to answer', async () => {
    const health = await http(`${url}/health`)
    if (health.status === 200) seen.add(health.servedBy)
    return seen.size === 3
  }, 60_000)
  check('[nginx profile] nginx on 8081 spreads GET /health over the three app servers', ready, `seen: ${[...seen].join(' ')}`)
}

async function checkBench (stack: Stack): Promise<void> {
  if (!existsSync(join(root, 'scripts/compare.ts'))) {
    notes.push('bench profile not run: scripts/compare.ts does not exist yet')
    return
  }
  const bench = await stack.compose(['--profile', 'bench', 'run', '--rm', '--no-deps', 'bench',
    'node', 'scripts/compare.ts', '--url', stack.balancerUrl, '--duration', '1', '--warmup', '0', '--wear-in', '0', '--connections', '4', '--sessions', '0'], { timeoutMs: 180_000 })
  check('[bench profile] the comparison runs against the running cluster, from a container', bench.code === 0, tail(bench.stdout + bench.stderr))
}

async function checkGracefulStop (stack: Stack): Promise<void> {
  const id = await containerOf(stack, 'app-2')
  const started = Date.now()
  const stop = await run('docker', ['stop', '-t', '10', id], { timeoutMs: 30_000 })
  const seconds = (Date.now() - started) / 1000
  const exit = await run('docker', ['inspect', '--format', '{{.State.ExitCode}}', id], { echo: false })
  check('SIGTERM (docker stop) reaches node through tini: app-2 exits 0 within 5 s',
    stop.code === 0 && exit.stdout.trim() === '0' && seconds < 5, `exit ${exit.stdout.trim()} after ${seconds.toFixed(1)} s`)
}

/** What the volume keygen fills holds: its owner, mode and a digest of the secret (never the secret). */
async function secretFile (): Promise<string> {
  const r = await run('docker', ['run', '--rm', '--network', 'none', '-v', `${SECRET_VOLUME}:/s:ro`, IMAGE,
    'sh', '-c', 'stat -c "%U %a" /s/jwt-secret && sha256sum < /s/jwt-secret'], { echo: false, timeoutMs: 60_000 })
  return r.code === 0 ? r.stdout.trim().replace(/\s+-$/, '') : `(could not read: ${r.stderr.trim()})`
}

/** After the first `up`: keygen made a secret only the user node can read, and the servers sign with it. */
async function checkSecretMade (): Promise<string> {
  const file = await secretFile()
  check('keygen made the cluster\'s JWT secret in its volume, owned by node, mode 600', /^node 600\n[0-9a-f]{64}$/.test(file), file)
  return file
}

/** After every mode's `up`: the same secret, so tokens outlive a restart of the stack. */
async function checkSecretKept (first: string, ups: number): Promise<void> {
  const now = await secretFile()
  check(`the JWT secret survived ${ups} \`up\`s that recreated the app servers (keygen keeps it)`, now === first, `first: ${first}\nnow: ${now}`)
}

/** A server given a secret published with the code does not start, and says what to do. */
async function checkPublishedSecretRefused (): Promise<void> {
  const demo = [...PUBLISHED_JWT_SECRETS.keys()][0] ?? ''
  const r = await run('docker', ['run', '--rm', '--network', 'none', '-e', 'AUTH_MODE=jwt', '-e', `JWT_SECRET=${demo}`, IMAGE], { echo: false, timeoutMs: 60_000 })
  check('a server given .env.example\'s old demo secret refuses to start and says how to make one',
    r.code === 1 && /JWT_SECRET is published in this repository/.test(r.stderr) && r.stderr.includes('openssl rand -base64 48') && !r.stderr.includes(demo),
    `exit ${r.code}: ${r.stderr.trim()}`)
}

async function checkImage (): Promise<void> {
  const r = await run('docker', ['image', 'inspect', '--format', '{{json .Config}}', IMAGE], { echo: false })
  const config = JSON.parse(r.stdout || '{}') as { User?: string, Entrypoint?: string[], Healthcheck?: { Test?: string[] } }
  check('the image runs as the non-root user node', config.User === 'node', `User: ${String(config.User)}`)
  check('the image starts under tini', config.Entrypoint?.[0] === '/usr/bin/tini', `Entrypoint: ${JSON.stringify(config.Entrypoint)}`)
  check('the image has a HEALTHCHECK run by node', config.Healthcheck?.Test?.[1] === 'node', `Healthcheck: ${JSON.stringify(config.Healthcheck)}`)
}

// ---- main ---------------------------------------------------------------------------------

async function main (): Promise<number> {
  const { values } = parseArgs({ options: { modes: { type: 'string', default: DEFAULT_MODES.join(',') }, keep: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } })
  if (values.help) {
    log(USAGE)
    return 0
  }
  const modes = values.modes.split(',').map((m) => m.trim())
  const unknown = modes.filter((m) => !(SMOKE_MODES as readonly string[]).includes(m))
  if (unknown.length > 0) throw new UsageError(`--modes: unknown ${unknown.join(', ')}; choose from ${SMOKE_MODES.join(', ')}`)

  const engine = await findEngine()
  const compose = await findCompose()
  log(`Docker engine ${engine}; Compose ${compose.version} (${compose.command.join(' ')})`)
  await ensureBaseImages()

  const builder = await findBuilder()
  const started = Date.now()
  const build = await run(builder.docker, ['build', '--network', 'host', '-t', IMAGE, '.'], { env: builder.env, timeoutMs: 600_000 })
  if (!check(`docker build (${Math.round((Date.now() - started) / 1000)} s)`, build.code === 0, tail(build.stdout + build.stderr, 30))) return 1
  await checkImage()
  await checkPublishedSecretRefused()

  const taken = []
  for (const [name, port] of Object.entries(FIXED_PORTS)) if (!(await isPortFree(port))) taken.push(`${name} ${port}`)
  if (!check('the host-network override\'s fixed ports are free on 127.0.0.1', taken.length === 0, `taken: ${taken.join(', ')}`)) return 1

  const work = mkdtempSync(join(tmpdir(), 'auth-cluster-docker-'))
  const stack = await prepareStack(compose, work)
  notes.push('ran with docker/compose.host-network.yml: host networking, three app services on fixed ports, a fixed UPSTREAMS list; Docker\'s DNS and --scale were not exercised (UPSTREAMS_DNS only through an /etc/hosts entry)')
  // Containers started outside compose, removed with the stack.
  const cleanup: Array<() => Promise<unknown>> = []
  let interrupted = false
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true
    log(`\n${signal}: stopping, then tearing the stack down`)
    for (const child of running) child.kill('SIGTERM')
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    let secret: string | undefined
    let ups = 0
    for (const mode of modes as SmokeMode[]) {
      if (interrupted || Date.now() > DEADLINE) break
      const up = await upInMode(stack, mode)
      ups++
      if (secret === undefined) secret = await checkSecretMade()
      else await checkSecretKept(secret, ups)
      if (up) await checkMode(stack, mode)
      if (up && mode === 'jwt-eddsa') await checkEddsa({ compose: stack.compose, balancerUrl: stack.balancerUrl, image: IMAGE, project: PROJECT })
    }
    if (!interrupted) await checkDnsDiscovery(cleanup)
    if (!interrupted) await checkNginx(stack)
    if (!interrupted) await checkBench(stack)
    if (!interrupted) await checkGracefulStop(stack)
    if (interrupted || Date.now() > DEADLINE) check('finished within the time budget, uninterrupted', false)
  } catch (err) {
    check('the smoke test ran to the end', false, (err as Error).stack ?? String(err))
  } finally {
    if (outcomes.some((o) => !o.ok)) {
      const logs = await stack.compose(['logs', '--no-color', '--tail', '30'], { echo: false, timeoutMs: 30_000, pastDeadline: true })
      log(`\nlast log lines of the stack:\n${tail(logs.stdout, 120)}`)
    }
    for (const undo of cleanup) await undo()
    if (values.keep) {
      log(`\n--keep: the stack is still up (project ${PROJECT}); its env file is in ${work}`)
    } else {
      const down = await stack.compose(['down', '--volumes', '--remove-orphans', '--timeout', '5'], { timeoutMs: 120_000, pastDeadline: true })
      check('compose down: every container and network removed', down.code === 0, tail(down.stderr))
      rmSync(work, { recursive: true, force: true })
    }
  }
  return outcomes.every((o) => o.ok) ? 0 : 1
}

function summary (line: string): void {
  if (notes.length > 0) log(`\nnotes:\n${notes.map((n) => `  - ${n}`).join('\n')}`)
  log(`\n${line}`)
}

try {
  process.exitCode = await main()
  const failed = outcomes.filter((o) => !o.ok).length
  summary(`test:docker: ${outcomes.length - failed} passed, ${failed} failed`)
} catch (err) {
  if (err instanceof UsageError) {
    log(`${err.message}\n\n${USAGE}`)
    process.exitCode = 2
  } else if (err instanceof Skip) {
    summary(`test:docker: SKIPPED, not run: ${err.message}`)
    process.exitCode = 77
  } else {
    log((err as Error).stack ?? String(err))
    const failed = outcomes.filter((o) => !o.ok).length + 1
    summary(`test:docker: ${outcomes.length + 1 - failed} passed, ${failed} failed`)
    process.exitCode = 1
  }
}
