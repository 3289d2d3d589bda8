import { createHmac, randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type BuildOptions } from '../../services/app.ts'
import { DEFAULT_KID, JWT_AUDIENCE, JWT_ISSUER, loadServerConfig } from '../../services/config.ts'

/**
 * 40 ASCII bytes, comfortably over the 32-byte floor, made per run: a secret written out here
 * is one anybody could copy, and the servers refuse those (services/published-secrets.ts).
 */
export const TEST_SECRET = randomBytes(30).toString('base64url')
/** cookie mode's key, made per run like TEST_SECRET. */
export const TEST_COOKIE_SECRET = randomBytes(48).toString('base64')

export type Mode = 'memory' | 'redis' | 'postgres' | 'jwt' | 'cookie'
export const MODES: Mode[] = ['memory', 'redis', 'postgres', 'jwt', 'cookie']
/** The modes whose credential holds the session itself: nothing to look up, nothing logout can end. */
export const isStateless = (mode: Mode): boolean => mode === 'jwt' || mode === 'cookie'

/**
 * Builds an app server from an explicit environment (never process.env) and closes it when
 * the test ends. jwt mode (hs256) gets TEST_SECRET, cookie mode TEST_COOKIE_SECRET, unless the env
 * says otherwise.
 */
export async function buildTestApp (t: Test, env: Record<string, string | undefined>, options: BuildOptions = {}): Promise<FastifyInstance> {
  const hs256 = env.AUTH_MODE === 'jwt' && env.JWT_SIGNING !== 'eddsa'
  const config = loadServerConfig({
    SERVER_ID: 'test-app',
    JWT_SECRET: hs256 && env.JWT_SECRETS === undefined ? TEST_SECRET : undefined,
    COOKIE_SECRET: env.AUTH_MODE === 'cookie' && env.COOKIE_SECRETS === undefined ? TEST_COOKIE_SECRET : undefined,
    ...env
  })
  const app = await buildApp(config, { logger: false, ...options })
  t.teardown(async () => await app.close())
  return app
}

/** An app in `mode`; redis mode needs the URL of a (private) redis-server, postgres mode a database's URL. */
export async function buildModeApp (t: Test, mode: Mode, storeUrl?: string, env: Record<string, string> = {}, options: BuildOptions = {}): Promise<FastifyInstance> {
  if ((mode === 'redis' || mode === 'postgres') && storeUrl === undefined) throw new Error(`${mode} mode needs the store's URL`)
  const store = mode === 'redis' ? { REDIS_URL: storeUrl } : mode === 'postgres' ? { DATABASE_URL: storeUrl } : {}
  return await buildTestApp(t, { AUTH_MODE: mode, SERVER_ID: `app-${mode}`, ...store, ...env }, options)
}

export interface LoggedIn {
  token: string
  /** The value of the auth cookie that /login set. */
  cookie: string
  response: LightMyRequestResponse
}

export async function login (app: FastifyInstance, username = 'alice', password = 'wonderland'): Promise<LoggedIn> {
  const response = await app.inject({ method: 'POST', url: '/login', payload: { username, password } })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  const cookie = response.cookies.find((c) => c.name === 'auth')?.value
  if (cookie === undefined) throw new Error('login set no auth cookie')
  return { token: (response.json() as { token: string }).token, cookie, response }
}

export async function feedsWithBearer (app: FastifyInstance, token: string, url = '/feeds'): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
}

export async function feedsWithCookie (app: FastifyInstance, value: string, url = '/feeds'): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url, cookies: { auth: value } })
}

/** The value of one sample in Prometheus text, found by name and a subset of its labels; 0 when absent. */
export function metricValue (text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[pair[1] ?? ''] = pair[2] ?? ''
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3])
  }
  return 0
}

export async function scrapeMetrics (app: FastifyInstance): Promise<string> {
  const response = await app.inject({ method: 'GET', url: '/metrics' })
  if (response.statusCode !== 200) throw new Error(`metrics: ${response.statusCode}`)
  return response.body
}

export const b64json = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A JWT made by hand: HMAC over base64url(header).base64url(payload) with any hash and secret. */
export function craftJwt (payload: unknown, options: { header?: unknown, secret?: string, hash?: 'sha256' | 'sha384' | 'sha512' } = {}): string {
  const input = `${b64json(options.header ?? { alg: 'HS256', typ: 'JWT', kid: DEFAULT_KID })}.${b64json(payload)}`
  return `${input}.${createHmac(options.hash ?? 'sha256', options.secret ?? TEST_SECRET).update(input).digest('base64url')}`
}

/** Claims our servers accept; a test spoils one at a time. */
export function goodClaims (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { sub: 'alice', jti: randomBytes(16).toString('base64url'), iss: JWT_ISSUER, aud: JWT_AUDIENCE, iat: now, exp: now + 600, ...overrides }
}

export function decodeSegment (segment: string | undefined): unknown {
  return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8'))
}

/** Small deterministic PRNG (mulberry32): the same seed gives the same fuzz cases on every run. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `check` passes or the time is up; returns whether it passed. */
export async function eventually (check: () => Promise<boolean>, timeoutMs = 5000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true
    await sleep(everyMs)
  }
  return false
}
