import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { buildIssuer, type BuildIssuerOptions } from '../../services/issuer/app.ts'
import { loadIssuerConfig } from '../../services/issuer/config.ts'
import { writeNewKey } from '../../services/issuer/keys.ts'
import { buildTestApp } from './service-app.ts'

/** A keys directory of a test's own with one key that signs at once, removed when the test ends. */
export async function keysDir (t: Test): Promise<{ dir: string, kid: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'issuer-keys-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const { kid } = await writeNewKey({ intoDir: dir }, Date.now() - 1000)
  return { dir, kid }
}

export interface TestIssuer {
  app: FastifyInstance
  /** Where it listens (127.0.0.1, a free port): app servers fetch its JWKS from here. */
  url: string
  jwksUrl: string
  keysDir: string
  /** The kid of the key it signed with at start. */
  kid: string
}

/**
 * An issuer built from an explicit environment, listening on a free port (the app servers under
 * test fetch its JWKS over HTTP, as they do in a cluster), closed when the test ends.
 */
export async function startTestIssuer (t: Test, env: Record<string, string>, options: BuildIssuerOptions & { keys?: { dir: string, kid: string } } = {}): Promise<TestIssuer> {
  const keys = options.keys ?? await keysDir(t)
  const config = loadIssuerConfig({ SERVER_ID: 'issuer-test', ISSUER_KEYS_DIR: keys.dir, PORT: '0', ...env })
  const app = await buildIssuer(config, { logger: false, ...options })
  t.teardown(async () => await app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url, jwksUrl: `${url}/.well-known/jwks.json`, keysDir: keys.dir, kid: keys.kid }
}

/** An app server in jwt mode with JWT_SIGNING=eddsa, reading the issuer's JWKS. */
export async function buildEddsaApp (t: Test, jwksUrl: string, env: Record<string, string> = {}): Promise<FastifyInstance> {
  return await buildTestApp(t, { AUTH_MODE: 'jwt', JWT_SIGNING: 'eddsa', JWKS_URL: jwksUrl, SERVER_ID: 'app-eddsa', ...env })
}

export interface Issued {
  token: string
  refreshToken: string
  response: LightMyRequestResponse
}

export async function issuerLogin (issuer: FastifyInstance, username = 'alice', password = 'wonderland'): Promise<Issued> {
  const response = await issuer.inject({ method: 'POST', url: '/login', payload: { username, password } })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  const body = response.json() as { token: string, refreshToken: string }
  return { token: body.token, refreshToken: body.refreshToken, response }
}

export async function refresh (issuer: FastifyInstance, refreshToken: string): Promise<LightMyRequestResponse> {
  return await issuer.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken } })
}
