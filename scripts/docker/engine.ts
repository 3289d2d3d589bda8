// npm run test:docker's tools: the engine, Compose, a builder with BuildKit, and the base images
// (stand-ins built from Debian packages where none can be pulled).
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { log, loud, notes, root, run, Skip, tail } from './smoke.ts'

const BASE_IMAGES = ['node:24-slim', 'redis:7', 'postgres:18', 'nginx:1.28']
const STANDIN_LABEL = 'auth-cluster.standin'

export async function findEngine (): Promise<string> {
  const v = await run('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 20_000 })
  if (v.code !== 0) throw new Skip(`no Docker engine answers (${v.stderr.trim().split('\n')[0] ?? 'docker version failed'})`)
  return v.stdout.trim()
}

/** `docker compose` (v2) if the plugin is there, else a `docker-compose` (v1 or v2). */
export async function findCompose (): Promise<{ command: string[], major: number, version: string }> {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    const v = await run(command[0] as string, [...command.slice(1), 'version', '--short'], { timeoutMs: 20_000, echo: false })
    if (v.code === 0) {
      const version = v.stdout.trim().replace(/^v/, '')
      return { command, major: Number(version.split('.')[0]), version }
    }
  }
  throw new Skip('neither `docker compose` nor `docker-compose` is installed')
}

/**
 * A docker CLI that builds with BuildKit: far faster than the legacy builder on the vfs
 * storage driver, which copies the whole image for every step. Clients since 23 need the
 * buildx plugin for it; older ones take DOCKER_BUILDKIT=1.
 */
export async function findBuilder (): Promise<{ docker: string, env: NodeJS.ProcessEnv }> {
  const candidates = [...new Set((process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'docker')))].filter((file) => {
    try {
      accessSync(file, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
  for (const docker of candidates) {
    if ((await run(docker, ['buildx', 'version'], { echo: false, timeoutMs: 10_000 })).code === 0) return { docker, env: process.env }
  }
  for (const docker of candidates) {
    const v = await run(docker, ['version', '--format', '{{.Client.Version}}'], { echo: false, timeoutMs: 10_000 })
    if (Number(v.stdout.trim().split('.')[0]) < 23) return { docker, env: { ...process.env, DOCKER_BUILDKIT: '1' } }
  }
  notes.push('no BuildKit-capable docker CLI found: the legacy builder was used (slow on vfs)')
  return { docker: 'docker', env: { ...process.env, DOCKER_BUILDKIT: '0' } }
}

/** Which base images are real and which are stand-ins; builds stand-ins for missing ones. */
export async function ensureBaseImages (): Promise<string[]> {
  const kinds = async (): Promise<Map<string, string>> => {
    const result = new Map<string, string>()
    for (const image of BASE_IMAGES) {
      const r = await run('docker', ['image', 'inspect', '--format', `{{ index .Config.Labels "${STANDIN_LABEL}" }}`, image], { echo: false, timeoutMs: 20_000 })
      result.set(image, r.code !== 0 ? 'missing' : r.stdout.trim() === 'true' ? 'standin' : 'real')
    }
    return result
  }
  let found = await kinds()
  const missing = [...found].filter(([, kind]) => kind === 'missing').map(([image]) => image)
  if (missing.length > 0) {
    const canBuild = process.getuid?.() === 0 && (await run('sh', ['-c', 'command -v debootstrap'], { echo: false })).code === 0
    if (!canBuild) {
      throw new Skip(`base images missing (${missing.join(', ')}): this script never pulls; run \`docker pull ${missing.join(' ')}\`, or run it as root with debootstrap installed to build stand-ins`)
    }
    log(`base images missing: ${missing.join(', ')}; building stand-ins (this takes a few minutes the first time)`)
    const built = await run('bash', [join(root, 'scripts/docker/standin-images.sh')], { timeoutMs: 600_000 })
    process.stdout.write(built.stderr)
    if (built.code !== 0) throw new Error(`building stand-in base images failed:\n${tail(built.stdout + built.stderr)}`)
    found = await kinds()
  }
  const standins = [...found].filter(([, kind]) => kind === 'standin').map(([image]) => image)
  if (standins.length > 0) {
    loud(`STAND-IN BASE IMAGES IN USE: ${standins.join(', ')}\n` +
      'These are not the official images: they were built on this machine from Debian\n' +
      `packages by scripts/docker/standin-images.sh (label ${STANDIN_LABEL}=true), because\n` +
      'no image registry can be reached from here.')
    notes.push(`ran on STAND-IN base images built from Debian packages, not the official ones: ${standins.join(', ')}`)
  }
  return standins
}
