import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { APP_SERVER_ENTRY, BALANCER_ENTRY, ISSUER_ENTRY, entryOf, environmentOf, quantity, resolvePort, workloads, type Container, type Probe, type Workload } from './k8s-model.ts'
import type { K8sObject } from './kustomize-lite.ts'

/**
 * What each pod must be, container by container: probes on ports it declares, the security
 * context of the "restricted" Pod Security profile, requests and limits, a stop that drains, and
 * for our own image: the Dockerfile's user, ports, entry point and command.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))

/** The Dockerfile's facts the pods depend on. */
export interface ImageFacts { expose: number[], env: Record<string, string>, user: string, entrypoint: string[], cmd: string[], copied: string[] }

export function dockerfileFacts (text = readFileSync(join(root, 'Dockerfile'), 'utf8')): ImageFacts {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const args = (keyword: string): string[] => lines.filter((l) => l.toUpperCase().startsWith(`${keyword} `)).map((l) => l.slice(keyword.length + 1).trim())
  const env: Record<string, string> = {}
  for (const line of args('ENV')) for (const [, name, value] of line.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S*)/g)) env[name as string] = value as string
  const json = (list: string[]): string[] => list.length === 0 ? [] : JSON.parse(list.at(-1) as string) as string[]
  return {
    expose: args('EXPOSE').flatMap((l) => l.split(/\s+/)).map((p) => Number.parseInt(p, 10)),
    env,
    user: args('USER').at(-1) ?? 'root',
    entrypoint: json(args('ENTRYPOINT')),
    cmd: json(args('CMD')),
    copied: args('COPY').flatMap((l) => l.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1))
  }
}

/** The uid of the user `node` in the official Node.js images (docker-node's Dockerfiles: useradd --uid 1000). */
export const NODE_IMAGE_UID = 1000
export const OUR_IMAGE = 'auth-cluster:latest'

/** How long each of our processes drains after SIGTERM: close-with-grace's delay in its entry file. */
export function drainSeconds (entry: string): number | undefined {
  const match = /closeWithGrace\(\s*\{\s*delay:\s*([\d_]+)/.exec(readFileSync(join(root, entry), 'utf8'))
  return match === null ? undefined : Number((match[1] as string).replaceAll('_', '')) / 1000
}

function probeProblems (w: Workload, c: Container): string[] {
  const problems: string[] = []
  for (const kind of ['readinessProbe', 'livenessProbe'] as const) {
    const probe: Probe | undefined = c[kind]
    if (probe === undefined) {
      problems.push(`${w.name} container ${c.name}: no ${kind}`)
      continue
    }
    const port = probe.httpGet?.port ?? probe.tcpSocket?.port
    if (port !== undefined && resolvePort([c], port) === undefined) problems.push(`${w.name} container ${c.name}: ${kind} asks port ${port}, which the container does not declare`)
  }
  return problems
}

function securityProblems (w: Workload, c: Container, image: ImageFacts): string[] {
  const where = `${w.name} container ${c.name}`
  const pod = w.pod.securityContext ?? {}
  const own = c.securityContext ?? {}
  const effective = { ...pod, ...own }
  const problems: string[] = []
  if (effective.runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot is not true`)
  if (effective.runAsUser === undefined || effective.runAsUser === 0) problems.push(`${where}: runAsUser is not a non-root uid`)
  if (c.image === OUR_IMAGE && effective.runAsUser !== NODE_IMAGE_UID) problems.push(`${where}: runAsUser ${String(effective.runAsUser)}, but the image runs as its user ${image.user} (uid ${NODE_IMAGE_UID})`)
  if (own.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`)
  if (own.privileged === true) problems.push(`${where}: privileged`)
  if (own.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`)
  if (!(own.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: capabilities.drop does not include ALL`)
  if ((own.capabilities?.add ?? []).length > 0) problems.push(`${where}: adds capabilities ${own.capabilities?.add?.join(', ') ?? ''}`)
  if (effective.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${where}: seccompProfile is not RuntimeDefault (got ${effective.seccompProfile?.type ?? 'none'})`)
  return problems
}

function resourceProblems (w: Workload, c: Container): string[] {
  const problems: string[] = []
  for (const resource of ['cpu', 'memory']) {
    const request = c.resources?.requests?.[resource]
    const limit = c.resources?.limits?.[resource]
    if (request === undefined) problems.push(`${w.name} container ${c.name}: no ${resource} request`)
    if (limit === undefined) problems.push(`${w.name} container ${c.name}: no ${resource} limit`)
    if (request !== undefined && limit !== undefined && !(quantity(request) <= quantity(limit))) problems.push(`${w.name} container ${c.name}: ${resource} request ${request} is above its limit ${limit}`)
  }
  return problems
}

/** A stop that drains: a pause while the pod leaves the Service, then the process's own drain, all within the grace period. */
function terminationProblems (w: Workload, c: Container, entry: string): string[] {
  const where = `${w.name} container ${c.name}`
  const preStop = c.lifecycle?.preStop
  const pause = preStop?.sleep?.seconds ?? (preStop?.exec?.command?.[0] === 'sleep' ? Number(preStop.exec.command[1]) : undefined)
  if (pause === undefined || !(pause > 0)) return [`${where}: no preStop pause: SIGTERM would arrive while the pod is still being sent new requests`]
  const drain = drainSeconds(entry)
  if (drain === undefined) return [`${where}: cannot find close-with-grace's delay in ${entry}, the drain the grace period must cover (update test/kubernetes/checks-pods.ts)`]
  const grace = w.pod.terminationGracePeriodSeconds ?? 30
  return grace < pause + drain
    ? [`${where}: terminationGracePeriodSeconds ${grace} is less than the preStop pause (${pause} s) plus the drain of ${entry} (${drain} s): the process would be killed with requests in flight`]
    : []
}

/** Our image runs as the Dockerfile says: its ENTRYPOINT kept, a `node <entry>` that the image has, its ports. */
function imageProblems (objects: K8sObject[], w: Workload, c: Container, image: ImageFacts): string[] {
  const where = `${w.name} container ${c.name}`
  const problems: string[] = []
  if (c.image !== OUR_IMAGE) problems.push(`${where}: image ${String(c.image)}, not ${OUR_IMAGE} (docker build -t ${OUR_IMAGE} .)`)
  if (c.imagePullPolicy !== 'IfNotPresent') problems.push(`${where}: imagePullPolicy ${c.imagePullPolicy ?? '(unset: Always, for a :latest tag)'}, not IfNotPresent: the node would try to pull ${OUR_IMAGE} from a registry that does not have it`)
  if (c.command !== undefined && JSON.stringify(c.command) !== JSON.stringify(image.entrypoint)) problems.push(`${where}: command ${JSON.stringify(c.command)} replaces the image's ENTRYPOINT ${JSON.stringify(image.entrypoint)} (tini, which passes SIGTERM on to Node)`)
  const entry = entryOf(c)
  if (c.args?.[0] !== 'node' || c.args.length !== 2 || entry === undefined) problems.push(`${where}: args ${JSON.stringify(c.args)} are not "node <entry file>"`)
  else if (!existsSync(join(root, entry))) problems.push(`${where}: runs ${entry}, which does not exist`)
  else if (!image.copied.some((source) => entry.startsWith(`${source.replace(/\/$/, '')}/`))) problems.push(`${where}: runs ${entry}, which the Dockerfile does not COPY into the image`)
  if (entry === APP_SERVER_ENTRY && JSON.stringify(c.args) !== JSON.stringify(image.cmd)) problems.push(`${where}: args ${JSON.stringify(c.args)} differ from the Dockerfile's CMD ${JSON.stringify(image.cmd)}`)
  for (const port of c.ports ?? []) {
    if (!image.expose.includes(port.containerPort)) problems.push(`${where}: port ${port.containerPort} is not one the Dockerfile EXPOSEs (${image.expose.join(', ')})`)
  }
  const { env } = environmentOf(objects, w, c)
  const listening = Number(env.PORT)
  if (resolvePort([c], listening) === undefined) problems.push(`${where}: PORT=${String(env.PORT)}, but the container declares ${(c.ports ?? []).map((p) => p.containerPort).join(', ') || 'no port'}`)
  return problems
}

/** Every container of every workload, and our own image's containers against the Dockerfile. */
export function podProblems (objects: K8sObject[], image = dockerfileFacts()): string[] {
  const problems: string[] = []
  for (const w of workloads(objects)) {
    for (const c of w.pod.containers) {
      problems.push(...probeProblems(w, c), ...securityProblems(w, c, image), ...resourceProblems(w, c))
      const entry = entryOf(c)
      const ours = c.image?.startsWith('auth-cluster') === true || entry === APP_SERVER_ENTRY || entry === BALANCER_ENTRY || entry === ISSUER_ENTRY
      if (ours) problems.push(...imageProblems(objects, w, c, image))
      if (entry === APP_SERVER_ENTRY || entry === BALANCER_ENTRY || entry === ISSUER_ENTRY) problems.push(...terminationProblems(w, c, entry))
    }
  }
  return problems
}
