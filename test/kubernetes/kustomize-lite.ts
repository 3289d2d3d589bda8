import { createHash } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'
import { applyJsonPatch, type JsonPatchOperation } from './json-patch.ts'

/**
 * The part of kustomize (v5) that deploy/kubernetes uses, so that `npm test` renders every
 * overlay with nothing fetched and no binary to trust: `resources` (YAML files and kustomization
 * directories), `namespace`, `configMapGenerator` and `secretGenerator` (envs, literals, files;
 * behavior create, merge or replace) with kustomize's name hash and the references to the
 * hashed names rewritten, and `patches` that are JSON patches (RFC 6902) with a kind/name target.
 * Anything else in a kustomization is refused by name: a manifest that starts to use more of
 * kustomize fails here until this learns it, rather than being rendered wrong.
 * kustomize-lite.test.ts compares the output with `kubectl kustomize` where kubectl is installed.
 */

export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string, namespace?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
  [field: string]: unknown
}

/** A rendered object, and the name its generator gave it before the hash (undefined: not generated). */
interface Resource { object: K8sObject, generatedName?: string }

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'configMapGenerator', 'secretGenerator', 'patches'])
// What the namespace transformer leaves without a namespace; it renames a Namespace instead.
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass', 'PriorityClass', 'IngressClass'])

export class KustomizeError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'KustomizeError'
  }
}

/** Renders the kustomization in `dir`, as `kustomize build dir` would. */
export function renderKustomization (dir: string): K8sObject[] {
  const resources = build(resolve(dir))
  return applyNameHashes(resources)
}

function build (dir: string): Resource[] {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((name) => join(dir, name)).find((path) => existsSync(path))
  if (file === undefined) throw new KustomizeError(`${dir}: no kustomization.yaml`)
  const kustomization = parse(readFileSync(file, 'utf8')) as Record<string, unknown> | null ?? {}
  for (const field of Object.keys(kustomization)) {
    if (!KNOWN_FIELDS.has(field)) throw new KustomizeError(`${file}: kustomize-lite does not know "${field}" (it knows ${[...KNOWN_FIELDS].join(', ')}): teach test/kubernetes/kustomize-lite.ts, or do without`)
  }
  const resources: Resource[] = []
  for (const entry of list(kustomization.resources, `${file}: resources`)) {
    const path = join(dir, String(entry))
    if (!existsSync(path)) throw new KustomizeError(`${file}: resources: ${String(entry)} does not exist`)
    if (statSync(path).isDirectory()) resources.push(...build(path))
    else resources.push(...readObjects(path).map((object) => ({ object })))
  }
  for (const generator of list(kustomization.configMapGenerator, `${file}: configMapGenerator`)) {
    generate(resources, 'ConfigMap', generator as Generator, dir, file)
  }
  for (const generator of list(kustomization.secretGenerator, `${file}: secretGenerator`)) {
    generate(resources, 'Secret', generator as Generator, dir, file)
  }
  // kustomize's order: patches, then the namespace (api/krusty's builtin transformer order).
  for (const patch of list(kustomization.patches, `${file}: patches`)) applyPatch(resources, patch as Patch, dir, file)
  const namespace = kustomization.namespace
  if (typeof namespace === 'string' && namespace !== '') {
    for (const { object } of resources) {
      if (object.kind === 'Namespace') object.metadata.name = namespace
      else if (!CLUSTER_SCOPED.has(object.kind)) object.metadata.namespace = namespace
    }
  }
  return resources
}

function list (value: unknown, where: string): unknown[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw new KustomizeError(`${where} must be a list`)
  return value
}

function readObjects (path: string): K8sObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).flatMap((document) => {
    if (document.errors.length > 0) throw new KustomizeError(`${path}: ${document.errors[0]?.message ?? 'not YAML'}`)
    const object = document.toJS() as K8sObject | null
    if (object === null) return []
    if (typeof object.kind !== 'string' || typeof object.apiVersion !== 'string' || typeof object.metadata?.name !== 'string') {
      throw new KustomizeError(`${path}: every object needs apiVersion, kind and metadata.name`)
    }
    return [object]
  })
}

interface Generator { name?: string, behavior?: string, envs?: string[], literals?: string[], files?: string[], type?: string }

function generate (resources: Resource[], kind: 'ConfigMap' | 'Secret', generator: Generator, dir: string, file: string): void {
  const where = `${file}: ${kind === 'ConfigMap' ? 'configMapGenerator' : 'secretGenerator'} ${generator.name ?? '(no name)'}`
  for (const field of Object.keys(generator)) {
    if (!['name', 'behavior', 'envs', 'literals', 'files', ...(kind === 'Secret' ? ['type'] : [])].includes(field)) {
      throw new KustomizeError(`${where}: kustomize-lite does not know "${field}"`)
    }
  }
  if (generator.name === undefined) throw new KustomizeError(`${where}: a generator needs a name`)
  const data: Record<string, string> = {}
  const binaryData: Record<string, string> = {}
  for (const envFile of generator.envs ?? []) {
    const path = join(dir, envFile)
    if (!existsSync(path)) throw new KustomizeError(`${where}: envs: ${path} does not exist`)
    readFileSync(path, 'utf8').replace(/^\uFEFF/, '').split('\n').forEach((line, i) => {
      const pair = envLine(line, `${path}:${i + 1}`)
      if (pair !== undefined) data[pair[0]] = kind === 'Secret' ? base64(pair[1]) : pair[1]
    })
  }
  for (const literal of generator.literals ?? []) {
    const equals = literal.indexOf('=')
    if (equals <= 0) throw new KustomizeError(`${where}: literal ${JSON.stringify(literal)} is not KEY=VALUE`)
    const value = unquote(literal.slice(equals + 1))
    data[literal.slice(0, equals)] = kind === 'Secret' ? base64(value) : value
  }
  for (const entry of generator.files ?? []) {
    const equals = entry.indexOf('=')
    const [key, path] = equals === -1 ? [basename(entry), join(dir, entry)] : [entry.slice(0, equals), join(dir, entry.slice(equals + 1))]
    if (!existsSync(path)) throw new KustomizeError(`${where}: files: ${path} does not exist`)
    const bytes = readFileSync(path)
    if (kind === 'Secret') data[key] = secretValue(bytes)
    else if (isUtf8(bytes)) data[key] = bytes.toString('utf8')
    else binaryData[key] = bytes.toString('base64')
  }

  const behavior = generator.behavior ?? 'create'
  const existing = resources.find((r) => r.object.kind === kind && r.generatedName === generator.name)
  if (behavior === 'create') {
    if (existing !== undefined) throw new KustomizeError(`${where}: a ${kind} ${generator.name} already exists (use behavior: merge or replace)`)
    const object: K8sObject = { apiVersion: 'v1', kind, metadata: { name: generator.name } }
    if (kind === 'Secret') object.type = generator.type ?? 'Opaque'
    object.data = data
    if (Object.keys(binaryData).length > 0) object.binaryData = binaryData
    resources.push({ object, generatedName: generator.name })
  } else if (behavior === 'merge' || behavior === 'replace') {
    if (existing === undefined) throw new KustomizeError(`${where}: behavior ${behavior}, but no generated ${kind} ${generator.name} comes before it`)
    const before = behavior === 'merge' ? existing.object.data as Record<string, string> ?? {} : {}
    existing.object.data = { ...before, ...data }
  } else {
    throw new KustomizeError(`${where}: behavior must be create, merge or replace (got ${JSON.stringify(behavior)})`)
  }
}

/**
 * One line of an env file, as kustomize reads it (api/kv): leading blanks dropped, blank lines
 * and # comments skipped, KEY=VALUE split at the first "=" with the value kept as written (no
 * inline comment, no unquoting). A line with no "=" is refused: kustomize would take its value
 * from the environment of whoever renders, never what a manifest means.
 */
function envLine (raw: string, where: string): [string, string] | undefined {
  const line = raw.replace(/\r$/, '').trimStart()
  if (line === '' || line.startsWith('#')) return undefined
  const equals = line.indexOf('=')
  if (equals === -1) throw new KustomizeError(`${where}: ${JSON.stringify(line)} has no "=": kustomize would read its value from the environment of whoever renders`)
  const key = line.slice(0, equals)
  if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(key)) throw new KustomizeError(`${where}: ${JSON.stringify(key)} is not a variable name`)
  return [key, line.slice(equals + 1)]
}

/** kustomize drops one pair of matching quotes around a literal's value. */
function unquote (value: string): string {
  if (value.length >= 2 && value[0] === value.at(-1) && (value[0] === '"' || value[0] === '\'')) return value.slice(1, -1)
  return value
}

/**
 * A Secret's value as kustomize writes it: base64 in lines of 70 characters, each ended by a
 * newline once there is more than one (api/internal/generators encodeBase64, after kubectl's);
 * the API server's decoder skips the newlines. The name hash is taken over this text.
 */
function secretValue (bytes: Buffer): string {
  const encoded = bytes.toString('base64')
  if (encoded.length < 70) return encoded
  return encoded.match(/.{1,70}/g)?.map((line) => `${line}\n`).join('') ?? encoded
}

const base64 = (text: string): string => secretValue(Buffer.from(text, 'utf8'))
const isUtf8 = (bytes: Buffer): boolean => Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes)

interface Patch { path?: string, patch?: string, target?: { kind?: string, name?: string, [other: string]: unknown } }

function applyPatch (resources: Resource[], patch: Patch, dir: string, file: string): void {
  const where = `${file}: patches ${patch.path ?? '(inline)'}`
  const text = patch.path !== undefined ? readFileSync(join(dir, patch.path), 'utf8') : patch.patch
  if (text === undefined) throw new KustomizeError(`${where}: a patch needs path or patch`)
  const operations = parse(text) as unknown
  if (!Array.isArray(operations)) throw new KustomizeError(`${where}: kustomize-lite applies JSON patches (a list of operations) only, not strategic merge patches`)
  const target = patch.target ?? {}
  for (const field of Object.keys(target)) {
    if (field !== 'kind' && field !== 'name') throw new KustomizeError(`${where}: kustomize-lite targets by kind and name only (got ${field})`)
  }
  if (target.kind === undefined && target.name === undefined) throw new KustomizeError(`${where}: a JSON patch needs a target`)
  // kustomize's selectors are regular expressions matched against the whole value.
  const matches = (pattern: string | undefined, value: string): boolean => pattern === undefined || new RegExp(`^(?:${pattern})$`).test(value)
  const selected = resources.filter((r) => matches(target.kind, r.object.kind) && matches(target.name, r.generatedName ?? r.object.metadata.name))
  if (selected.length === 0) throw new KustomizeError(`${where}: no ${target.kind ?? 'object'} named ${target.name ?? '(any)'} to patch`)
  for (const resource of selected) {
    try {
      resource.object = applyJsonPatch(resource.object, operations as JsonPatchOperation[]) as K8sObject
    } catch (err) {
      throw new KustomizeError(`${where}: ${resource.object.kind}/${resource.object.metadata.name}: ${(err as Error).message}`)
    }
  }
}

/**
 * kustomize's name suffix: the first ten hex digits of a SHA-256, with 0 1 3 a e swapped for
 * g h k m t (api/hasher, after kubectl's hash.go), over Go's json.Marshal of {data, kind, name,
 * type}. The name in that JSON is always "": the hasher looks "metadata/name" up as one field
 * name and finds nothing (kustomize api/hasher/hasher.go, encodeConfigMap and encodeSecret).
 */
export function nameHash (object: K8sObject): string {
  const fields: Record<string, unknown> = { data: sortKeys(object.data as Record<string, string> ?? {}), kind: object.kind, name: '' }
  if (object.kind === 'ConfigMap' && object.binaryData !== undefined) fields.binaryData = sortKeys(object.binaryData as Record<string, string>)
  if (object.kind === 'Secret') fields.type = object.type ?? ''
  // Go's json.Marshal escapes <, > and & in strings, and sorts map keys.
  const json = JSON.stringify(sortKeys(fields)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  const hex = createHash('sha256').update(json).digest('hex')
  return hex.slice(0, 10).replace(/[013ae]/g, (c) => ({ 0: 'g', 1: 'h', 3: 'k', a: 'm', e: 't' })[c as '0'] ?? c)
}

function sortKeys<T> (record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(record).sort().map((key) => [key, record[key] as T]))
}

/** Gives every generated object its hashed name and points the pod templates' references at it. */
function applyNameHashes (resources: Resource[]): K8sObject[] {
  const renamed = new Map<string, string>()
  const key = (kind: string, namespace: string | undefined, name: string): string => `${kind}/${namespace ?? ''}/${name}`
  for (const { object, generatedName } of resources) {
    if (generatedName === undefined) continue
    object.metadata.name = `${generatedName}-${nameHash(object)}`
    renamed.set(key(object.kind, object.metadata.namespace, generatedName), object.metadata.name)
  }
  for (const { object } of resources) {
    const spec = podSpecOf(object)
    if (spec === undefined) continue
    const rename = (kind: string, name: unknown): string | undefined =>
      typeof name === 'string' ? renamed.get(key(kind, object.metadata.namespace, name)) ?? name : undefined
    for (const container of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
      for (const source of container.envFrom ?? []) {
        if (source.configMapRef !== undefined) source.configMapRef.name = rename('ConfigMap', source.configMapRef.name)
        if (source.secretRef !== undefined) source.secretRef.name = rename('Secret', source.secretRef.name)
      }
      for (const variable of container.env ?? []) {
        const from = variable.valueFrom
        if (from?.configMapKeyRef !== undefined) from.configMapKeyRef.name = rename('ConfigMap', from.configMapKeyRef.name)
        if (from?.secretKeyRef !== undefined) from.secretKeyRef.name = rename('Secret', from.secretKeyRef.name)
      }
    }
    for (const volume of spec.volumes ?? []) {
      if (volume.configMap !== undefined) volume.configMap.name = rename('ConfigMap', volume.configMap.name)
      if (volume.secret !== undefined) volume.secret.secretName = rename('Secret', volume.secret.secretName)
      for (const source of volume.projected?.sources ?? []) {
        if (source.configMap !== undefined) source.configMap.name = rename('ConfigMap', source.configMap.name)
        if (source.secret !== undefined) source.secret.name = rename('Secret', source.secret.name)
      }
    }
  }
  return resources.map((r) => r.object)
}

interface NameRef { name?: string }
interface ContainerRefs { envFrom?: Array<{ configMapRef?: NameRef, secretRef?: NameRef }>, env?: Array<{ valueFrom?: { configMapKeyRef?: NameRef, secretKeyRef?: NameRef } }> }
interface PodSpecRefs {
  containers?: ContainerRefs[]
  initContainers?: ContainerRefs[]
  volumes?: Array<{ configMap?: NameRef, secret?: { secretName?: string }, projected?: { sources?: Array<{ configMap?: NameRef, secret?: NameRef }> } }>
}

/** The pod spec inside a workload (or a Pod's own). */
export function podSpecOf (object: K8sObject): PodSpecRefs | undefined {
  if (object.kind === 'Pod') return object.spec as PodSpecRefs | undefined
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(object.kind)) {
    return (object.spec as { template?: { spec?: PodSpecRefs } } | undefined)?.template?.spec
  }
  return undefined
}
