import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

/**
 * deploy/kubernetes, copied where the tests may write: the files a user makes before applying
 * (the jwt overlay's secret, the cookie overlay's key) are made there, random per run, never in the working tree, where a
 * user's own would be. The repository's folder layout is kept, so fixtures that point into it
 * (../../../../deploy/kubernetes/...) render the same from the copy.
 */

export const root = fileURLToPath(new URL('../..', import.meta.url))
export const DEPLOY = 'deploy/kubernetes'

export const overlayNames = (base = root): string[] =>
  readdirSync(join(base, DEPLOY, 'overlays'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()

export interface Staged { dir: string, overlay (name: string): string, madeSecrets: Map<string, string>, remove (): void }

/** Copies deploy/kubernetes and test/kubernetes/fixtures; each secretGenerator file the user is to make gets `secret()`. */
export function stage (secret: () => string = () => randomBytes(48).toString('base64')): Staged {
  const dir = mkdtempSync(join(tmpdir(), 'kubernetes-'))
  for (const path of [DEPLOY, 'test/kubernetes/fixtures']) {
    cpSync(join(root, path), join(dir, path), { recursive: true, filter: (source) => !/\/overlays\/[^/]+\/(jwt-secret|cookie-secret|postgres-password|issuer-key[^/]*\.json)$/.test(source) })
  }
  const madeSecrets = new Map<string, string>()
  for (const name of overlayNames(dir)) {
    const overlay = join(dir, DEPLOY, 'overlays', name)
    const kustomization = parse(readFileSync(join(overlay, 'kustomization.yaml'), 'utf8')) as { secretGenerator?: Array<{ files?: string[] }> }
    for (const file of (kustomization.secretGenerator ?? []).flatMap((g) => g.files ?? [])) {
      const path = join(overlay, file.slice(file.indexOf('=') + 1))
      if (existsSync(path)) continue
      // An issuer key is a file scripts/make-issuer-key.ts makes: a real one, not random text.
      const value = /issuer-key[^/]*\.json$/.test(path) ? issuerKeyFile() : secret()
      writeFileSync(path, `${value}\n`, { mode: 0o600 })
      madeSecrets.set(`${name}/${file}`, value)
    }
  }
  return {
    dir,
    overlay: (name) => join(dir, DEPLOY, 'overlays', name),
    madeSecrets,
    remove: () => { rmSync(dir, { recursive: true, force: true }) }
  }
}

/** What `node scripts/make-issuer-key.ts --out FILE` writes: a private Ed25519 JWK, its kid its RFC 7638 thumbprint, signing at once. */
export function issuerKeyFile (): string {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as { x: string, d: string }
  const kid = createHash('sha256').update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x: jwk.x })).digest('base64url')
  return JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d, kid, alg: 'EdDSA', use: 'sig', signFrom: 0 })
}
