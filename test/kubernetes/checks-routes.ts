import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBalancer } from '../../balancer/balancer.ts'
import { loadBalancerConfig } from '../../balancer/config.ts'
import { buildApp } from '../../services/app.ts'
import { loadServerConfig } from '../../services/config.ts'
import { buildIssuer } from '../../services/issuer/app.ts'
import { loadIssuerConfig } from '../../services/issuer/config.ts'
import { APP_SERVER_ENTRY, BALANCER_ENTRY, ISSUER_ENTRY, entryOf, workloads } from './k8s-model.ts'
import { issuerKeyFile } from './staging.ts'
import type { K8sObject } from './kustomize-lite.ts'

/**
 * Each HTTP probe asks a route that the process in the container really answers with a 2xx:
 * an app server built by buildApp (memory mode: /health is the same route in every mode), an
 * issuer built by buildIssuer (with a key of its own and no Redis: /health answers all the same)
 * and a real balancer listening on a free loopback port. A probe on a path that 404s or needs a login
 * would keep every pod unready, or restart it for ever.
 */
export async function probeRouteProblems (objects: K8sObject[]): Promise<string[]> {
  const problems: string[] = []
  for (const probe of probesOf(objects)) {
    if (probe.path === '') {
      problems.push(`${probe.where}: the ${NAMES[probe.entry] ?? probe.entry} answers HTTP; probe a route`)
      continue
    }
    const status = await statusOf(probe.entry, probe.path)
    if (status < 200 || status > 299) problems.push(`${probe.where}: the ${NAMES[probe.entry] ?? probe.entry} answers ${status}`)
  }
  return problems
}

interface ProbeTarget { entry: string, path: string, where: string }

const NAMES: Record<string, string> = { [APP_SERVER_ENTRY]: 'app server', [BALANCER_ENTRY]: 'balancer', [ISSUER_ENTRY]: 'issuer' }

function probesOf (objects: K8sObject[]): ProbeTarget[] {
  const wanted: ProbeTarget[] = []
  for (const w of workloads(objects)) {
    for (const c of w.pod.containers) {
      const entry = entryOf(c)
      if (entry === undefined || NAMES[entry] === undefined) continue
      for (const kind of ['readinessProbe', 'livenessProbe'] as const) {
        const path = c[kind]?.httpGet?.path
        if (path !== undefined) wanted.push({ entry, path, where: `${w.name} container ${c.name}: ${kind} GET ${path}` })
        else if (c[kind] !== undefined) wanted.push({ entry, path: '', where: `${w.name} container ${c.name}: ${kind} is not an HTTP GET` })
      }
    }
  }
  return wanted
}

// What a process answered on a path, asked once per run: the answer does not depend on the
// manifests, and building an app or starting a balancer for every check would cost seconds.
const answers = new Map<string, Promise<number>>()

async function statusOf (entry: string, path: string): Promise<number> {
  const key = `${entry} ${path}`
  let answer = answers.get(key)
  if (answer === undefined) {
    answer = entry === APP_SERVER_ENTRY ? appServerAnswer(path) : entry === ISSUER_ENTRY ? issuerAnswer(path) : balancerAnswer(path)
    answers.set(key, answer)
  }
  return await answer
}

async function appServerAnswer (path: string): Promise<number> {
  const app = await buildApp(loadServerConfig({ AUTH_MODE: 'memory', SERVER_ID: 'probe-check' }), { logger: false })
  try {
    return (await app.inject({ method: 'GET', url: path })).statusCode
  } finally {
    await app.close()
  }
}

async function issuerAnswer (path: string): Promise<number> {
  const keys = mkdtempSync(join(tmpdir(), 'probe-check-keys-'))
  writeFileSync(join(keys, 'key.json'), issuerKeyFile(), { mode: 0o600 })
  // Redis on the discard port: refused at once, and the issuer answers /health all the same.
  const issuer = await buildIssuer(loadIssuerConfig({ ISSUER_KEYS_DIR: keys, SERVER_ID: 'probe-check', REDIS_URL: 'redis://127.0.0.1:9' }), { logger: false })
  try {
    return (await issuer.inject({ method: 'GET', url: path })).statusCode
  } finally {
    await issuer.close()
    rmSync(keys, { recursive: true, force: true })
  }
}

async function balancerAnswer (path: string): Promise<number> {
  // An upstream on the discard port: refused at once, on this machine only.
  const balancer = createBalancer(loadBalancerConfig({ UPSTREAMS: 'http://127.0.0.1:9', PORT: '0', HOST: '127.0.0.1', HEALTH_INTERVAL_MS: '60000' }))
  try {
    const url = await balancer.listen()
    return (await fetch(new URL(path, url), { signal: AbortSignal.timeout(5000) })).status
  } finally {
    await balancer.close()
  }
}
