import { join } from 'node:path'
import t, { type Test } from 'tap'
import { APP_SERVER_ENTRY, BALANCER_ENTRY, containersRunning, workloads } from './k8s-model.ts'
import { renderKustomization, type K8sObject } from './kustomize-lite.ts'
import { manifestProblems } from './manifest-checks.ts'
import { stage } from './staging.ts'

// Every check must be able to fail: broken overlays (fixtures/) and broken copies of the memory
// and redis overlays, each refused with the fault named.
const staged = stage()
t.teardown(staged.remove)
const fixture = (name: string): K8sObject[] => renderKustomization(join(staged.dir, 'test/kubernetes/fixtures', name))

t.test('fixtures: each broken overlay fails with its one fault named', async (t) => {
  t.match(await manifestProblems(fixture('wrong-selector')), [
    /^Service\/app-server: spec\.selector \{"app\.kubernetes\.io\/name":"auth-cluster","app\.kubernetes\.io\/component":"app-servers"\} selects no pods \(the pods here: Deployment\/app-server .*\)$/,
    /^Deployment\/balancer container balancer: UPSTREAMS_DNS=app-server:3000 names Service\/app-server, whose pods are not the app servers \(it selects nothing\)$/
  ])
  t.same(await manifestProblems(fixture('missing-probe')), ['Deployment/app-server container app-server: no readinessProbe'])
  t.same(await manifestProblems(fixture('unset-variable')), [
    'Deployment/app-server container app-server: JWT_REVOCATION is not set, but services/server.ts reads it (set it in the ConfigMap, or give the reason in the annotation auth-cluster/env-left-out)'
  ])
})

const memory = renderKustomization(staged.overlay('memory'))
const redis = renderKustomization(staged.overlay('redis'))

/** The problems of a copy of `objects` after `mutate`, and that copy's pieces to mutate. */
async function broken (objects: K8sObject[], mutate: (parts: Parts) => void): Promise<string[]> {
  const copy = structuredClone(objects)
  const all = workloads(copy)
  const [app] = containersRunning(all, APP_SERVER_ENTRY)
  const [balancer] = containersRunning(all, BALANCER_ENTRY)
  const named = (kind: string, name: string): any => copy.find((o) => o.kind === kind && (o.metadata.name === name || o.metadata.name.startsWith(`${name}-`)))
  mutate({ app: app?.container as any, appPod: app?.workload.pod as any, appDeployment: app?.workload.object as any, balancer: balancer?.container as any, named, objects: copy })
  return await manifestProblems(copy)
}
/** Each pattern matches one of the problems reported (the others may follow from the same fault). */
function reported (t: Test, problems: string[], patterns: RegExp[]): void {
  for (const pattern of patterns) t.ok(problems.some((p) => pattern.test(p)), `reported: ${pattern.source}`, { problems })
}
interface Parts { app: any, appPod: any, appDeployment: any, balancer: any, named: (kind: string, name: string) => any, objects: K8sObject[] }

t.test('the API schema: wrong types, values out of an enum, unknown fields', async (t) => {
  reported(t, await broken(memory, ({ appDeployment }) => { appDeployment.spec.replicas = 'three' }), [/^Deployment\/app-server: spec\.replicas: must be integer$/])
  reported(t, await broken(memory, ({ app }) => { app.imagePullPolicy = 'Sometimes' }), [/^Deployment\/app-server: spec\.template\.spec\.containers\[0\]\.imagePullPolicy: must be equal to one of the allowed values \("Always", "IfNotPresent", "Never"\)$/])
  reported(t, await broken(memory, ({ app }) => { app.readinesProbe = app.readinessProbe; delete app.readinessProbe }), [
    /^Deployment\/app-server: spec\.template\.spec\.containers\[0\]\.readinesProbe: no such field in IContainer \(did you mean readinessProbe\?\)$/,
    /^Deployment\/app-server container app-server: no readinessProbe$/
  ])
  reported(t, await broken(memory, ({ named }) => { named('Service', 'app-server').spec.clusterIp = 'None' }), [/^Service\/app-server: spec\.clusterIp: no such field in IServiceSpec \(did you mean clusterIP or clusterIPs\?\)/])
  reported(t, await broken(memory, ({ named }) => { named('HorizontalPodAutoscaler', 'app-server').apiVersion = 'autoscaling/v1' }), [/^HorizontalPodAutoscaler\/app-server: apiVersion autoscaling\/v1, but Kubernetes 1\.36 serves HorizontalPodAutoscaler as autoscaling\/v2$/])
})

t.test('selectors, ports and targets that name nothing', async (t) => {
  reported(t, await broken(memory, ({ named }) => { named('PodDisruptionBudget', 'balancer').spec.selector.matchLabels['app.kubernetes.io/component'] = 'balancers' }), [/^PodDisruptionBudget\/balancer: spec\.selector .* selects no pods/])
  reported(t, await broken(memory, ({ named }) => { named('HorizontalPodAutoscaler', 'app-server').spec.scaleTargetRef.name = 'app' }), [/^HorizontalPodAutoscaler\/app-server: spec\.scaleTargetRef names apps\/v1 Deployment\/app, which is not among the rendered workloads$/])
  reported(t, await broken(memory, ({ named }) => { named('Service', 'balancer').spec.ports[0].targetPort = 'web' }), [/^Service\/balancer: port http's targetPort web is not a port the pods of Deployment\/balancer declare$/])
  reported(t, await broken(memory, ({ app }) => { app.livenessProbe.httpGet.port = 3001 }), [/^Deployment\/app-server container app-server: livenessProbe asks port 3001, which the container does not declare$/])
  reported(t, await broken(memory, ({ appDeployment }) => { appDeployment.spec.selector.matchLabels.extra = 'x' }), [/^Deployment\/app-server: spec\.selector .* does not select its own pod template's labels/])
  reported(t, await broken(memory, ({ named }) => { named('Service', 'balancer').metadata.namespace = 'default' }), [/^the objects are in auth-cluster, default: an overlay sets one namespace for all/])
})

t.test('probes on routes the processes do not answer', async (t) => {
  reported(t, await broken(memory, ({ app }) => { app.livenessProbe.httpGet.path = '/healthz' }), [/^Deployment\/app-server container app-server: livenessProbe GET \/healthz: the app server answers 404$/])
  reported(t, await broken(memory, ({ app }) => { app.readinessProbe.httpGet.path = '/feeds' }), [/^Deployment\/app-server container app-server: readinessProbe GET \/feeds: the app server answers 401$/])
  reported(t, await broken(memory, ({ balancer }) => { balancer.readinessProbe.httpGet.path = '/_balancer/status' }), [/^Deployment\/balancer container balancer: readinessProbe GET \/_balancer\/status: the balancer answers 404$/])
})

t.test('the balancer finds the app servers only through a headless Service, on their own port', async (t) => {
  reported(t, await broken(memory, ({ named }) => { named('ConfigMap', 'balancer-env').data.UPSTREAMS_DNS = 'balancer:8080' }), [
    /UPSTREAMS_DNS=balancer:8080 names Service\/balancer, which is not headless \(clusterIP: None\)/,
    /UPSTREAMS_DNS=balancer:8080 names Service\/balancer, whose pods are not the app servers \(it selects Deployment\/balancer\)/
  ])
  reported(t, await broken(memory, ({ named }) => { named('ConfigMap', 'balancer-env').data.UPSTREAMS_DNS = 'app-servers:3000' }), [/UPSTREAMS_DNS=app-servers:3000 names Service app-servers in auth-cluster, which is not among the rendered objects/])
  reported(t, await broken(memory, ({ named }) => {
    const service = named('Service', 'app-server')
    service.spec.ports[0].port = 80
    named('ConfigMap', 'balancer-env').data.UPSTREAMS_DNS = 'app-server:80'
  }), [/UPSTREAMS_DNS=app-server:80: the balancer connects to each pod's own address on port 80 \(a headless Service translates no ports\), but Deployment\/app-server container app-server listens on 3000/])
  reported(t, await broken(memory, ({ named }) => { named('Service', 'app-server').spec.publishNotReadyAddresses = true }), [/Service\/app-server publishes pods that are not ready/])
  t.same(await broken(memory, ({ named }) => { named('ConfigMap', 'balancer-env').data.UPSTREAMS_DNS = 'app-server.auth-cluster.svc.cluster.local:3000' }), [], 'the full name is the same Service')
})

t.test('the environment: every variable set or left out with a reason, and each value one the process accepts', async (t) => {
  reported(t, await broken(memory, ({ named }) => { named('ConfigMap', 'app-server-env').data.LOG_LEVEL = 'loud' }), [/^Deployment\/app-server container app-server: services\/server\.ts would refuse to start: LOG_LEVEL must be/])
  reported(t, await broken(memory, ({ named }) => { named('ConfigMap', 'balancer-env').data.HEALTH_FALL = '0' }), [/^Deployment\/balancer container balancer: balancer\/server\.ts would refuse to start: HEALTH_FALL must be a whole number of failed health checks in a row, from 1 to 100 \(got 0\)$/])
  reported(t, await broken(memory, ({ appDeployment }) => { appDeployment.metadata.annotations['auth-cluster/env-left-out'] += 'SESSION_SECRET: not needed\n' }), [/annotation auth-cluster\/env-left-out names SESSION_SECRET, which services\/server\.ts does not read/])
  reported(t, await broken(memory, ({ appDeployment }) => { appDeployment.metadata.annotations['auth-cluster/env-left-out'] += 'PORT: the image knows\n' }), [/PORT is set, and also named as left out/])
  reported(t, await broken(memory, ({ appDeployment }) => { appDeployment.metadata.annotations['auth-cluster/env-left-out'] = 'HOST without a reason\n' }), [/annotation auth-cluster\/env-left-out: "HOST without a reason" is not "NAME: reason"/, /SERVER_ID is not set, but services\/server\.ts reads it/])
  reported(t, await broken(memory, ({ app }) => { app.envFrom[0].configMapRef.name = 'app-env' }), [/^Deployment\/app-server container app-server: envFrom names ConfigMap app-env, which is not among the rendered objects$/])
  reported(t, await broken(memory, ({ named }) => { named('ConfigMap', 'app-server-env').data.AUTH_MODE = 'redis' }), [/uses Redis at redis:6379, but no Service redis of a Redis pod is among the rendered objects \(add \.\.\/\.\.\/redis to the overlay's resources\)/])
  reported(t, await broken(memory, ({ named }) => { named('ConfigMap', 'app-server-env').data.AUTH_MODE = 'jwt' }), [/services\/server\.ts would refuse to start: JWT_SECRET is required in jwt mode/])
})

t.test('pods: security, resources, a stop that drains, and the image as the Dockerfile builds it', async (t) => {
  reported(t, await broken(memory, ({ appPod }) => { appPod.securityContext.runAsUser = 0 }), [/app-server: runAsUser is not a non-root uid/, /runAsUser 0, but the image runs as its user node \(uid 1000\)/])
  reported(t, await broken(memory, ({ app }) => { app.securityContext.readOnlyRootFilesystem = false; app.securityContext.capabilities.drop = ['NET_RAW'] }), [/readOnlyRootFilesystem is not true/, /capabilities\.drop does not include ALL/])
  reported(t, await broken(memory, ({ appPod }) => { delete appPod.securityContext.seccompProfile }), [/seccompProfile is not RuntimeDefault \(got none\)/])
  reported(t, await broken(memory, ({ app }) => { delete app.resources.limits.memory }), [/^Deployment\/app-server container app-server: no memory limit$/])
  reported(t, await broken(memory, ({ app }) => { app.resources.requests.cpu = '2' }), [/cpu request 2 is above its limit 1/])
  reported(t, await broken(memory, ({ appPod }) => { appPod.terminationGracePeriodSeconds = 15 }), [/terminationGracePeriodSeconds 15 is less than the preStop pause \(10 s\) plus the drain of services\/server\.ts \(10 s\)/])
  reported(t, await broken(memory, ({ balancer }) => { delete balancer.lifecycle }), [/^Deployment\/balancer container balancer: no preStop pause/])
  reported(t, await broken(memory, ({ app }) => { app.imagePullPolicy = 'Always' }), [/imagePullPolicy Always, not IfNotPresent: the node would try to pull auth-cluster:latest/])
  reported(t, await broken(memory, ({ app }) => { app.command = ['node'] }), [/command \["node"\] replaces the image's ENTRYPOINT \["\/usr\/bin\/tini","--"\]/])
  reported(t, await broken(memory, ({ app }) => { app.args = ['node', 'services/servr.ts'] }), [/^Deployment\/app-server container app-server: runs services\/servr\.ts, which does not exist$/, /^no workload runs services\/server\.ts$/])
  reported(t, await broken(memory, ({ balancer }) => { balancer.args = ['node', 'test/helpers/cli.ts'] }), [/runs test\/helpers\/cli\.ts, which the Dockerfile does not COPY into the image/])
  reported(t, await broken(memory, ({ balancer, named }) => { balancer.ports[0].containerPort = 9090; named('ConfigMap', 'balancer-env').data.PORT = '9090' }), [/port 9090 is not one the Dockerfile EXPOSEs \(3000, 3100, 8080\)/])
  reported(t, await broken(memory, ({ named }) => { named('ConfigMap', 'app-server-env').data.PORT = '3001' }), [/PORT=3001, but the container declares 3000/])
})

t.test('who may connect: only the balancer to the app servers, only the app servers to Redis', async (t) => {
  reported(t, await broken(memory, ({ named }) => { named('NetworkPolicy', 'app-server').spec.ingress[0].from[0].podSelector = {} }), [/^NetworkPolicy\/app-server: spec\.ingress\[0\]\.from\[0\] also lets in Deployment\/app-server \(only the balancer may reach an app server/])
  reported(t, await broken(memory, ({ named }) => { delete named('NetworkPolicy', 'app-server').spec.ingress[0].from }), [/spec\.ingress\[0\] has no "from": it lets every pod in/])
  reported(t, await broken(memory, ({ named }) => { named('NetworkPolicy', 'app-server').spec.podSelector.matchLabels['app.kubernetes.io/component'] = 'app' }), [/NetworkPolicy\/app-server: spec\.podSelector .* selects no pods/, /^Deployment\/app-server: no NetworkPolicy limits who connects to its pods/])
  reported(t, await broken(redis, ({ named }) => { named('NetworkPolicy', 'redis').spec.ingress[0].from.push({ ipBlock: { cidr: '10.0.0.0/8' } }) }), [/^NetworkPolicy\/redis: spec\.ingress\[0\]\.from\[1\] also lets in pods outside this namespace or addresses \(only the app servers may reach Redis/])
})

t.test('jwt-eddsa: only the balancer reaches the issuer, only the issuer Redis, and the issuer pool is the issuers', async (t) => {
  const eddsa = renderKustomization(staged.overlay('jwt-eddsa'))
  t.same(await manifestProblems(eddsa), [], 'the overlay as it is')
  reported(t, await broken(eddsa, ({ named }) => { named('NetworkPolicy', 'issuer').spec.ingress[0].from.push({ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'app-server' } } }) }),
    [/^NetworkPolicy\/issuer: spec\.ingress\[0\]\.from\[1\] also lets in Deployment\/app-server \(only the balancer may reach an issuer/])
  reported(t, await broken(eddsa, ({ named }) => { named('NetworkPolicy', 'redis').spec.ingress[0].from[0].podSelector.matchLabels['app.kubernetes.io/component'] = 'app-server' }),
    [/^NetworkPolicy\/redis: spec\.ingress\[0\]\.from\[0\] also lets in Deployment\/app-server \(only the issuer may reach Redis/])
  reported(t, await broken(eddsa, ({ named }) => { named('ConfigMap', 'balancer-env').data.UPSTREAMS_DNS_ISSUER = 'app-server:3000' }),
    [/UPSTREAMS_DNS_ISSUER=app-server:3000 names Service\/app-server, whose pods are not the issuers/])
  reported(t, await broken(eddsa, ({ named }) => { delete named('ConfigMap', 'issuer-env').data.ISSUER_KEYS_DIR }),
    [/^Deployment\/issuer container issuer: ISSUER_KEYS_DIR is not set, but services\/issuer\/server\.ts reads it/])
  reported(t, await broken(eddsa, ({ named }) => { named('ConfigMap', 'issuer-env').data.ACCESS_TTL_SECONDS = '86400' }),
    [/^Deployment\/issuer container issuer: services\/issuer\/server\.ts would refuse to start: ACCESS_TTL_SECONDS must be a whole number of seconds from 1 to 3600/])
  reported(t, await broken(eddsa, ({ named }) => { named('Deployment', 'issuer').spec.template.spec.terminationGracePeriodSeconds = 12 }),
    [/issuer: terminationGracePeriodSeconds 12 is less than the preStop pause \(10 s\) plus the drain of services\/issuer\/server\.ts \(10 s\)/])
  reported(t, await broken(eddsa, ({ named }) => { named('ConfigMap', 'app-server-env').data.JWKS_URL = '' }),
    [/^Deployment\/app-server container app-server: services\/server\.ts would refuse to start: JWKS_URL is required in jwt mode with JWT_SIGNING=eddsa/])
})
