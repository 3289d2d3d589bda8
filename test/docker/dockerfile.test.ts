import { existsSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { validate } from 'dockerfile-utils'
import t from 'tap'
import { parseCompose } from './compose-checks.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const read = (path: string): string => readFileSync(join(root, path), 'utf8')
const dockerfile = read('Dockerfile')

interface Instruction { keyword: string, args: string, line: number }

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions (text: string): Instruction[] {
  const result: Instruction[] = []
  let pending = ''
  let start = 0
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (pending === '' && (line === '' || line.startsWith('#'))) return
    if (pending === '') start = i + 1
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' '
      return
    }
    const whole = (pending + line).trim()
    pending = ''
    const space = whole.search(/\s/)
    result.push({ keyword: whole.slice(0, space).toUpperCase(), args: whole.slice(space + 1).trim(), line: start })
  })
  return result
}

const all = instructions(dockerfile)
const of = (keyword: string): Instruction[] => all.filter((i) => i.keyword === keyword)

t.test('dockerfile-utils (the VS Code Docker linter) finds nothing', async (t) => {
  const diagnostics = validate(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)
  t.same(diagnostics, [])
})

t.test('dockerfile-utils does catch a broken Dockerfile', async (t) => {
  t.ok(validate('FROM node:24-slim\nEXPOSE abc\nHEALTHCHECK CMD\nCOPY\n').length >= 3)
})

t.test('the official Node 24 slim image, by name', async (t) => {
  t.equal(of('FROM').length, 1, 'one stage')
  t.match(of('FROM')[0]?.args, /^node:24-slim(@sha256:[0-9a-f]{64})?$/)
})

t.test('production dependencies only, installed from the lock file', async (t) => {
  const runs = of('RUN').map((i) => i.args).join('\n')
  t.match(runs, /npm ci [^\n]*--omit=dev/)
  t.match(runs, /npm ci [^\n]*--omit=optional/, 'and no optional ones: the image has no use for the PostgreSQL binaries npm start runs')
  t.notMatch(runs, /npm (install|i)( |$)/, 'no npm install, which could change the lock file or add dev deps')
  t.notMatch(runs, /--include=dev|--production=false/)
})

t.test('apt: no recommends, lists removed, in the same layer', async (t) => {
  for (const run of of('RUN').filter((i) => /apt-get install/.test(i.args))) {
    t.match(run.args, /apt-get update/, `line ${run.line}: update and install in one layer`)
    t.match(run.args, /--no-install-recommends/, `line ${run.line}`)
    t.match(run.args, /rm -rf \/var\/lib\/apt\/lists/, `line ${run.line}`)
  }
})

t.test('runs as a non-root user, set after every RUN', async (t) => {
  const users = of('USER')
  t.ok(users.length > 0, 'a USER instruction')
  const last = users.at(-1)
  t.notMatch(last?.args, /^(root|0)(:|$)/)
  const lastRun = of('RUN').at(-1)
  t.ok((last?.line ?? 0) > (lastRun?.line ?? 0), 'nothing runs as root after USER')
})

t.test('an init process as PID 1: tini, installed from Debian', async (t) => {
  t.match(of('ENTRYPOINT')[0]?.args, /^\["\/usr\/bin\/tini", "--"\]$/)
  t.ok(of('RUN').some((i) => /apt-get install[^\n]* tini\b/.test(i.args)))
})

t.test('HEALTHCHECK uses node itself, on a script the image has', async (t) => {
  const check = of('HEALTHCHECK')
  t.equal(check.length, 1)
  const command = /CMD (\[.*\])$/.exec(check[0]?.args ?? '')
  t.ok(command, 'exec form')
  const argv = JSON.parse(command?.[1] ?? '[]') as string[]
  t.equal(argv[0], 'node', 'no curl or wget: the slim image has neither')
  t.ok(existsSync(join(root, argv[1] ?? '')), `${argv[1]} exists`)
})

// Which top-level paths the image gets: COPY sources, filtered by .dockerignore's allow-list.
const copied = of('COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1)).filter((a) => !a.startsWith('--'))
const ignore = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))

t.test('.dockerignore: an allow-list, and every COPY source is allowed and exists', async (t) => {
  t.equal(ignore[0], '*', 'everything is excluded first')
  for (const source of copied) {
    t.ok(existsSync(join(root, source)), `${source} exists`)
    t.ok(ignore.includes(`!${source.replace(/\/?$/, source.includes('.') ? '' : '/')}`), `${source} is let in by .dockerignore`)
  }
  for (const never of ['node_modules', '.env', '.git', 'test']) {
    t.notOk(ignore.some((l) => l.startsWith(`!${never}`)), `${never} stays out`)
  }
})

// Follows the static imports of every program the image runs; dynamic import() is left out,
// as the optional paths it guards (e.g. an HTML report) may need dev dependencies.
function importsOf (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specifiers: string[] = []
  for (const match of text.matchAll(/^\s*(import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) {
    if (match[2] === undefined) specifiers.push(match[3] as string)
  }
  return specifiers
}

function walk (entry: string, seen: Set<string>, packages: Set<string>): void {
  if (seen.has(entry)) return
  seen.add(entry)
  for (const specifier of importsOf(entry)) {
    if (specifier.startsWith('.')) {
      walk(resolve(dirname(entry), specifier), seen, packages)
    } else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
      const parts = specifier.split('/')
      packages.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] as string)
    }
  }
}

t.test('what the containers run is in the image, with production dependencies only', async (t) => {
  const compose = parseCompose(read('docker-compose.yml'))
  const entries = new Set<string>(['services/server.ts', 'balancer/server.ts'])
  for (const service of Object.values(compose.services ?? {})) {
    for (const list of [service.command, (service.healthcheck as { test?: unknown } | undefined)?.test]) {
      if (!Array.isArray(list)) continue
      const node = list.indexOf('node')
      if (node !== -1 && typeof list[node + 1] === 'string') entries.add(list[node + 1])
    }
  }
  const { dependencies = {} } = JSON.parse(read('package.json')) as { dependencies?: Record<string, string> }
  const files = new Set<string>()
  const packages = new Set<string>()
  for (const entry of entries) {
    t.ok(existsSync(join(root, entry)), `${entry} exists`)
    walk(join(root, entry), files, packages)
  }
  for (const file of files) {
    const top = relative(root, file).split('/')[0] as string
    t.ok(copied.some((c) => c.replace(/\/$/, '') === top), `${relative(root, file)} is copied into the image`)
  }
  for (const name of packages) t.ok(name in dependencies, `${name} is a production dependency`)
})
