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
const MODE_OF: Record<string, string> = { memory: 'memory', 'memory-sticky': 'memory', redis: 'redis', jwt: 'jwt', 'jwt-eddsa': 'jwt' }
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

t.test('the jwt overlay: the secret is the file the user made, mounted read-only, never in the repository', async (t) => {
  const objects = objectsOf('jwt')
  const [secret] = byKind(objects, 'Secret')
  const made = staged.madeSecrets.get('jwt/jwt-secret')
  t.ok(made !== undefined, 'the staging made one, as the README tells the user to')
  t.equal(Buffer.from((secret?.data as Record<string, string> | undefined)?.['jwt-secret'] ?? '', 'base64').toString(), `${made ?? ''}\n`, 'the Secret holds the file as it is')
  const [app] = containersRunning(workloads(objects), APP_SERVER_ENTRY)
  t.match(app?.container.volumeMounts, [{ mountPath: '/var/lib/auth-cluster', readOnly: true }])
  t.notOk(app?.container.env?.some((v) => v.name.startsWith('JWT_SECRET')), 'no secret in the environment')
  t.equal(serverEnv(objects, APP_SERVER_ENTRY).JWT_SECRET_FILE, '/var/lib/auth-cluster/jwt-secret')

  const ignored = spawnSync('git', ['check-ignore', '-q', `${DEPLOY}/overlays/jwt/jwt-secret`], { cwd: root })
  t.equal(ignored.status, 0, 'git ignores the file the user makes')
  const files = readdirSync(join(root, DEPLOY), { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ya?ml|env)$/.test(f))
  for (const file of files) {
    const text = readFileSync(join(root, DEPLOY, file), 'utf8')
    t.notMatch(text, /^kind:\s*Secret\b/m, `${file}: no Secret written out`)
    t.notMatch(text, /^\s*JWT_SECRETS?=\S/m, `${file}: no secret in an env file`)
  }
})

t.test('a secret the servers would refuse is refused here, with the server\'s own words', async (t) => {
  const [published] = PUBLISHED_JWT_SECRETS.keys()
  const refused = stage(() => published ?? '')
  t.teardown(refused.remove)
  const problems = environmentProblems(renderKustomization(refused.overlay('jwt')))
  t.match(problems, [/^Deployment\/app-server container app-server: services\/server\.ts would refuse to start: JWT_SECRET_FILE \(\/var\/lib\/auth-cluster\/jwt-secret\): the secret is published in this repository/])
  t.notMatch(problems.join('\n'), published ?? '', 'and does not repeat it')
  const short = stage(() => 'too-short')
  t.teardown(short.remove)
  t.match(environmentProblems(renderKustomization(short.overlay('jwt'))), [/JWT_SECRET_FILE \(\/var\/lib\/auth-cluster\/jwt-secret\): the secret must be at least 32 bytes/])
})

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
