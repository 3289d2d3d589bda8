import type { TSchema, Static } from 'typebox'
import Value from 'typebox/value'

/** Thrown when the environment does not describe a process that can start. */
export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/**
 * Reads the variables a schema names from `env`, applies defaults, converts
 * strings to numbers where the schema wants numbers, and validates. Every
 * problem names the variable it is about, so a user knows what to fix.
 */
export function readEnv<S extends TSchema> (schema: S, env: Record<string, string | undefined>): Static<S> {
  const keys = Object.keys((schema as unknown as { properties: Record<string, unknown> }).properties)
  const picked: Record<string, string> = {}
  for (const key of keys) {
    const value = env[key]
    if (value !== undefined && value !== '') picked[key] = value
  }
  const problems = new Map<string, string>()
  // TypeBox's Convert would turn "3.5" into 3 and "0x50" into 80: a whole number must be written as one.
  for (const [key, value] of Object.entries(picked)) {
    if (schemaType(schema, key) === 'integer' && !/^-?\d+$/.test(value.trim())) {
      problems.set(key, `${key} ${describeAllowed(schema, key) ?? 'must be a whole number'} (got ${JSON.stringify(value)})`)
    }
  }
  const withDefaults = Value.Default(schema, picked)
  const converted = Value.Convert(schema, withDefaults)
  if (problems.size === 0 && Value.Check(schema, converted)) return converted as Static<S>

  for (const error of Value.Errors(schema, converted)) {
    const name = error.instancePath.replace(/^\//, '') || String((error.params as { requiredProperties?: string[] }).requiredProperties?.[0] ?? 'config')
    if (problems.has(name)) continue
    const got = picked[name]
    const allowed = describeAllowed(schema, name)
    problems.set(name, `${name} ${allowed ?? error.message}${got === undefined ? ' (it is not set)' : ` (got ${JSON.stringify(got)})`}`)
  }
  throw new ConfigError([...problems.values()])
}

function schemaType (schema: TSchema, key: string): unknown {
  return (schema as unknown as { properties: Record<string, { type?: unknown }> }).properties[key]?.type
}

function describeAllowed (schema: TSchema, key: string): string | undefined {
  const property = (schema as unknown as { properties: Record<string, { anyOf?: Array<{ const?: unknown }>, description?: string }> }).properties[key]
  if (property?.anyOf?.every((s) => 'const' in s)) {
    return `must be one of ${property.anyOf.map((s) => String(s.const)).join(', ')}`
  }
  return property?.description
}
