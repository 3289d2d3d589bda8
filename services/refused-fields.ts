import type { FastifyRequest, FastifySchemaValidationError } from 'fastify'

/**
 * A field of a request body that the server refuses by name, rather than dropping it without a
 * word: a client that sends {"username","password","remember":true} learns that "remember"
 * does nothing, and one that sends "__proto__" learns why it is refused.
 */
export interface RefusedFields {
  /** The 400's message, e.g. `body has an unexpected field "remember": only "username" and "password" are accepted`. */
  message: string
  /** The field names, for the request's one log line. */
  fields: string[]
}

/** How many names a message or log line lists, and how long each may be: a 16 KiB body can hold thousands. */
const MAX_LISTED = 5
const MAX_NAME_LENGTH = 40

type Schema = { properties?: Record<string, unknown>, patternProperties?: Record<string, unknown>, items?: unknown } | undefined

/**
 * The fields a route's schema does not allow (`additionalProperties: false`), or undefined when
 * the validation failed for another reason. Ajv stops at the first (allErrors stays off, as
 * Fastify advises: it makes a crafted body expensive); the others are the keys beside it in the
 * same object that the schema does not name.
 */
export function unexpectedFields (err: { validation?: FastifySchemaValidationError[], validationContext?: string }, request: FastifyRequest): RefusedFields | undefined {
  const error = err.validation?.find((e) => e.keyword === 'additionalProperties')
  const context = err.validationContext
  if (error === undefined || context === undefined) return undefined
  const first = String((error.params as { additionalProperty?: unknown }).additionalProperty)
  const parts: Record<string, unknown> = { body: request.body, querystring: request.query, params: request.params, headers: request.headers }
  let data: unknown = parts[context]
  let schema = (request.routeOptions.schema as Record<string, unknown> | undefined)?.[context] as Schema
  for (const segment of error.instancePath.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))) {
    data = typeof data === 'object' && data !== null && Object.hasOwn(data, segment) ? (data as Record<string, unknown>)[segment] : undefined
    schema = (schema?.properties !== undefined && Object.hasOwn(schema.properties, segment) ? schema.properties[segment] : schema?.items) as Schema
  }
  const accepted = Object.keys(schema?.properties ?? {})
  const patterns = Object.keys(schema?.patternProperties ?? {}).map((p) => new RegExp(p, 'u'))
  const allowed = (key: string): boolean => (schema?.properties !== undefined && Object.hasOwn(schema.properties, key)) || patterns.some((p) => p.test(key))
  // Own keys only: "constructor" is on every object's prototype, and must still be refused.
  const found = isRecord(data) && schema !== undefined ? Object.keys(data).filter((key) => !allowed(key)) : []
  const fields = found.includes(first) ? found : [first, ...found]
  const where = `${context}${error.instancePath}`
  const only = accepted.length === 0 ? '' : `: only ${listed(accepted)} ${accepted.length === 1 ? 'is' : 'are'} accepted`
  return {
    message: `${where} has ${fields.length === 1 ? 'an unexpected field' : 'unexpected fields'} ${listed(fields)}${only}`,
    fields: shortened(fields)
  }
}

/**
 * Which prototype-poisoning key a JSON text holds ("__proto__", or "constructor" holding a
 * "prototype"), the keys Fastify's JSON parser refuses while saying only that the body is not
 * valid JSON; undefined when the text is not JSON at all. Reads the text, never trusts it: a
 * JSON.parse of its own makes own properties and changes no prototype.
 */
export function poisoningKey (text: string): string | undefined {
  let key: string | undefined
  try {
    JSON.parse(text, function (this: unknown, name: string, value: unknown) {
      if (key === undefined && (name === '__proto__' || (name === 'constructor' && isRecord(value) && Object.hasOwn(value, 'prototype')))) key = name
      return value
    })
  } catch {
    return undefined
  }
  return key
}

/** `"a", "b" and 3 more`, each name JSON-quoted (no control characters reach a log) and cut short. */
function listed (names: string[]): string {
  const shown = shortened(names).map((n) => JSON.stringify(n))
  const more = names.length - shown.length
  if (more > 0) return `${shown.join(', ')} and ${more} more`
  return shown.length <= 1 ? shown.join('') : `${shown.slice(0, -1).join(', ')} and ${shown.at(-1) as string}`
}

/** The first MAX_LISTED names, each cut to MAX_NAME_LENGTH. */
function shortened (names: string[]): string[] {
  return names.slice(0, MAX_LISTED).map((n) => n.length > MAX_NAME_LENGTH ? `${n.slice(0, MAX_NAME_LENGTH)}…` : n)
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
