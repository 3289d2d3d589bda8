import {
  APP_SERVER_ENTRY, BALANCER_ENTRY, ISSUER_ENTRY, byKind, containersRunning, environmentOf, find, matchLabels, resolvePort, selectedWorkloads,
  selects, showSelector, workloads, type LabelSelector, type Workload
} from './k8s-model.ts'
import type { K8sObject } from './kustomize-lite.ts'
import { describe } from './schema.ts'

/**
 * What ties the objects together, which no schema sees: selectors that select the pods they are
 * meant for, ports that exist, the autoscaler's target, one namespace, the NetworkPolicy that
 * lets only the balancer reach the app servers, and the names the processes look up (the
 * balancer's UPSTREAMS_DNS, the servers' REDIS_URL) pointing at the right Services.
 */

export function selectorProblems (objects: K8sObject[]): string[] {
  const all = workloads(objects)
  const problems: string[] = []
  const pods = (namespace: string | undefined): string => all.filter((w) => w.namespace === namespace).map((w) => `${w.name} ${JSON.stringify(w.labels)}`).join('; ') || 'none'
  for (const w of all) {
    if (w.selector === undefined) problems.push(`${w.name}: no spec.selector`)
    else if (!selects(w.selector, w.labels)) problems.push(`${w.name}: spec.selector ${showSelector(w.selector)} does not select its own pod template's labels ${JSON.stringify(w.labels)}`)
    for (const [i, constraint] of (w.pod.topologySpreadConstraints ?? []).entries()) {
      if (!selects(constraint.labelSelector, w.labels)) problems.push(`${w.name}: topologySpreadConstraints[${i}].labelSelector ${showSelector(constraint.labelSelector)} does not select its own pods`)
    }
  }
  const mustSelect = (object: K8sObject, selector: LabelSelector | undefined, field: string): Workload[] => {
    const selected = selectedWorkloads(all, selector, object.metadata.namespace)
    if (selected.length === 0) problems.push(`${describe(object)}: ${field} ${showSelector(selector)} selects no pods (the pods here: ${pods(object.metadata.namespace)})`)
    return selected
  }
  for (const service of byKind(objects, 'Service')) {
    const spec = service.spec as { selector?: Record<string, string>, ports?: Array<{ name?: string, port: number, targetPort?: number | string }> }
    if (spec.selector === undefined) {
      problems.push(`${describe(service)}: no spec.selector: nothing would keep its endpoints up to date`)
      continue
    }
    const selected = mustSelect(service, matchLabels(spec.selector), 'spec.selector')
    for (const port of spec.ports ?? []) {
      const target = port.targetPort ?? port.port
      for (const w of selected) {
        if (resolvePort(w.pod.containers, target) === undefined) problems.push(`${describe(service)}: port ${port.name ?? port.port}'s targetPort ${target} is not a port the pods of ${w.name} declare`)
      }
    }
  }
  for (const budget of byKind(objects, 'PodDisruptionBudget')) mustSelect(budget, (budget.spec as { selector?: LabelSelector }).selector, 'spec.selector')
  for (const policy of byKind(objects, 'NetworkPolicy')) {
    const spec = policy.spec as NetworkPolicySpec
    const selected = mustSelect(policy, spec.podSelector, 'spec.podSelector')
    for (const [i, rule] of (spec.ingress ?? []).entries()) {
      for (const [j, peer] of (rule.from ?? []).entries()) {
        if (peer.podSelector !== undefined && peer.namespaceSelector === undefined) mustSelect(policy, peer.podSelector, `spec.ingress[${i}].from[${j}].podSelector`)
      }
      for (const port of rule.ports ?? []) {
        for (const w of selected) {
          if (port.port !== undefined && resolvePort(w.pod.containers, port.port) === undefined) problems.push(`${describe(policy)}: spec.ingress[${i}] opens port ${port.port}, which the pods of ${w.name} do not declare`)
        }
      }
    }
  }
  for (const autoscaler of byKind(objects, 'HorizontalPodAutoscaler')) {
    const spec = autoscaler.spec as { scaleTargetRef: { apiVersion?: string, kind: string, name: string }, minReplicas?: number, maxReplicas: number, metrics?: Array<{ type: string, resource?: { name: string } }> }
    const ref = spec.scaleTargetRef
    const target = all.find((w) => w.object.kind === ref.kind && w.object.metadata.name === ref.name && w.namespace === autoscaler.metadata.namespace)
    if (target === undefined || ref.apiVersion !== target.object.apiVersion) {
      problems.push(`${describe(autoscaler)}: spec.scaleTargetRef names ${ref.apiVersion ?? '?'} ${ref.kind}/${ref.name}, which is not among the rendered workloads`)
      continue
    }
    if ((spec.minReplicas ?? 1) > spec.maxReplicas) problems.push(`${describe(autoscaler)}: minReplicas ${spec.minReplicas ?? 1} is above maxReplicas ${spec.maxReplicas}`)
    for (const metric of spec.metrics ?? []) {
      const resource = metric.resource?.name
      if (metric.type !== 'Resource' || resource === undefined) continue
      for (const container of target.pod.containers) {
        if (container.resources?.requests?.[resource] === undefined) problems.push(`${describe(autoscaler)}: scales on ${resource} utilization, but ${target.name} container ${container.name} requests no ${resource} to measure it against`)
      }
    }
  }
  return problems
}

interface NetworkPolicyPeer { podSelector?: LabelSelector, namespaceSelector?: LabelSelector, ipBlock?: unknown }
interface NetworkPolicySpec { podSelector?: LabelSelector, policyTypes?: string[], ingress?: Array<{ from?: NetworkPolicyPeer[], ports?: Array<{ port?: number | string }> }> }

/** Every namespaced object in one namespace, and that Namespace among the objects (kubectl apply -k creates it first). */
export function namespaceProblems (objects: K8sObject[]): string[] {
  const namespaced = objects.filter((o) => o.kind !== 'Namespace')
  const names = new Set(namespaced.map((o) => o.metadata.namespace))
  if (names.size !== 1 || names.has(undefined)) {
    return [`the objects are in ${[...names].map((n) => n ?? '(no namespace)').join(', ')}: an overlay sets one namespace for all (namespace: in its kustomization.yaml)`]
  }
  const [namespace] = [...names]
  return byKind(objects, 'Namespace').some((n) => n.metadata.name === namespace) ? [] : [`no Namespace ${String(namespace)} among the objects: kubectl apply -k would fail on its first object`]
}

/**
 * Who may connect to whom. The app servers believe X-Forwarded-For from the private range
 * (TRUST_PROXY), so only the balancer may reach them; Redis has no password, so only the app
 * servers may reach it.
 */
export function networkPolicyProblems (objects: K8sObject[]): string[] {
  const all = workloads(objects)
  const problems: string[] = []
  const apps = containersRunning(all, APP_SERVER_ENTRY).map((c) => c.workload)
  const balancers = containersRunning(all, BALANCER_ENTRY).map((c) => c.workload)
  const issuers = containersRunning(all, ISSUER_ENTRY).map((c) => c.workload)
  const redis = all.filter((w) => w.pod.containers.some((c) => /^redis:/.test(c.image ?? '')))
  const guard = (targets: Workload[], allowed: Workload[], why: string): void => {
    for (const target of targets) {
      const policies = byKind(objects, 'NetworkPolicy').filter((p) => p.metadata.namespace === target.namespace && selects((p.spec as NetworkPolicySpec).podSelector, target.labels))
      const ingress = policies.filter((p) => (p.spec as NetworkPolicySpec).policyTypes?.includes('Ingress') ?? true)
      if (ingress.length === 0) {
        problems.push(`${target.name}: no NetworkPolicy limits who connects to its pods (${why})`)
        continue
      }
      for (const policy of ingress) {
        for (const [i, rule] of ((policy.spec as NetworkPolicySpec).ingress ?? []).entries()) {
          if (rule.from === undefined || rule.from.length === 0) problems.push(`${describe(policy)}: spec.ingress[${i}] has no "from": it lets every pod in (${why})`)
          for (const [j, peer] of (rule.from ?? []).entries()) {
            const others = peer.podSelector === undefined || peer.namespaceSelector !== undefined || peer.ipBlock !== undefined
              ? ['pods outside this namespace or addresses']
              : all.filter((w) => w.namespace === target.namespace && selects(peer.podSelector, w.labels) && !allowed.includes(w)).map((w) => w.name)
            if (others.length > 0) problems.push(`${describe(policy)}: spec.ingress[${i}].from[${j}] also lets in ${others.join(', ')} (${why})`)
          }
        }
      }
    }
  }
  guard(apps, balancers, 'only the balancer may reach an app server: the servers believe X-Forwarded-For from the private range TRUST_PROXY names')
  guard(issuers, balancers, 'only the balancer may reach an issuer: it believes X-Forwarded-For from the private range TRUST_PROXY names, and counts failed logins by it')
  // Redis's clients: the app servers where they use it (sessions, revocation, login counters),
  // and the issuer (refresh tokens); nobody else, least of all an app server that does not need it.
  const appsUsingRedis = containersRunning(all, APP_SERVER_ENTRY).filter(({ workload, container }) => usesRedis(environmentOf(objects, workload, container).env)).map((c) => c.workload)
  const clients = issuers.length > 0 ? issuers : appsUsingRedis
  guard(redis, [...new Set([...appsUsingRedis, ...issuers])], `only ${clients === issuers ? 'the issuer' : 'the app servers'} may reach Redis: it has no password`)
  return problems
}

/**
 * The balancer's UPSTREAMS_DNS names a headless Service of the app servers, on the port the
 * servers listen on; and where ROUTES sends paths to the issuer pool, UPSTREAMS_DNS_ISSUER names
 * one of the issuers.
 */
export function discoveryProblems (objects: K8sObject[]): string[] {
  const all = workloads(objects)
  const problems: string[] = []
  for (const { workload, container } of containersRunning(all, BALANCER_ENTRY)) {
    const { env } = environmentOf(objects, workload, container)
    problems.push(...poolDiscoveryProblems(objects, all, workload, container.name, 'UPSTREAMS_DNS', env.UPSTREAMS_DNS, APP_SERVER_ENTRY, 'the app servers'))
    if ((env.ROUTES ?? '').includes(':issuer')) {
      problems.push(...poolDiscoveryProblems(objects, all, workload, container.name, 'UPSTREAMS_DNS_ISSUER', env.UPSTREAMS_DNS_ISSUER, ISSUER_ENTRY, 'the issuers'))
    }
  }
  return problems
}

function poolDiscoveryProblems (objects: K8sObject[], all: Workload[], workload: Workload, containerName: string, variable: string, value: string | undefined, entry: string, who: string): string[] {
  const where = `${workload.name} container ${containerName}`
  if (value === undefined || value === '') return [`${where}: ${variable} is not set: the balancer would not find ${who}`]
  const problems: string[] = []
  const targets = containersRunning(all, entry)
  const [host = '', port = ''] = value.split(':')
  const [serviceName, namespace = workload.namespace, ...domain] = host.split('.')
  if (domain.length > 0 && domain[0] !== 'svc') return [`${where}: ${variable}=${value} is not a Service's name (name, name.namespace or name.namespace.svc.cluster-domain)`]
  const service = find(objects, 'Service', serviceName, namespace)
  if (service === undefined) return [`${where}: ${variable}=${value} names Service ${String(serviceName)} in ${String(namespace)}, which is not among the rendered objects`]
  const spec = service.spec as { clusterIP?: string, publishNotReadyAddresses?: boolean, selector?: Record<string, string>, ports?: Array<{ port: number, targetPort?: number | string }> }
  if (spec.clusterIP !== 'None') problems.push(`${where}: ${variable}=${value} names ${describe(service)}, which is not headless (clusterIP: None): its name resolves to one virtual IP, not to every pod`)
  if (spec.publishNotReadyAddresses === true) problems.push(`${where}: ${describe(service)} publishes pods that are not ready: the balancer would send requests to pods still starting or stopping`)
  const selected = selectedWorkloads(all, matchLabels(spec.selector ?? {}), service.metadata.namespace)
  if (!targets.some((a) => selected.includes(a.workload))) problems.push(`${where}: ${variable}=${value} names ${describe(service)}, whose pods are not ${who} (it selects ${selected.map((w) => w.name).join(', ') || 'nothing'})`)
  if (!(spec.ports ?? []).some((p) => p.port === Number(port))) problems.push(`${where}: ${variable}=${value}: ${describe(service)} has no port ${port}`)
  for (const target of targets.filter((a) => selected.includes(a.workload))) {
    if (resolvePort([target.container], Number(port)) === undefined) {
      problems.push(`${where}: ${variable}=${value}: the balancer connects to each pod's own address on port ${port} (a headless Service translates no ports), but ${target.workload.name} container ${target.container.name} listens on ${(target.container.ports ?? []).map((p) => p.containerPort).join(', ') || 'no declared port'}`)
    }
  }
  return problems
}

/** Whether an app server with this environment uses Redis. */
function usesRedis (env: Record<string, string>): boolean {
  return env.AUTH_MODE === 'redis' || env.JWT_REVOCATION === 'redis' || env.LOGIN_THROTTLE_STORE === 'redis'
}

/** Where the app servers (or the issuer, always) use Redis, REDIS_URL names a Service of a Redis pod, on its port. */
export function redisProblems (objects: K8sObject[]): string[] {
  const all = workloads(objects)
  const problems: string[] = []
  for (const { workload, container } of [...containersRunning(all, APP_SERVER_ENTRY), ...containersRunning(all, ISSUER_ENTRY)]) {
    const { env } = environmentOf(objects, workload, container)
    if (!usesRedis(env) && containersRunning([workload], ISSUER_ENTRY).length === 0) continue
    const where = `${workload.name} container ${container.name}`
    let url: URL
    try {
      url = new URL(env.REDIS_URL ?? '')
    } catch {
      problems.push(`${where}: uses Redis, but REDIS_URL is not a URL (${JSON.stringify(env.REDIS_URL)})`)
      continue
    }
    const [serviceName, namespace = workload.namespace] = url.hostname.split('.')
    const service = find(objects, 'Service', serviceName, namespace)
    const port = Number(url.port || 6379)
    const spec = service?.spec as { selector?: Record<string, string>, ports?: Array<{ port: number }> } | undefined
    const servesRedis = selectedWorkloads(all, matchLabels(spec?.selector ?? {}), namespace).some((w) => w.pod.containers.some((c) => /^redis:/.test(c.image ?? '')))
    if (service === undefined || !servesRedis) problems.push(`${where}: uses Redis at ${url.host}, but no Service ${String(serviceName)} of a Redis pod is among the rendered objects (add ../../redis to the overlay's resources)`)
    else if (!(spec?.ports ?? []).some((p) => p.port === port)) problems.push(`${where}: REDIS_URL port ${port} is not a port of ${describe(service)}`)
  }
  return problems
}
