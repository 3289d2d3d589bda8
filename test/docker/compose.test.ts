/* eslint-disable no-template-curly-in-string -- these strings are Compose's ${...} syntax, not template literals */
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { ServerEnvSchema } from '../../services/config.ts'
import { IssuerEnvSchema } from '../../services/issuer/config.ts'
import { composeProblems, dependsOnProblems, environmentProblems, interpolationProblems, parseCompose, schemaProblems, type ComposeFile, type ProcessVariables } from './compose-checks.ts'

const execFileAsync = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const read = (path: string): string => readFileSync(join(root, path), 'utf8')
const composeText = read('docker-compose.yml')
const compose = parseCompose(composeText)
const hostNetworkText = read('docker/compose.host-network.yml')

/** Every variable the app server reads (services/config.ts), with its own default. */
const serverReads: ProcessVariables = Object.fromEntries(Object.entries(ServerEnvSchema.properties)
  .map(([name, schema]) => [name, (schema as { default?: unknown }).default === undefined ? undefined : String((schema as { default?: unknown }).default)]))
/** Every variable the issuer reads (services/issuer/config.ts), with its own default. */
const issuerReads: ProcessVariables = Object.fromEntries(Object.entries(IssuerEnvSchema.properties)
  .map(([name, schema]) => [name, (schema as { default?: unknown }).default === undefined ? undefined : String((schema as { default?: unknown }).default)]))
/** What Compose deliberately does not pass the app servers, and why (docker-compose.yml says so too). */
const SERVER_LEFT_OUT = {
  SERVER_ID: 'each replica defaults to its container hostname, unique per replica',
  HOST: 'the image sets 0.0.0.0 (the host-network override, 127.0.0.1)',
  REDIS_KEY_PREFIX: 'the stack\'s Redis serves this stack alone'
}

t.test('docker-compose.yml passes the Compose Specification schema and the other checks', async (t) => {
  t.same(composeProblems(composeText), [])
})

t.test('the host-network override passes, layered on docker-compose.yml', async (t) => {
  t.same(composeProblems(hostNetworkText, [compose]), [])
  const override = parseCompose(hostNetworkText)
  for (const [name, service] of Object.entries(override.services ?? {})) {
    t.equal(service.network_mode, 'host', `${name} uses the host's network`)
  }
})

t.test('the deliberately broken file fails, and every fault is named', async (t) => {
  const problems = composeProblems(read('test/docker/fixtures/broken-compose.yml'))
  const expected = [
    /services\.redis: must NOT have additional properties \("helthcheck"\)/,
    /services\.app\.ports: must be array/,
    /services\.app\.healthcheck\.interval: must be string/,
    /services\.app\.depends_on: no service named "cache"/,
    /services\.app\.depends_on: "nginx" only starts with profile nginx, but app always starts/,
    /services\.app\.environment\.JWT_SECRET: "\$\{" at 0 is never closed/,
    /services\.app\.environment\.AUTH_MODE: "\$\{AUTH MODE\}": after the name comes/,
    /services\.app\.environment\.PRICE: a "\$" at 6 starts no variable/
  ]
  for (const pattern of expected) t.ok(problems.some((p) => pattern.test(p)), `reported: ${pattern.source}`)
})

t.test('schema: what Compose would refuse', async (t) => {
  const broken = (mutate: (doc: Record<string, any>) => void): string[] => {
    const doc = structuredClone(compose) as Record<string, any>
    mutate(doc)
    return schemaProblems(doc)
  }
  t.match(broken((d) => { d.services.app.ports = 'oops' }), [/^services\.app\.ports: must be array/])
  t.match(broken((d) => { d.services.balancer.healthcheck.interval = 2 }), [/^services\.balancer\.healthcheck\.interval: must be string/])
  t.match(broken((d) => { d.servics = d.services }), [/^\(top level\): must NOT have additional properties \("servics"\)/])
  const condition = broken((d) => { d.services.redis.depends_on = { app: { condition: 'service_ready' } } })
  t.ok(condition.some((p) => /^services\.redis\.depends_on\.app\.condition: must be equal to one of the allowed values/.test(p)), 'an unknown condition')
})

t.test('depends_on: targets, self, profiles, and layering', async (t) => {
  t.same(dependsOnProblems({ services: { a: { depends_on: ['b'] }, b: {} } }), [])
  t.match(dependsOnProblems({ services: { a: { depends_on: ['a'] } } }), [/cannot depend on itself/])
  t.match(dependsOnProblems({ services: { a: { depends_on: { b: {} } } } }), [/no service named "b"/])
  t.same(dependsOnProblems({ services: { a: { depends_on: ['b'] } } }, [{ services: { b: {} } }]), [], 'b is in the base file')
  t.same(dependsOnProblems({ services: { a: { profiles: ['x'], depends_on: ['b'] }, b: { profiles: ['x'] } } }), [], 'both under a profile')
})

t.test('interpolation: what is well formed', async (t) => {
  const check = (value: string): string[] => interpolationProblems({ v: value }).problems
  for (const good of ['plain', '$$literal', '$NAME', 'a${NAME}b', '${A:-x}', '${A-x}', '${A:?msg with spaces}', '${A?m}', '${A:+y}', '${A+y}', '${A:-${B:-c}}', '${A:-$$}', '127.0.0.1:${P:-8080}:8080']) {
    t.same(check(good), [], good)
  }
  for (const bad of ['${A', '${}', '${1A}', '${A:x}', '${A!}', '$', 'a $ b', '$5', '${A:-${B}', '${A:-$}']) {
    t.not(check(bad).length, 0, bad)
  }
  t.same([...interpolationProblems(compose).names].sort(), [
    'ACCESS_TTL_SECONDS', 'AUTH_MODE', 'BALANCER_PORT', 'BALANCER_THREADS', 'COOKIE_SECRET', 'COOKIE_SECRETS', 'JWKS_COOLDOWN_SECONDS', 'JWKS_REFRESH_SECONDS', 'JWT_CLOCK_TOLERANCE_SECONDS',
    'JWT_REVOCATION', 'JWT_SECRET', 'JWT_SECRETS', 'JWT_SIGNING', 'LOGIN_MAX_FAILURES_PER_ACCOUNT', 'LOGIN_MAX_FAILURES_PER_ADDRESS', 'LOGIN_THROTTLE_STORE',
    'LOGIN_THROTTLE_WINDOW_SECONDS', 'LOG_LEVEL', 'MAX_MEMORY_SESSIONS', 'NGINX_PORT', 'PG_POOL_SIZE', 'PG_QUERY_TIMEOUT_MS', 'REDIS_COMMAND_TIMEOUT_MS',
    'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_WAIT_REPLICAS', 'REDIS_WAIT_TIMEOUT_MS',
    'REFRESH_IDLE_SECONDS', 'REFRESH_TTL_SECONDS', 'SESSION_CACHE', 'SESSION_CACHE_INVALIDATION', 'SESSION_CACHE_MAX_ENTRIES', 'SESSION_CACHE_TTL_SECONDS',
    'SESSION_IDLE_SECONDS', 'SESSION_RENEW_EVERY_SECONDS', 'SESSION_TTL_SECONDS', 'TRUST_PROXY'
  ])
})

t.test('every variable the app server reads is passed to it, defaulting to its own default', async (t) => {
  t.same(environmentProblems(compose, 'services/server.ts', serverReads, SERVER_LEFT_OUT), [], 'docker-compose.yml')
  t.same(environmentProblems(parseCompose(hostNetworkText), 'services/server.ts', serverReads, SERVER_LEFT_OUT, [compose]), [], 'the host-network override: app, app-2 and app-3')
  for (const name of Object.keys(SERVER_LEFT_OUT)) t.ok(name in serverReads, `${name}, left out on purpose, is still one the server reads`)
})

t.test('every variable the issuer reads is passed to it, defaulting to its own default', async (t) => {
  t.same(environmentProblems(compose, 'services/issuer/server.ts', issuerReads, SERVER_LEFT_OUT), [], 'docker-compose.yml')
  t.same(environmentProblems(parseCompose(hostNetworkText), 'services/issuer/server.ts', issuerReads, SERVER_LEFT_OUT, [compose]), [], 'the host-network override')
})

t.test('environment check: what it catches', async (t) => {
  const reads = { A: '1', B: 'x,y', S: undefined, L: undefined }
  const check = (environment: unknown, leftOut: Record<string, string> = { L: 'why' }): string[] =>
    environmentProblems({ services: { app: { command: ['node', 'services/server.ts'], environment }, other: { command: ['node', 'balancer/server.ts'] } } }, 'services/server.ts', reads, leftOut)
  t.same(check({ A: '${A:-1}', B: '${B-x,y}', S: '${S:-}' }), [], 'every one passed, with the right defaults')
  t.same(check(['A=2', 'B=${B:-x,y}', 'S=${S:?say it}']), [], 'the list form; a fixed value; no default to compare')
  t.match(check({ A: '${A:-1}', S: '${S:-}' }), [/^services\.app\.environment: B is not passed, but services\/server\.ts reads it/], 'a variable dropped')
  t.match(check({ A: '${A:-1}', B: '${B:-x,y}', S: '${S:-}' }, {}), [/L is not passed/], 'nothing left out without a reason')
  t.match(check({ A: '${A:-10}', B: '${B:-x,y}', S: '${S:-}' }), [/^services\.app\.environment\.A: defaults to "10", but services\/server\.ts's own default is "1"/], 'a default that is not the server\'s')
  t.match(check({ A: '${A:-1}', B: '${B:-x,y}', S: '${S:-secret}' }), [/S: defaults to "secret", but .* own default is none/])
  t.same(check({ A: '${OTHER:-9}', B: 'fixed', S: '${S:-}' }), [], 'another variable\'s default is not compared')
  t.match(environmentProblems({ services: { app: { command: ['node', 'x.ts'] } } }, 'services/server.ts', reads), [/no service runs services\/server\.ts/], 'no vacuous pass')
  // An override's app service inherits what the base passes; a service of its own does not.
  const base = { services: { app: { command: ['node', 'services/server.ts'], environment: { A: '1', B: '2', S: '' } } } }
  t.same(environmentProblems({ services: { app: { environment: { A: '3' } } } }, 'services/server.ts', reads, { L: 'why' }, [base]), [])
  t.match(environmentProblems({ services: { 'app-2': { command: ['node', 'services/server.ts'], environment: { A: '3' } } } }, 'services/server.ts', reads, { L: 'why' }, [base]), [/app-2\.environment: B is not passed/, /app-2\.environment: S is not passed/])
})

t.test('.env.example explains every variable the compose files read, each set to the server\'s default', async (t) => {
  const example = read('.env.example')
  const defined = new Map(example.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  const used = new Set([...interpolationProblems(compose).names, ...interpolationProblems(parseCompose(hostNetworkText)).names])
  for (const name of used) t.ok(defined.has(name), `${name} is in .env.example`)
  for (const name of defined.keys()) {
    t.match(example, new RegExp(`#[^\\n]*\\n(#[^\\n]*\\n)*${name}=`), `${name} has a comment above it`)
  }
  for (const [name, value] of defined) {
    if (name in serverReads) t.equal(value, serverReads[name] ?? '', `${name}=${value} is the server's own default`)
    else if (name in issuerReads) t.equal(value, issuerReads[name] ?? '', `${name}=${value} is the issuer's own default`)
  }
})

t.test('no JWT secret is written in the compose files or .env.example: keygen makes one per cluster', async (t) => {
  const example = read('.env.example')
  t.match(example, /^JWT_SECRET=$/m, '.env.example leaves JWT_SECRET empty')
  t.match(example, /^JWT_SECRETS=$/m, 'and JWT_SECRETS')
  const secretsIn = (doc: ComposeFile): string[] => Object.entries(doc.services ?? {}).flatMap(([name, service]) => {
    const environment = service.environment as Record<string, unknown> | undefined
    return ['JWT_SECRET', 'JWT_SECRETS'].filter((variable) => environment?.[variable] !== undefined)
      .map((variable) => `${name}.${variable}=${String(environment?.[variable])}`)
  })
  const passed = [...secretsIn(compose), ...secretsIn(parseCompose(hostNetworkText))]
  t.ok(passed.length >= 4, `${passed.length} places pass a secret variable`)
  for (const entry of passed) t.match(entry, /=\$\{JWT_SECRETS?:-\}$/, `${entry.split('=')[0] ?? ''}: only from the user's environment, empty by default`)
})

t.test('cookie mode\'s key the same way: keygen makes it beside the JWT secret, the app servers read that file unless the user sets one, and none is written here', async (t) => {
  const example = read('.env.example')
  t.match(example, /^COOKIE_SECRET=$/m, '.env.example leaves COOKIE_SECRET empty')
  t.match(example, /^COOKIE_SECRETS=$/m, 'and COOKIE_SECRETS')
  const s = compose.services ?? {}
  const command = (s.keygen as { command: string[] }).command
  const [, mountedAt] = String(((s.keygen as { volumes?: string[] }).volumes)?.[0] ?? '').split(':')
  const file = command.find((arg) => arg.endsWith('/cookie-secret'))
  t.ok(file?.startsWith(`${mountedAt ?? '?'}/`), `keygen writes ${file ?? 'no cookie key'} into its volume too`)
  t.not(file, command[2], 'a file of its own: the cookie key is not the JWT secret')
  const override = parseCompose(hostNetworkText)
  const apps = [['docker-compose.yml app', s.app?.environment], ...Object.entries(override.services ?? {})
    .filter(([name]) => name.startsWith('app')).map(([name, service]) => [`override ${name}`, { ...(name === 'app' ? s.app?.environment as object : {}), ...(service.environment as object) }])] as Array<[string, Record<string, unknown>]>
  t.equal(apps.length, 4)
  for (const [name, environment] of apps) {
    t.match(environment, { COOKIE_SECRET_FILE: file, COOKIE_SECRET: '${COOKIE_SECRET:-}', COOKIE_SECRETS: '${COOKIE_SECRETS:-}' }, `${name}: the file, unless COOKIE_SECRET or COOKIE_SECRETS is set, empty by default`)
  }
})

t.test('docs/configuration.md\'s table names every variable the app server reads', async (t) => {
  const page = read('docs/configuration.md')
  const section = page.slice(page.indexOf('## Environment'), page.indexOf('\n## ', page.indexOf('## Environment') + 1))
  for (const name of Object.keys(serverReads)) t.match(section, `| \`${name}\` |`, name)
})

t.test('the services the issue asks for', async (t) => {
  const s = compose.services ?? {}
  t.same(Object.keys(s).sort(), ['app', 'balancer', 'bench', 'issuer', 'issuer-keygen', 'keygen', 'nginx', 'postgres', 'redis', 'redis-replica', 'sentinel-1', 'sentinel-2', 'sentinel-3'])
  t.match(s.app, { deploy: { replicas: 3 }, depends_on: { redis: { condition: 'service_healthy' }, postgres: { condition: 'service_healthy' } } })
  t.notOk('container_name' in (s.app ?? {}), 'no container_name: replicas need their own names')
  t.match(s.app?.environment, { AUTH_MODE: '${AUTH_MODE:-jwt}', JWT_SECRET: '${JWT_SECRET:-}', JWT_SECRETS: '${JWT_SECRETS:-}' })
  t.match(s.balancer, { environment: { UPSTREAMS_DNS: 'app:3000' }, depends_on: { app: { condition: 'service_healthy' } }, ports: [/:8080$/] })
  t.match(s.app?.environment, { JWT_SIGNING: '${JWT_SIGNING:-hs256}', JWKS_URL: 'http://issuer:3100/.well-known/jwks.json' })
  t.match(s.redis, { image: /^redis:7/, healthcheck: { test: ['CMD', 'redis-cli', 'ping'] } })
  t.match(s.postgres, { image: /^postgres:18/, healthcheck: { test: ['CMD', 'pg_isready', '-U', 'postgres', '-d', 'sessions'] } })
  t.match(s.app?.environment, { DATABASE_URL: 'postgres://postgres@postgres:5432/sessions' }, 'the app servers reach it by its service name')
  t.notOk('ports' in (s.postgres ?? {}), 'it publishes no port: it trusts whoever connects')
  t.match(s.bench, { profiles: ['bench'] })
  t.match(s.nginx, { profiles: ['nginx'], image: /^nginx:/ })
})

t.test('keygen makes the JWT secret before any app server starts, and they read it from its volume', async (t) => {
  const s = compose.services ?? {}
  const keygen = s.keygen as Record<string, unknown>
  t.match(keygen, { image: 'auth-cluster:latest', command: ['node', 'scripts/make-secret.ts', String] })
  t.notOk('profiles' in keygen, 'it starts with every `up`, as the app servers do')
  t.notOk('restart' in keygen, 'a one-shot: it runs, writes or keeps the file, and exits')
  const file = (keygen.command as string[])[2] ?? ''
  const [volume, mountedAt] = String((keygen.volumes as string[] | undefined)?.[0] ?? '').split(':')
  t.ok(file.startsWith(`${mountedAt ?? '?'}/`), `it writes ${file} into the volume ${volume ?? '?'}`)
  t.ok(volume !== undefined && volume in ((compose.volumes ?? {}) as Record<string, unknown>), 'a named volume: the secret outlives the containers')
  t.match(read('Dockerfile'), `chown node:node ${mountedAt ?? '?'}`, 'the image makes the mount point the user node\'s, so a new volume is writable by keygen')

  // The app servers, in the base file and in the host-network override (app, app-2, app-3).
  const override = parseCompose(hostNetworkText)
  const apps = [['docker-compose.yml app', s.app], ...Object.entries(override.services ?? {})
    .filter(([name]) => name.startsWith('app')).map(([name, service]) => [`override ${name}`, name === 'app' ? { ...s.app, ...service, environment: { ...(s.app?.environment as object), ...(service.environment as object) } } : service])] as Array<[string, Record<string, unknown>]>
  t.equal(apps.length, 4)
  for (const [name, app] of apps) {
    t.match(app.depends_on, { keygen: { condition: 'service_completed_successfully' } }, `${name} waits for keygen to finish`)
    t.same(app.volumes, [`${volume ?? '?'}:${mountedAt ?? '?'}:ro`], `${name} mounts the volume read-only`)
    t.match(app.environment, { JWT_SECRET_FILE: file, JWT_SECRET: '${JWT_SECRET:-}' }, `${name} reads the file, unless JWT_SECRET or JWT_SECRETS is set`)
  }
  t.match(override.services?.keygen, { network_mode: 'host' })
})

t.test('eddsa: the issuer\'s keys in a volume only the issuer services mount; the balancer routes its paths only with JWT_SIGNING=eddsa', async (t) => {
  const s = compose.services ?? {}
  const override = parseCompose(hostNetworkText)
  const keygen = s['issuer-keygen'] as Record<string, unknown>
  t.match(keygen, { command: ['node', 'scripts/make-issuer-key.ts', '/var/lib/auth-cluster-issuer'], network_mode: 'none' })
  const mounts = (service: Record<string, unknown> | undefined): string[] => ((service?.volumes ?? []) as string[]).map((v) => String(v).split(':')[0] ?? '')
  const holders = Object.entries({ ...s, ...override.services }).filter(([name]) => mounts({ ...s[name], ...override.services?.[name] }).includes('issuer-keys')).map(([name]) => name).sort()
  t.same(holders, ['issuer', 'issuer-keygen'], 'no app server, no balancer, no bench mounts the issuer\'s keys')
  t.ok('issuer-keys' in ((compose.volumes ?? {}) as Record<string, unknown>), 'a named volume: the keys outlive the containers')
  t.match(s.issuer, { command: ['node', 'services/issuer/server.ts'], environment: { ISSUER_KEYS_DIR: '/var/lib/auth-cluster-issuer', PORT: '3100' }, depends_on: { 'issuer-keygen': { condition: 'service_completed_successfully' }, redis: { condition: 'service_healthy' } } })
  t.match(read('Dockerfile'), 'chown node:node /var/lib/auth-cluster /var/lib/auth-cluster-issuer', 'the image makes the mount point the user node\'s')
  for (const [name, app] of [['app', s.app], ['app-2', override.services?.['app-2']], ['app-3', override.services?.['app-3']]] as const) {
    const env = { ...(s.app?.environment as object), ...(app?.environment as object) } as Record<string, string>
    t.notOk(Object.keys(env).some((k) => k === 'ISSUER_KEYS_DIR'), `${name}: not told where the keys are`)
  }
  // The shell in front of the balancer: ROUTES only with eddsa, read by the balancer's own config.
  const command = (s.balancer?.command as string[]).join(' ')
  t.match(command, 'exec node balancer/server.ts', 'the shell becomes the balancer')
  const { loadBalancerConfig } = await import('../../balancer/config.ts')
  const env = s.balancer?.environment as Record<string, string>
  const [name = '', value = ''] = (env.EDDSA_ISSUER_POOL ?? '').split('=')
  const routed = loadBalancerConfig({ UPSTREAMS_DNS: env.UPSTREAMS_DNS, ROUTES: env.EDDSA_ROUTES, [name]: value })
  t.same(routed.routes?.map((r) => r.prefix), ['/login', '/token/', '/logout', '/.well-known/jwks.json'], 'the routes it exports are the balancer\'s to read')
  t.same(routed.pools?.[0]?.dns, { hostname: 'issuer', port: 3100, intervalMs: 1000 }, 'every issuer replica, through Docker\'s DNS')
})

t.test('profile ha: a replica of redis and three Sentinels, quorum 2, monitoring it by the name the app servers are given', async (t) => {
  const s = compose.services ?? {}
  t.match(s['redis-replica'], { image: /^redis:7/, profiles: ['ha'], command: ['redis-server', '--save', '', '--appendonly', 'no', '--replicaof', 'redis', '6379'], depends_on: { redis: { condition: 'service_healthy' } } })
  const sentinels = ['sentinel-1', 'sentinel-2', 'sentinel-3'].map((name) => s[name] as Record<string, unknown>)
  for (const [i, sentinel] of sentinels.entries()) {
    t.match(sentinel, { image: /^redis:7/, profiles: ['ha'], depends_on: { redis: { condition: 'service_healthy' }, 'redis-replica': { condition: 'service_healthy' } }, healthcheck: { test: ['CMD', 'redis-cli', '-p', '26379', 'ping'] } }, `sentinel-${i + 1}`)
    const script = (sentinel.command as string[])[2] ?? ''
    t.match(script, 'exec redis-server /tmp/sentinel.conf --sentinel', 'writes its own (writable) configuration, then becomes the Sentinel')
    // The file it writes, as Compose and then printf would make it.
    const conf = (/printf '([^']*)'/.exec(script)?.[1] ?? '').replaceAll('${REDIS_SENTINEL_NAME:-mymaster}', 'mymaster').split('\\n').filter((l) => l !== '')
    t.same(conf, ['port 26379', 'sentinel resolve-hostnames yes', 'sentinel monitor mymaster redis 6379 2', 'sentinel down-after-milliseconds mymaster 1000', 'sentinel failover-timeout mymaster 3000'])
  }
  const { SENTINEL_DOWN_AFTER_MS, SENTINEL_FAILOVER_TIMEOUT_MS, SENTINEL_QUORUM, SENTINEL_NAME } = await import('../../scripts/lib/redis-ha.ts')
  t.match((sentinels[0]?.command as string[])[2], `monitor \${REDIS_SENTINEL_NAME:-${SENTINEL_NAME}} redis 6379 ${SENTINEL_QUORUM}\\n`, 'the same quorum as npm start --redis-ha')
  t.match((sentinels[0]?.command as string[])[2], `down-after-milliseconds \${REDIS_SENTINEL_NAME:-${SENTINEL_NAME}} ${SENTINEL_DOWN_AFTER_MS}\\nsentinel failover-timeout \${REDIS_SENTINEL_NAME:-${SENTINEL_NAME}} ${SENTINEL_FAILOVER_TIMEOUT_MS}\\n`, 'and the same timings')
  // The app servers and the issuer reach them when .env says so; the default stays REDIS_URL alone.
  for (const name of ['app', 'issuer']) {
    t.match(s[name]?.environment, { REDIS_SENTINELS: '${REDIS_SENTINELS:-}', REDIS_SENTINEL_NAME: '${REDIS_SENTINEL_NAME:-mymaster}', REDIS_WAIT_REPLICAS: '${REDIS_WAIT_REPLICAS:-0}' }, name)
  }
  t.match(read('.env.example'), /^# +REDIS_SENTINELS=sentinel-1:26379,sentinel-2:26379,sentinel-3:26379$/m, '.env.example says what to set with the profile')
})

// The real tool, where one is installed: it must accept our file and refuse the broken one.
// `config` needs no Docker engine.
function composeCli (): string[] | undefined {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    const run = spawnSync(command[0] as string, [...command.slice(1), 'version'], { encoding: 'utf8', timeout: 30_000 })
    if (run.status === 0) return command
  }
  return undefined
}

const cli = composeCli()
t.test('docker compose config agrees', { skip: cli === undefined ? 'no docker compose or docker-compose here' : false }, async (t) => {
  const [command, ...prefix] = cli as string[]
  const dir = mkdtempSync(join(tmpdir(), 'compose-config-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const withSecret = join(dir, 'with-secret.env')
  const empty = join(dir, 'empty.env')
  writeFileSync(withSecret, `JWT_SECRET=${randomBytes(48).toString('base64')}\n`)
  writeFileSync(empty, '')
  const env = { ...process.env }
  delete env.JWT_SECRET
  // Each run of Compose v1 takes seconds to start: run them side by side.
  const config = async (envFile: string, files: string[]): Promise<{ status: number, stderr: string }> => {
    try {
      // Generous: on a loaded machine Compose v1 alone can take many seconds to start.
      await execFileAsync(command as string, [...prefix, '--env-file', envFile, ...files.flatMap((f) => ['-f', join(root, f)]), 'config', '-q'], { cwd: root, env, timeout: 120_000 })
      return { status: 0, stderr: '' }
    } catch (err) {
      const { code, signal, stderr } = err as { code?: unknown, signal?: string | null, stderr?: string }
      return { status: typeof code === 'number' ? code : 1, stderr: `${stderr ?? ''}${signal == null ? '' : ` (killed by ${signal}: timed out?)`}` }
    }
  }
  const [base, layered, quickStart, bare, broken] = await Promise.all([
    config(withSecret, ['docker-compose.yml']),
    config(withSecret, ['docker-compose.yml', 'docker/compose.host-network.yml']),
    config(join(root, '.env.example'), ['docker-compose.yml']),
    config(empty, ['docker-compose.yml', 'docker/compose.host-network.yml']),
    config(withSecret, ['test/docker/fixtures/broken-compose.yml'])
  ])
  t.equal(base.status, 0, `docker-compose.yml is accepted ${base.stderr}`)
  t.equal(layered.status, 0, `with the host-network override too ${layered.stderr}`)
  t.equal(quickStart.status, 0, `.env.example as it is: no secret to set ${quickStart.stderr}`)
  t.equal(bare.status, 0, `nor with no .env at all ${bare.stderr}`)
  t.not(broken.status, 0, 'the broken file is refused')
})
