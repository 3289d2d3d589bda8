import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// balancer/ runs on its own (alone in its container): it may import node:, its npm dependencies
// and lib/, never services/, scripts/ or test/, which depend on it. The dashboard's browser
// modules import only each other: the page loads nothing from anywhere else.
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BALANCER = join(ROOT, 'balancer')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
const DEPENDENCIES = new Set(Object.keys(pkg.dependencies))

function filesUnder (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return filesUnder(path)
    return /\.(ts|js)$/.test(entry.name) ? [path] : []
  })
}

/** Every module specifier a file names: static imports and re-exports, `import '...'`, `import('...')`. */
function specifiers (source: string): string[] {
  const found: string[] = []
  for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g)) found.push(match[1] as string)
  for (const match of source.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) found.push(match[1] as string)
  for (const match of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(match[1] as string)
  return found
}

/** Why `spec`, named in `file`, is not allowed there; undefined when it is. */
function refusal (file: string, spec: string): string | undefined {
  const inBrowser = relative(BALANCER, file).startsWith('dashboard/')
  if (spec.startsWith('./') || spec.startsWith('../')) {
    const target = relative(ROOT, resolve(dirname(file), spec))
    if (inBrowser) return target.startsWith('balancer/dashboard/') ? undefined : 'the page imports only its own modules'
    if (target.startsWith('balancer/') || target.startsWith('lib/')) return undefined
    return `${target} is outside balancer/ and lib/`
  }
  if (inBrowser) return 'the page imports only its own modules (no package, nothing from another origin)'
  if (spec.startsWith('node:')) return undefined
  const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0] as string
  return DEPENDENCIES.has(name) ? undefined : `${name} is not one of package.json's dependencies`
}

t.test('balancer/ imports node:, its dependencies and lib/ only; the page only its own modules', async (t) => {
  const files = filesUnder(BALANCER)
  t.ok(files.length > 10, `read ${files.length} files`)
  const wrong: string[] = []
  let seen = 0
  for (const file of files) {
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      seen++
      const why = refusal(file, spec)
      if (why !== undefined) wrong.push(`${relative(ROOT, file)} imports ${spec}: ${why}`)
    }
  }
  t.ok(seen > 50, `${seen} imports checked`)
  t.same(wrong, [])
})

t.test('the check itself refuses what it must', async (t) => {
  const proxy = join(BALANCER, 'proxy.ts')
  const page = join(BALANCER, 'dashboard', 'main.js')
  t.match(refusal(proxy, '../services/app.ts'), /outside balancer\/ and lib\//)
  t.match(refusal(proxy, '../scripts/lib/ports.ts'), /outside/)
  t.match(refusal(proxy, 'left-pad'), /not one of package.json's dependencies/)
  t.equal(refusal(proxy, '../lib/config.ts'), undefined)
  t.equal(refusal(proxy, 'undici'), undefined)
  t.match(refusal(page, '../proxy.ts'), /only its own modules/)
  t.match(refusal(page, 'https://cdn.example/x.js'), /only its own modules/)
  t.equal(refusal(page, './dom.js'), undefined)
  t.same(specifiers("import a from './a.ts'\nimport type { B } from \"./b.ts\"\nexport { c } from './c.ts'\nimport './d.js'\nconst e = await import('./e.js')"), ['./a.ts', './b.ts', './c.ts', './d.js', './e.js'])
})
