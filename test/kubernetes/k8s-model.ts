import type { K8sObject } from './kustomize-lite.ts'
import { describe } from './schema.ts'

/**
 * The few Kubernetes notions the checks share: pod templates, label selectors, container ports,
 * environments, quantities. Typed loosely on purpose: the schema check (schema.ts) has already
 * refused wrong types and unknown fields, these read what is there.
 */

export interface Probe { httpGet?: { path?: string, port?: number | string }, tcpSocket?: { port?: number | string }, exec?: { command?: string[] } }
export interface SecurityContext {
  runAsNonRoot?: boolean
  runAsUser?: number
  allowPrivilegeEscalation?: boolean
  readOnlyRootFilesystem?: boolean
  privileged?: boolean
  capabilities?: { drop?: string[], add?: string[] }
  seccompProfile?: { type?: string }
}
export interface EnvVar { name: string, value?: string, valueFrom?: { fieldRef?: { fieldPath?: string }, configMapKeyRef?: { name?: string, key?: string }, secretKeyRef?: { name?: string, key?: string } } }
export interface Container {
  name: string
  image?: string
  imagePullPolicy?: string
  command?: string[]
  args?: string[]
  ports?: Array<{ name?: string, containerPort: number }>
  env?: EnvVar[]
  envFrom?: Array<{ configMapRef?: { name?: string }, secretRef?: { name?: string } }>
  readinessProbe?: Probe
  livenessProbe?: Probe
  lifecycle?: { preStop?: { sleep?: { seconds?: number }, exec?: { command?: string[] } } }
  resources?: { requests?: Record<string, string | number>, limits?: Record<string, string | number> }
  securityContext?: SecurityContext
  volumeMounts?: Array<{ name: string, mountPath: string, readOnly?: boolean }>
}
export interface LabelSelector { matchLabels?: Record<string, string>, matchExpressions?: Array<{ key: string, operator: string, values?: string[] }> }
export interface PodSpec {
  containers: Container[]
  securityContext?: SecurityContext
  terminationGracePeriodSeconds?: number
  volumes?: Array<{ name: string, secret?: { secretName?: string, items?: Array<{ key: string, path: string }> }, configMap?: { name?: string }, emptyDir?: unknown }>
  topologySpreadConstraints?: Array<{ labelSelector?: LabelSelector }>
}

/** A Deployment, StatefulSet or the like: its selector, pod labels and pod spec. */
export interface Workload { object: K8sObject, name: string, namespace: string | undefined, replicas: number | undefined, selector: LabelSelector | undefined, labels: Record<string, string>, pod: PodSpec }

export function workloads (objects: K8sObject[]): Workload[] {
  return objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind)).map((object) => {
    const spec = object.spec as { replicas?: number, selector?: LabelSelector, template?: { metadata?: { labels?: Record<string, string> }, spec?: PodSpec } } | undefined
    return {
      object,
      name: describe(object),
      namespace: object.metadata.namespace,
      replicas: spec?.replicas,
      selector: spec?.selector,
      labels: spec?.template?.metadata?.labels ?? {},
      pod: spec?.template?.spec ?? { containers: [] }
    }
  })
}

export const byKind = (objects: K8sObject[], kind: string): K8sObject[] => objects.filter((o) => o.kind === kind)
export const find = (objects: K8sObject[], kind: string, name: string | undefined, namespace: string | undefined): K8sObject | undefined =>
  objects.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace)

/** Whether a label selector selects these labels. An empty selector selects everything, as in the API. */
export function selects (selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return false
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key)
    const ok = operator === 'In'
      ? has && values.includes(labels[key] as string)
      : operator === 'NotIn' ? !has || !values.includes(labels[key] as string) : operator === 'Exists' ? has : operator === 'DoesNotExist' ? !has : false
    if (!ok) return false
  }
  return true
}

/** A plain `map[string]string` selector (a Service's) as a LabelSelector. */
export const matchLabels = (labels: Record<string, string> | undefined): LabelSelector | undefined => labels === undefined ? undefined : { matchLabels: labels }

export const showSelector = (selector: LabelSelector | undefined): string => JSON.stringify(selector?.matchLabels ?? selector ?? {})

/** The workloads in `namespace` whose pods a selector selects. */
export function selectedWorkloads (all: Workload[], selector: LabelSelector | undefined, namespace: string | undefined): Workload[] {
  return all.filter((w) => w.namespace === namespace && selects(selector, w.labels))
}

/** The container port a probe or Service names (a name or a number), or undefined when the containers declare no such port. */
export function resolvePort (containers: Container[], port: number | string | undefined): number | undefined {
  for (const container of containers) {
    for (const declared of container.ports ?? []) {
      if (typeof port === 'number' ? declared.containerPort === port : declared.name === port) return declared.containerPort
    }
  }
  return undefined
}

/** Which of our processes a container runs (its `node <entry>` argument), if it is one of ours. */
export function entryOf (container: Container): string | undefined {
  const argv = [...(container.command ?? []), ...(container.args ?? [])]
  const node = argv.indexOf('node')
  return node === -1 ? undefined : argv[node + 1]
}

export const APP_SERVER_ENTRY = 'services/server.ts'
export const BALANCER_ENTRY = 'balancer/server.ts'
/** jwt mode with JWT_SIGNING=eddsa's issuer: only overlays/jwt-eddsa runs one. */
export const ISSUER_ENTRY = 'services/issuer/server.ts'

/** The containers that run one of our entry points, with their workload. */
export function containersRunning (all: Workload[], entry: string): Array<{ workload: Workload, container: Container }> {
  return all.flatMap((workload) => workload.pod.containers.filter((c) => entryOf(c) === entry).map((container) => ({ workload, container })))
}

/** What the container's process finds in its environment; a variable whose value comes from the pod (fieldRef) reads `<fieldPath>`. */
export function environmentOf (objects: K8sObject[], workload: Workload, container: Container): { env: Record<string, string>, problems: string[] } {
  const env: Record<string, string> = {}
  const problems: string[] = []
  const where = `${workload.name} container ${container.name}`
  const dataOf = (kind: 'ConfigMap' | 'Secret', name: string | undefined, what: string): Record<string, string> | undefined => {
    const found = find(objects, kind, name, workload.namespace)
    if (found === undefined) {
      problems.push(`${where}: ${what} names ${kind} ${String(name)}, which is not among the rendered objects`)
      return undefined
    }
    const data = (found.data ?? {}) as Record<string, string>
    return kind === 'Secret' ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : data
  }
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef !== undefined) Object.assign(env, dataOf('ConfigMap', source.configMapRef.name, 'envFrom'))
    if (source.secretRef !== undefined) Object.assign(env, dataOf('Secret', source.secretRef.name, 'envFrom'))
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom
    if (from === undefined) env[variable.name] = variable.value ?? ''
    else if (from.fieldRef !== undefined) env[variable.name] = `<${from.fieldRef.fieldPath ?? '?'}>`
    else {
      const [kind, ref] = from.configMapKeyRef !== undefined ? ['ConfigMap', from.configMapKeyRef] as const : ['Secret', from.secretKeyRef] as const
      const value = dataOf(kind, ref?.name, `env ${variable.name}`)?.[ref?.key ?? '']
      if (value === undefined) problems.push(`${where}: env ${variable.name} reads key ${String(ref?.key)} of ${kind} ${String(ref?.name)}, which has no such key`)
      else env[variable.name] = value
    }
  }
  return { env, problems }
}

/** A CPU or memory quantity in its base unit (cores, bytes), or NaN. */
export function quantity (value: string | number | undefined): number {
  if (typeof value === 'number') return value
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(value ?? '')
  if (match === null) return Number.NaN
  const factor = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[match[2] ?? ''] ?? 1
  return Number(match[1]) * factor
}
