import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBalancerConfig, BalancerEnvSchema } from '../../balancer/config.ts'
import { ConfigError } from '../../lib/config.ts'
import { loadServerConfig, ServerEnvSchema } from '../../services/config.ts'
import { IssuerEnvSchema, loadIssuerConfig } from '../../services/issuer/config.ts'
import { dockerfileFacts, type ImageFacts } from './checks-pods.ts'
import { APP_SERVER_ENTRY, BALANCER_ENTRY, ISSUER_ENTRY, containersRunning, environmentOf, find, workloads, type Container, type Workload } from './k8s-model.ts'
import type { K8sObject } from './kustomize-lite.ts'

/**
 * What each of our processes finds in its environment, as test/docker checks Compose: every
 * variable the process reads is set, or named in the workload's annotation
 * auth-cluster/env-left-out with the reason; and what is set passes the process's own
 * configuration schema, so a pod would not stop at start on a bad value.
 */

export const LEFT_OUT_ANNOTATION = 'auth-cluster/env-left-out'

interface Process { entry: string, reads: string[], load: (env: Record<string, string>) => unknown, optional?: boolean }
const PROCESSES: Process[] = [
  { entry: APP_SERVER_ENTRY, reads: Object.keys(ServerEnvSchema.properties), load: loadServerConfig },
  { entry: BALANCER_ENTRY, reads: Object.keys(BalancerEnvSchema.properties), load: loadBalancerConfig },
  // Only overlays/jwt-eddsa runs an issuer.
  { entry: ISSUER_ENTRY, reads: Object.keys(IssuerEnvSchema.properties), load: loadIssuerConfig, optional: true }
]

/** The annotation's "NAME: reason" lines. */
export function leftOutOf (w: Workload): { reasons: Map<string, string>, problems: string[] } {
  const reasons = new Map<string, string>()
  const problems: string[] = []
  const text = w.object.metadata.annotations?.[LEFT_OUT_ANNOTATION] ?? ''
  for (const line of text.split('\n').map((l) => l.trim()).filter((l) => l !== '')) {
    const match = /^([A-Z][A-Z0-9_]*):\s*(\S.*)$/.exec(line)
    if (match === null) problems.push(`${w.name}: annotation ${LEFT_OUT_ANNOTATION}: ${JSON.stringify(line)} is not "NAME: reason"`)
    else reasons.set(match[1] as string, match[2] as string)
  }
  return { reasons, problems }
}

export function environmentProblems (objects: K8sObject[], image: ImageFacts = dockerfileFacts()): string[] {
  const all = workloads(objects)
  const problems: string[] = []
  for (const process of PROCESSES) {
    const runners = containersRunning(all, process.entry)
    if (runners.length === 0 && process.optional !== true) problems.push(`no workload runs ${process.entry}`)
    for (const { workload, container } of runners) {
      const where = `${workload.name} container ${container.name}`
      const { env, problems: envProblems } = environmentOf(objects, workload, container)
      const { reasons, problems: annotationProblems } = leftOutOf(workload)
      problems.push(...envProblems, ...annotationProblems)
      for (const name of process.reads) {
        if (!(name in env) && !reasons.has(name)) {
          problems.push(`${where}: ${name} is not set, but ${process.entry} reads it (set it in the ConfigMap, or give the reason in the annotation ${LEFT_OUT_ANNOTATION})`)
        }
      }
      for (const name of reasons.keys()) {
        if (!process.reads.includes(name)) problems.push(`${where}: annotation ${LEFT_OUT_ANNOTATION} names ${name}, which ${process.entry} does not read`)
        else if (name in env) problems.push(`${where}: ${name} is set, and also named as left out in ${LEFT_OUT_ANNOTATION}`)
      }
      // What the image sets applies where the pod sets nothing: HOST=0.0.0.0, without which the
      // process would listen on 127.0.0.1 and no probe or peer could reach it.
      const effective: Record<string, string> = { ...image.env, ...env }
      if (!('HOST' in env) && (image.env.HOST === undefined || /^127\.|^localhost$/.test(image.env.HOST))) {
        problems.push(`${where}: HOST is left out, but the image does not set it to an address other pods reach (Dockerfile ENV HOST=${image.env.HOST ?? '(unset)'})`)
      }
      // The server reads such files itself: it gets copies of the rendered Secrets' bytes, so its
      // own checks (length, published secrets, an empty file) judge what the pod would read.
      const copy = mkdtempSync(join(tmpdir(), 'secret-files-'))
      try {
        const files: Record<string, string> = {}
        for (const { variable, reads } of SECRET_FILES) {
          if (!reads(effective)) continue
          const mounted = mountedSecretFile(objects, workload, container, variable, effective[variable] ?? '')
          if (typeof mounted === 'string') problems.push(`${where}: ${mounted}`)
          else if (mounted !== undefined) {
            files[variable] = join(copy, variable)
            writeFileSync(files[variable], mounted.bytes)
          }
        }
        if (SECRET_FILES.some(({ variable, reads }) => reads(effective) && files[variable] === undefined && (effective[variable] ?? '') !== '')) continue
        try {
          process.load({ ...effective, ...files })
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err
          const unmapped = (p: string): string => Object.entries(files).reduce((text, [variable, path]) => text.replaceAll(path, effective[variable] ?? ''), p)
          problems.push(...err.problems.map((p) => `${where}: ${process.entry} would refuse to start: ${unmapped(p)}`))
        }
      } finally {
        rmSync(copy, { recursive: true, force: true })
      }
    }
  }
  return problems
}

/** Variables that name a file the server reads at start, and when it reads it. */
const SECRET_FILES: Array<{ variable: string, reads: (env: Record<string, string>) => boolean }> = [
  { variable: 'JWT_SECRET_FILE', reads: (env) => env.AUTH_MODE === 'jwt' && (env.JWT_SECRET ?? '') === '' && (env.JWT_SECRETS ?? '') === '' },
  { variable: 'COOKIE_SECRET_FILE', reads: (env) => env.AUTH_MODE === 'cookie' && (env.COOKIE_SECRET ?? '') === '' && (env.COOKIE_SECRETS ?? '') === '' },
  { variable: 'DATABASE_PASSWORD_FILE', reads: (env) => env.AUTH_MODE === 'postgres' }
]

/**
 * A file variable (JWT_SECRET_FILE, DATABASE_PASSWORD_FILE) names a file in a mounted Secret:
 * what the pod would find there, from the rendered Secret; undefined when the variable is empty;
 * a string saying what is wrong with the mount.
 */
function mountedSecretFile (objects: K8sObject[], w: Workload, c: Container, variable: string, path: string): { bytes: Buffer } | string | undefined {
  if (path === '') return undefined
  const mount = (c.volumeMounts ?? []).find((m) => path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
  if (mount === undefined) return `${variable}=${path} is on no volume the container mounts`
  const volume = (w.pod.volumes ?? []).find((v) => v.name === mount.name)
  if (volume?.secret === undefined) return `${variable}=${path} is on volume ${mount.name}, which is not a Secret`
  const secret = find(objects, 'Secret', volume.secret.secretName, w.namespace)
  if (secret === undefined) return `${variable}=${path}: volume ${mount.name} names Secret ${String(volume.secret.secretName)}, which is not among the rendered objects`
  const file = path.slice(mount.mountPath.replace(/\/$/, '').length + 1)
  const key = volume.secret.items === undefined ? file : volume.secret.items.find((item) => item.path === file)?.key
  const data = (secret.data ?? {}) as Record<string, string>
  if (key === undefined || data[key] === undefined) return `${variable}=${path}: Secret ${String(secret.metadata.name)} has no key ${key ?? file} to be that file`
  return { bytes: Buffer.from(data[key], 'base64') }
}
