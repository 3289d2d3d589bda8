import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import ts from 'typescript'
import type { K8sObject } from './kustomize-lite.ts'

/**
 * Every rendered object against the Kubernetes API schema of one named version, offline: the
 * kubernetes-models package (MIT, tommy351/kubernetes-models-ts) ships the API's OpenAPI
 * definitions compiled into ajv validators, one per kind. Those validators check types, enums,
 * formats and required fields, but let any unknown field through (the generated schemas have no
 * `additionalProperties: false`, and the API server itself would only warn), so a misspelt
 * `readinesProbe` would pass. The package's TypeScript declarations, made from the same
 * definitions, list every field of every type: strictFieldProblems walks each object along
 * them and refuses what they do not name, as `kubectl apply --validate=strict` does.
 */

const require = createRequire(import.meta.url)
const MODELS_ROOT = dirname(require.resolve('kubernetes-models/package.json'))

/** The models package pinned in package.json, and the Kubernetes release its schemas come from (its CHANGELOG: 5.0.0 "Update to Kubernetes v1.36.0"). */
export const MODELS_VERSION = '5.1.0'
export const KUBERNETES_VERSION = '1.36'
export const installedModelsVersion = (): string => (JSON.parse(readFileSync(join(MODELS_ROOT, 'package.json'), 'utf8')) as { version: string }).version

/** The kinds the manifests may use; another needs adding here (and a look at what checks.ts says of it). */
export const SCHEMA_KINDS: Record<string, string> = {
  Namespace: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  NetworkPolicy: 'networking.k8s.io/v1',
  Ingress: 'networking.k8s.io/v1'
}

export const describe = (object: K8sObject): string => `${object.kind}/${object.metadata?.name ?? '(no name)'}`

/** An ajv instancePath (/spec/containers/0/name) as the manifests' own path (spec.containers[0].name). */
export function fieldPath (instancePath: string): string {
  return instancePath.split('/').slice(1).map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, token) => /^\d+$/.test(token) ? `${path}[${token}]` : path === '' ? token : `${path}.${token}`, '')
}

interface AjvError { instancePath: string, message?: string, params?: { allowedValues?: unknown[] } }
interface ModelClass { new (data: unknown): { validate (): void } }

/**
 * Base64 fields (a Secret's data, a ConfigMap's binaryData) as the API server reads them: Go's
 * decoder skips line breaks (encoding/base64: "New line characters (\r and \n) are ignored"),
 * and kustomize writes long values in 70-character lines; the models' "byte" format does not
 * allow them. Everything else about the value is still checked.
 */
function forDecoding (object: K8sObject): K8sObject {
  const field = object.kind === 'Secret' ? 'data' : object.kind === 'ConfigMap' ? 'binaryData' : undefined
  const values = field === undefined ? undefined : object[field]
  if (values === null || typeof values !== 'object') return object
  const joined = Object.fromEntries(Object.entries(values).map(([key, value]) => [key, typeof value === 'string' ? value.replace(/[\r\n]/g, '') : value]))
  return { ...object, [field as string]: joined }
}

/** Types, enums, formats and required fields, by the kind's validator. */
export async function apiSchemaProblems (object: K8sObject): Promise<string[]> {
  const apiVersion = SCHEMA_KINDS[object.kind]
  if (apiVersion === undefined) return [`${describe(object)}: no schema for kind ${object.kind} here (test/kubernetes/schema.ts SCHEMA_KINDS)`]
  if (object.apiVersion !== apiVersion) return [`${describe(object)}: apiVersion ${object.apiVersion}, but Kubernetes ${KUBERNETES_VERSION} serves ${object.kind} as ${apiVersion}`]
  const models = await import(`kubernetes-models/${apiVersion}/${object.kind}`) as Record<string, ModelClass>
  const Model = models[object.kind] as ModelClass
  try {
    new Model(forDecoding(object)).validate()
    return []
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors
    if (errors === undefined) throw err
    return errors.map((e) => {
      const allowed = e.params?.allowedValues === undefined ? '' : ` (${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')})`
      return `${describe(object)}: ${fieldPath(e.instancePath) || '(top level)'}: ${e.message ?? 'invalid'}${allowed}`
    })
  }
}

let checker: ts.TypeChecker | undefined
const kindTypes = new Map<string, ts.Type>()

/** The TypeScript program over the models' declarations, built once (about 0.4 s). */
function typeOfKind (kind: string): ts.Type | undefined {
  if (checker === undefined) {
    const files = Object.entries(SCHEMA_KINDS).map(([k, apiVersion]) => join(MODELS_ROOT, apiVersion, `${k}.d.ts`))
    const program = ts.createProgram({
      rootNames: files,
      options: { noEmit: true, skipLibCheck: true, types: [], lib: ['lib.es2022.d.ts'], target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext }
    })
    checker = program.getTypeChecker()
    for (const [k, apiVersion] of Object.entries(SCHEMA_KINDS)) {
      const source = program.getSourceFile(join(MODELS_ROOT, apiVersion, `${k}.d.ts`))
      const declaration = source?.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === `I${k}`)
      if (declaration !== undefined) kindTypes.set(k, checker.getTypeAtLocation(declaration.name))
    }
  }
  return kindTypes.get(kind)
}

/** Every field the object sets that its type does not have, with the nearest name it does have. */
export function strictFieldProblems (object: K8sObject): string[] {
  const type = typeOfKind(object.kind)
  if (type === undefined) return SCHEMA_KINDS[object.kind] === undefined ? [] : [`${describe(object)}: no declaration I${object.kind} in kubernetes-models`]
  const problems: string[] = []
  walk(object, type, '', (path, field, known, typeName) => {
    const near = known.filter((name) => distance(name.toLowerCase(), field.toLowerCase()) <= 2)
    problems.push(`${describe(object)}: ${path === '' ? '' : `${path}.`}${field}: no such field in ${typeName}${near.length > 0 ? ` (did you mean ${near.join(' or ')}?)` : ''}`)
  })
  return problems
}

type OnUnknown = (path: string, field: string, known: string[], typeName: string) => void

function walk (value: unknown, declared: ts.Type, path: string, onUnknown: OnUnknown): void {
  const c = checker as ts.TypeChecker
  const type = c.getNonNullableType(declared)
  if ((type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) !== 0) return
  if (Array.isArray(value)) {
    const list = type.isUnion() ? type.types.find((t) => c.isArrayType(t)) : type
    if (list === undefined || !c.isArrayType(list)) return // not a list here: the API schema says so
    const element = c.getTypeArguments(list as ts.TypeReference)[0]
    if (element !== undefined) value.forEach((item, i) => { walk(item, element, `${path}[${i}]`, onUnknown) })
    return
  }
  if (value === null || typeof value !== 'object') return
  const objects = (type.isUnion() ? type.types : [type]).filter((t) => (t.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) !== 0 && !c.isArrayType(t))
  const objectType = objects[0]
  if (objects.length !== 1 || objectType === undefined) return
  const index = c.getIndexInfoOfType(objectType, ts.IndexKind.String)
  for (const [field, item] of Object.entries(value)) {
    const property = c.getPropertyOfType(objectType, field)
    const where = path === '' ? field : `${path}.${field}`
    if (property !== undefined) walk(item, c.getTypeOfSymbol(property), where, onUnknown)
    else if (index !== undefined) walk(item, index.type, where, onUnknown)
    else onUnknown(path, field, c.getPropertiesOfType(objectType).map((p) => p.name), c.typeToString(objectType))
  }
}

/** Levenshtein distance, for "did you mean". */
function distance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

/** The API schema and the strict field check, for every object. */
export async function schemaProblems (objects: K8sObject[]): Promise<string[]> {
  const problems: string[] = []
  for (const object of objects) problems.push(...await apiSchemaProblems(object), ...strictFieldProblems(object))
  return problems
}
