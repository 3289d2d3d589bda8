import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Ajv } from 'ajv'
import type { ErrorObject } from 'ajv'
import { parse } from 'yaml'

/**
 * What `npm test` checks in a Compose file without Docker: the Compose Specification's JSON
 * schema, and what a schema cannot see (depends_on targets, profiles, `${...}` syntax).
 * Every function returns problems as readable lines; none means the file passed.
 */

export type ComposeFile = Record<string, unknown> & { services?: Record<string, Service> }
export type Service = Record<string, unknown> & { depends_on?: string[] | Record<string, unknown>, profiles?: string[] }

/** Parses YAML as Compose does, `<<` merge keys included. */
export function parseCompose (text: string): ComposeFile {
  const doc: unknown = parse(text, { merge: true })
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('a Compose file must be a mapping')
  return doc as ComposeFile
}

// The schema the compose-spec project publishes, as vendored by the dclint package (a
// Compose linter on npm, MIT); its `exports` hide the file, so it is found beside package.json.
const require = createRequire(import.meta.url)
export const SCHEMA_PATH = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json')

let validate: ReturnType<Ajv['compile']> | undefined

export function schemaProblems (doc: ComposeFile): string[] {
  if (validate === undefined) {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Record<string, unknown>
    // The schema names its draft-07 meta-schema by an https URL ajv does not know by that name.
    delete schema.$schema
    validate = new Ajv({ allErrors: true, strict: false }).compile(schema)
  }
  if (validate(doc)) return []
  return (validate.errors ?? []).map(describeError)
}

function describeError (error: ErrorObject): string {
  const where = error.instancePath.split('/').slice(1).join('.') || '(top level)'
  const extra = error.keyword === 'additionalProperties'
    ? ` (${JSON.stringify((error.params as { additionalProperty: string }).additionalProperty)})`
    : ''
  return `${where}: ${error.message ?? error.keyword}${extra}`
}

function dependsOnTargets (service: Service): string[] {
  const dependsOn = service.depends_on
  if (dependsOn === undefined) return []
  return Array.isArray(dependsOn) ? dependsOn : Object.keys(dependsOn)
}

/**
 * depends_on names services that exist (in this file or in the files it is layered on), and a
 * service that always starts does not wait for one that only starts under a profile.
 */
export function dependsOnProblems (doc: ComposeFile, base: ComposeFile[] = []): string[] {
  const all = new Map<string, Service>()
  for (const file of [...base, doc]) {
    for (const [name, service] of Object.entries(file.services ?? {})) all.set(name, { ...all.get(name), ...service })
  }
  const problems: string[] = []
  for (const [name, service] of Object.entries(doc.services ?? {})) {
    for (const target of dependsOnTargets(service)) {
      const other = all.get(target)
      if (other === undefined) {
        problems.push(`services.${name}.depends_on: no service named ${JSON.stringify(target)}`)
      } else if (target === name) {
        problems.push(`services.${name}.depends_on: a service cannot depend on itself`)
      } else if ((all.get(name)?.profiles ?? []).length === 0 && (other.profiles ?? []).length > 0) {
        problems.push(`services.${name}.depends_on: ${JSON.stringify(target)} only starts with profile ${other.profiles?.join(' or ')}, but ${name} always starts`)
      }
    }
  }
  return problems
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/
const OPERATORS = [':-', ':?', ':+', '-', '?', '+']

/**
 * Compose's interpolation syntax in every string value: `$$`, `$NAME`, `${NAME}` and
 * `${NAME<op>text}` with op one of :- - :? ? :+ +, the text itself interpolated. Returns the
 * problems and the names used.
 */
export function interpolationProblems (doc: unknown): { problems: string[], names: Set<string> } {
  const problems: string[] = []
  const names = new Set<string>()
  walkStrings(doc, '', (path, value) => {
    for (const problem of checkTemplate(value, names)) problems.push(`${path}: ${problem} in ${JSON.stringify(value)}`)
  })
  return { problems, names }
}

function walkStrings (node: unknown, path: string, visit: (path: string, value: string) => void): void {
  if (typeof node === 'string') {
    visit(path || '(top level)', node)
  } else if (Array.isArray(node)) {
    node.forEach((item, i) => { walkStrings(item, `${path}[${i}]`, visit) })
  } else if (node !== null && typeof node === 'object') {
    // Keys are not interpolated, only values.
    for (const [key, value] of Object.entries(node)) walkStrings(value, path === '' ? key : `${path}.${key}`, visit)
  }
}

function checkTemplate (text: string, names: Set<string>): string[] {
  const problems: string[] = []
  let i = 0
  while (i < text.length) {
    const dollar = text.indexOf('$', i)
    if (dollar === -1) break
    const next = text[dollar + 1]
    if (next === '$') {
      i = dollar + 2
      continue
    }
    if (next !== '{') {
      const name = NAME.exec(text.slice(dollar + 1))
      if (name === null) {
        problems.push(`a "$" at ${dollar} starts no variable (write "$$" for a literal "$")`)
        i = dollar + 1
      } else {
        names.add(name[0])
        i = dollar + 1 + name[0].length
      }
      continue
    }
    // ${ ... }: find the matching brace, counting nested ${ ... }.
    let depth = 1
    let end = dollar + 2
    while (end < text.length && depth > 0) {
      if (text[end] === '$' && text[end + 1] === '$') end += 2
      else if (text[end] === '$' && text[end + 1] === '{') { depth++; end += 2 } else if (text[end] === '}') { depth--; end++ } else end++
    }
    if (depth > 0) {
      problems.push(`"\${" at ${dollar} is never closed with "}"`)
      break
    }
    const inner = text.slice(dollar + 2, end - 1)
    const name = NAME.exec(inner)
    if (name === null) {
      problems.push(`"\${${inner}}" does not start with a variable name`)
    } else {
      names.add(name[0])
      const rest = inner.slice(name[0].length)
      if (rest !== '') {
        const op = OPERATORS.find((o) => rest.startsWith(o))
        if (op === undefined) problems.push(`"\${${inner}}": after the name comes "}" or one of ${OPERATORS.join(' ')}`)
        else problems.push(...checkTemplate(rest.slice(op.length), names))
      }
    }
    i = end
  }
  return problems
}

/** Each variable a process reads, with its own default (undefined where it has none). */
export type ProcessVariables = Record<string, string | undefined>

/**
 * What the services that run a process (their `command` names `entry`) pass it. Every variable
 * the process reads must be set in the service's environment, fixed or from `${...}`, unless
 * `leftOut` names it (with the reason): a setting the server reads that Compose drops is one a
 * user sets in `.env` to no effect. A `${NAME:-default}` of the variable's own name must default
 * to the process's own default (empty where it has none: an empty value counts as unset), so
 * that leaving NAME unset gives the server the documentation describes. The `base` files are
 * merged in first, as Compose merges an override into the services it overrides.
 */
export function environmentProblems (doc: ComposeFile, entry: string, reads: ProcessVariables, leftOut: Record<string, string> = {}, base: ComposeFile[] = []): string[] {
  const merged = new Map<string, Service>()
  for (const file of [...base, doc]) {
    for (const [name, service] of Object.entries(file.services ?? {})) {
      const before = merged.get(name)
      merged.set(name, { ...before, ...service, environment: { ...environmentOf(before), ...environmentOf(service) } })
    }
  }
  const problems: string[] = []
  const runners = Object.keys(doc.services ?? {}).filter((name) => {
    const command = merged.get(name)?.command
    return (Array.isArray(command) ? command : [command]).some((part) => typeof part === 'string' && part.includes(entry))
  })
  if (runners.length === 0) problems.push(`no service runs ${entry}`)
  for (const name of runners) {
    const environment = environmentOf(merged.get(name))
    for (const [variable, fallback] of Object.entries(reads)) {
      if (variable in leftOut) continue
      const value = environment[variable]
      if (value === undefined) {
        problems.push(`services.${name}.environment: ${variable} is not passed, but ${entry} reads it (pass it, or say why it is left out)`)
        continue
      }
      const withDefault = value === null ? null : new RegExp(`^\\$\\{${variable}:?-(.*)\\}$`, 's').exec(value)
      if (withDefault !== null && withDefault[1] !== (fallback ?? '')) {
        problems.push(`services.${name}.environment.${variable}: defaults to ${JSON.stringify(withDefault[1])}, but ${entry}'s own default is ${fallback === undefined ? 'none (write ":-" and nothing)' : JSON.stringify(fallback)}`)
      }
    }
  }
  return problems
}

/** A service's environment as a mapping, from either of the forms Compose accepts. */
function environmentOf (service: Service | undefined): Record<string, string | null> {
  const environment = service?.environment
  if (Array.isArray(environment)) {
    return Object.fromEntries(environment.map((item: unknown) => {
      const text = String(item)
      const equals = text.indexOf('=')
      return equals === -1 ? [text, null] : [text.slice(0, equals), text.slice(equals + 1)]
    }))
  }
  if (environment === null || typeof environment !== 'object') return {}
  return Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, v === null ? null : String(v)]))
}

/** Every check on one file (layered on `base` files, for an override). */
export function composeProblems (text: string, base: ComposeFile[] = []): string[] {
  let doc: ComposeFile
  try {
    doc = parseCompose(text)
  } catch (err) {
    return [`not YAML Compose can read: ${(err as Error).message}`]
  }
  return [...schemaProblems(doc), ...dependsOnProblems(doc, base), ...interpolationProblems(doc).problems]
}
