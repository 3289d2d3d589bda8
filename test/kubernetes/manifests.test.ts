import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { AUTH_MODES } from '../../services/auth/authenticator.ts'
import { PUBLISHED_JWT_SECRETS } from '../../services/published-secrets.ts'
import { parseCompose } from '../docker/compose-checks.ts'
import { environmentProblems } from './checks-env.ts'
import { APP_SERVER_ENTRY, BALANCER_ENTRY, ISSUER_ENTRY, byKind, containersRunning, environmentOf, workloads } from './k8s-model.ts'
import { renderKustomization, type K8sObject } from './kustomize-lite.ts'
import { manifestProblems } from './manifest-checks.ts'
import { installedModelsVersion, KUBERNETES_VERSION, MODELS_VERSION } from './schema.ts'
import { DEPLOY, overlayNames, root, stage } from './staging.ts'

// Each overlay rendered once, from a copy of deploy/kubernetes with a fresh secret where the
// user is to make one.
const staged = stage()
t.teardown(staged.remove)
const overlays = overlayNames()
const rendered = new Map(overlays.map((name) => [name, renderKustomization(staged.overlay(name))]))
const objectsOf = (name: string): K8sObject[] => rendered.get(name) ?? []

/** The mode each overlay runs: its name, or the name of the overlay it builds on. */
const MODE_OF: Record<string, string> = { memory: 'memory', 'memory-sticky': 'memory', redis: 'redis', postgres: 'postgres', jwt: 'jwt', 'jwt-eddsa': 'jwt', cookie: 'cookie' }
/** The overlays whose pods use Redis: for sessions, or for the issuer's refresh tokens. */
const WITH_REDIS = new Set(['redis', 'jwt-eddsa'])

function serverEnv (objects: K8sObject[], entry: string): Record<string, string> {
  const [first] = containersRunning(workloads(objects), entry)
  if (first === undefined) return {}
  return environmentOf(objects, first.workload, first.container).env
}

t.test('every auth mode has an overlay named after it, and every overlay is known here', async (t) => {
  for (const mode of AUTH_MODES) t.ok(overlays.includes(mode), `deploy/kubernetes/overlays/${mode}`)
  t.same(overlays, Object.keys(MODE_OF).sort(), 'a new overlay: add it to MODE_OF')
})

t.test(`the schemas are Kubernetes ${KUBERNETES_VERSION}'s, from the pinned kubernetes-models`, async (t) => {
  t.equal(installedModelsVersion(), MODELS_VERSION, 'a different kubernetes-models may carry another Kubernetes version: update KUBERNETES_VERSION with it')
  const pinned = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['kubernetes-models']
  t.equal(pinned, MODELS_VERSION, 'pinned exactly in package.json')
})

for (const name of overlays) {
  t.test(`overlays/${name} passes the ${KUBERNETES_VERSION} API schema and every check`, async (t) => {
    t.same(await manifestProblems(objectsOf(name)), [])
  })
}

t.test('each overlay runs its mode, behind the balancer strategy it says', async (t) => {
  for (const name of overlays) {
    t.equal(serverEnv(objectsOf(name), APP_SERVER_ENTRY).AUTH_MODE, MODE_OF[name], `${name}: AUTH_MODE`)
    t.equal(serverEnv(objectsOf(name), BALANCER_ENTRY).STRATEGY, name === 'memory-sticky' ? 'sticky' : 'round-robin', `${name}: STRATEGY`)
  }
})

t.test('what the issue asks of the workloads, in every overlay', async (t) => {
  for (const name of overlays) {
    const objects = objectsOf(name)
    const [app] = containersRunning(workloads(objects), APP_SERVER_ENTRY)
    const [balancer] = containersRunning(workloads(objects), BALANCER_ENTRY)
    t.equal(app?.workload.replicas, 3, `${name}: three app servers`)
    t.match(app?.container, { readinessProbe: { httpGet: { path: '/health' } }, livenessProbe: { httpGet: { path: '/health' } } }, `${name}: the app servers' probes`)
    t.match(balancer?.container, { readinessProbe: { httpGet: { path: '/_balancer/stats' } }, livenessProbe: { httpGet: { path: '/_balancer/stats' } } }, `${name}: the balancer's`)
    t.match(byKind(objects, 'HorizontalPodAutoscaler'), [{ spec: { scaleTargetRef: { name: app?.workload.object.metadata.name }, minReplicas: 3, metrics: [{ resource: { name: 'cpu' } }] } }], `${name}: CPU autoscaling from 3`)
    t.equal(byKind(objects, 'PodDisruptionBudget').length, name === 'jwt-eddsa' ? 3 : 2, `${name}: a disruption budget for the app servers and the balancer${name === 'jwt-eddsa' ? ', and the issuers' : ''}`)
    const services = Object.fromEntries(byKind(objects, 'Service').map((s) => [s.metadata.name, s.spec]))
    t.match(services['app-server'], { clusterIP: 'None', publishNotReadyAddresses: false }, `${name}: headless, ready pods only`)
    t.match(services.balancer, { type: 'ClusterIP', sessionAffinity: 'None' }, `${name}: the balancer's Service`)
  }
})

t.test('Redis only where the servers use it, the one docker-compose.yml runs', async (t) => {
  const composed = parseCompose(readFileSync(join(root, 'docker-compose.yml'), 'utf8')).services?.redis as { image: string, command: string[] }
  for (const name of overlays) {
    const redis = workloads(objectsOf(name)).flatMap((w) => w.pod.containers).filter((c) => /^redis:/.test(c.image ?? ''))
    t.equal(redis.length, WITH_REDIS.has(name) ? 1 : 0, `${name}: ${redis.length === 0 ? 'no' : 'a'} Redis`)
    for (const container of redis) {
      t.equal(container.image, composed.image, `${name}: docker-compose.yml's Redis image`)
      t.same(container.args, composed.command, `${name}: and its arguments (nothing saved)`)
    }
  }
})

t.test('PostgreSQL only in the postgres overlay, on the Service DATABASE_URL names, reachable from the app servers alone', async (t) => {
  for (const name of overlays) {
    const postgres = workloads(objectsOf(name)).filter((w) => w.pod.containers.some((c) => /^postgres:/.test(c.image ?? '')))
    t.equal(postgres.length, MODE_OF[name] === 'postgres' ? 1 : 0, `${name}: ${postgres.length === 0 ? 'no' : 'a'} PostgreSQL`)
  }
  const objects = objectsOf('postgres')
  const composed = parseCompose(readFileSync(join(root, 'docker-compose.yml'), 'utf8')).services?.postgres as { image: string }
  const [server] = workloads(objects).filter((w) => w.pod.containers.some((c) => /^postgres:/.test(c.image ?? '')))
  t.equal(server?.pod.containers[0]?.image, composed.image, 'docker-compose.yml\'s PostgreSQL image')
  const url = new URL(serverEnv(objects, APP_SERVER_ENTRY).DATABASE_URL ?? '')
  const service = byKind(objects, 'Service').find((s) => s.metadata.name === url.hostname)
  t.ok(service !== undefined, `DATABASE_URL names the Service ${url.hostname}`)
  t.match(service?.spec, { selector: { 'app.kubernetes.io/component': 'postgres' }, ports: [{ port: Number(url.port) }] }, 'of the PostgreSQL pod, on its port')
  t.match(byKind(objects, 'NetworkPolicy').find((p) => p.metadata.name === 'postgres')?.spec, { ingress: [{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'app-server' } } }] }] }, 'only the app servers may connect')
})

t.test('the postgres overlay: the password is the file the user made, given to PostgreSQL and the app servers as files, never in an environment', async (t) => {
  const objects = objectsOf('postgres')
  const [secret] = byKind(objects, 'Secret')
  const made = staged.madeSecrets.get('postgres/postgres-password')
  t.ok(made !== undefined, 'the staging made one, as the overlay tells the user to')
  t.equal(Buffer.from((secret?.data as Record<string, string> | undefined)?.['postgres-password'] ?? '', 'base64').toString(), `${made ?? ''}\n`, 'the Secret holds the file as it is')
  const [app] = containersRunning(workloads(objects), APP_SERVER_ENTRY)
  t.match(app?.container.volumeMounts, [{ mountPath: '/var/lib/auth-cluster', readOnly: true }])
  t.equal(serverEnv(objects, APP_SERVER_ENTRY).DATABASE_PASSWORD_FILE, '/var/lib/auth-cluster/postgres-password')
  const database = workloads(objects).find((w) => w.pod.containers.some((c) => /^postgres:/.test(c.image ?? '')))
  t.match(database?.pod.containers[0]?.env, [{ name: 'POSTGRES_PASSWORD_FILE', value: '/run/secrets/postgres/password' }], 'PostgreSQL reads it from a file too')
  t.match(database?.pod.volumes?.find((v) => v.name === 'password')?.secret, { secretName: secret?.metadata.name }, 'the same Secret, by its hashed name')
  for (const w of workloads(objects)) {
    for (const c of w.pod.containers) t.notOk((c.env ?? []).some((v) => v.valueFrom?.secretKeyRef !== undefined || /PASSWORD=|^POSTGRES_PASSWORD$/.test(v.name)), `${w.name}: no password in the environment`)
  }
  const ignored = spawnSync('git', ['check-ignore', '-q', `${DEPLOY}/overlays/postgres/postgres-password`], { cwd: root })
  t.equal(ignored.status, 0, 'git ignores the file the user makes')
})

// The overlays whose key the user makes: the file, the Secret made from it, the variable naming it.
const KEYED = [
  { overlay: 'jwt', file: 'jwt-secret', variable: 'JWT_SECRET_FILE', prefix: 'JWT_SECRET' },
  { overlay: 'cookie', file: 'cookie-secret', variable: 'COOKIE_SECRET_FILE', prefix: 'COOKIE_SECRET' }
]

for (const { overlay, file, variable, prefix } of KEYED) {
  t.test(`the ${overlay} overlay: the key is the file the user made, mounted read-only, never in the repository`, async (t) => {
    const objects = objectsOf(overlay)
    const [secret] = byKind(objects, 'Secret')
    const made = staged.madeSecrets.get(`${overlay}/${file}`)
    t.ok(made !== undefined, 'the staging made one, as the README tells the user to')
    t.equal(Buffer.from((secret?.data as Record<string, string> | undefined)?.[file] ?? '', 'base64').toString(), `${made ?? ''}\n`, 'the Secret holds the file as it is')
    const [app] = containersRunning(workloads(objects), APP_SERVER_ENTRY)
    t.match(app?.container.volumeMounts, [{ mountPath: '/var/lib/auth-cluster', readOnly: true }])
    t.notOk(app?.container.env?.some((v) => v.name.startsWith(prefix)), 'no key in the environment')
    t.equal(serverEnv(objects, APP_SERVER_ENTRY)[variable], `/var/lib/auth-cluster/${file}`, `${variable}: the path Compose uses`)

    const ignored = spawnSync('git', ['check-ignore', '-q', `${DEPLOY}/overlays/${overlay}/${file}`], { cwd: root })
    t.equal(ignored.status, 0, 'git ignores the file the user makes')
    const files = readdirSync(join(root, DEPLOY), { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ya?ml|env)$/.test(f))
    for (const name of files) {
      const text = readFileSync(join(root, DEPLOY, name), 'utf8')
      t.notMatch(text, /^kind:\s*Secret\b/m, `${name}: no Secret written out`)
      t.notMatch(text, new RegExp(`^\\s*${prefix}S?=\\S`, 'm'), `${name}: no key in an env file`)
    }
  })

  t.test(`the ${overlay} overlay: a key the servers would refuse is refused here, with the server's own words`, async (t) => {
    const [published] = PUBLISHED_JWT_SECRETS.keys()
    const refused = stage(() => published ?? '')
    t.teardown(refused.remove)
    const problems = environmentProblems(renderKustomization(refused.overlay(overlay)))
    t.match(problems, [new RegExp(`^Deployment/app-server container app-server: services/server\\.ts would refuse to start: ${variable} \\(/var/lib/auth-cluster/${file}\\): the secret is published in this repository`)])
    t.notMatch(problems.join('\n'), published ?? '', 'and does not repeat it')
    const short = stage(() => 'too-short')
    t.teardown(short.remove)
    t.match(environmentProblems(renderKustomization(short.overlay(overlay))), [new RegExp(`${variable} \\(/var/lib/auth-cluster/${file}\\): the secret must be at least 32 bytes`)])
  })
}

t.test('the jwt-eddsa overlay: the issuer\'s keys are the file the user made, mounted read-only in the issuer pods alone; the app servers hold nothing that signs', async (t) => {
  const objects = objectsOf('jwt-eddsa')
  const all = workloads(objects)
  const [issuer] = containersRunning(all, ISSUER_ENTRY)
  t.equal(issuer?.workload.replicas, 2, 'two issuers, sharing the keys')
  t.match(issuer?.container.volumeMounts, [{ mountPath: '/var/lib/auth-cluster-issuer', readOnly: true }])
  t.equal(serverEnv(objects, ISSUER_ENTRY).ISSUER_KEYS_DIR, '/var/lib/auth-cluster-issuer')
  const secrets = byKind(objects, 'Secret')
  t.equal(secrets.length, 1)
  const made = staged.madeSecrets.get('jwt-eddsa/issuer-key.json')
  t.equal(Buffer.from((secrets[0]?.data as Record<string, string> | undefined)?.['issuer-key.json'] ?? '', 'base64').toString(), `${made ?? ''}\n`, 'the Secret holds the file as the user made it')
  const secretName = secrets[0]?.metadata.name
  const mounting = all.filter((w) => (w.pod.volumes ?? []).some((v) => v.secret?.secretName === secretName)).map((w) => w.name)
  t.same(mounting, ['Deployment/issuer'], 'only the issuer mounts it')

  const app = serverEnv(objects, APP_SERVER_ENTRY)
  t.match(app, { AUTH_MODE: 'jwt', JWT_SIGNING: 'eddsa', JWKS_URL: 'http://balancer:8080/.well-known/jwks.json', JWT_SECRET_FILE: '' })
  t.notOk('JWT_SECRET' in app || 'JWT_SECRETS' in app || 'ISSUER_KEYS_DIR' in app, 'no secret and no keys directory in the app servers\' environment')
  const balancer = serverEnv(objects, BALANCER_ENTRY)
  t.equal(balancer.ROUTES, '/login:issuer,/token/:issuer,/logout:issuer,/.well-known/jwks.json:issuer')
  t.equal(balancer.UPSTREAMS_DNS_ISSUER, 'issuer:3100')

  const ignored = spawnSync('git', ['check-ignore', '-q', `${DEPLOY}/overlays/jwt-eddsa/issuer-key.json`], { cwd: root })
  t.equal(ignored.status, 0, 'git ignores the key file the user makes')
  t.equal(spawnSync('git', ['check-ignore', '-q', `${DEPLOY}/overlays/jwt-eddsa/issuer-key-2.json`], { cwd: root }).status, 0, 'and a second one, for a rotation')
})
