import { DEMO_USERS } from '../../services/users.ts'

/** One request through the balancer, as the walkthrough shows and counts it. */
export interface Answer {
  /** Who sent it: the demo user whose client this is. */
  who: string
  method: string
  path: string
  status: number
  /** The app server's x-served-by; null when the balancer answered itself. */
  servedBy: string | null
  /** The body's `reason` (or `error`) on a refusal or failure; null when accepted. */
  reason: string | null
  body: Record<string, unknown>
  /** Round trip through the balancer, in ms, as this client measured it. */
  ms: number
  /** The server's own time for the auth step (Server-Timing `auth;dur=`), in ms, when it sent one. */
  authMs: number | null
}

export interface RequestOptions {
  body?: unknown
  /** Sent as `Authorization: Bearer`; default this client's token. Pass null to send none. */
  token?: string | null
  /** Not shown, only counted (for timing samples). */
  quiet?: boolean
}

/**
 * A browser stand-in: keeps cookies (the balancer's sticky `lb` pin among them)
 * and the token from its last login, and reports every answer to `onAnswer`.
 */
export class DemoClient {
  readonly name: string
  readonly #baseUrl: string
  readonly #onAnswer: (answer: Answer, quiet: boolean) => void
  readonly #cookies = new Map<string, string>()
  token: string | undefined
  /** The refresh token from its last login or refresh (jwt mode with JWT_SIGNING=eddsa). */
  refreshToken: string | undefined

  constructor (baseUrl: string, name: string, onAnswer: (answer: Answer, quiet: boolean) => void) {
    this.#baseUrl = baseUrl
    this.name = name
    this.#onAnswer = onAnswer
  }

  /** The balancer's sticky pin for this client, if it has one. */
  get pin (): string | undefined { return this.#cookies.get('lb') }

  async login (username = this.name, options: Pick<RequestOptions, 'quiet'> = {}): Promise<Answer> {
    const password = DEMO_USERS[username] ?? ''
    const answer = await this.request('POST', '/login', { ...options, body: { username, password }, token: null })
    this.#keepTokens(answer)
    return answer
  }

  /**
   * POST /token/refresh with a refresh token in the body: this client's own, or one given (a
   * copy someone else holds). A 200 replaces this client's tokens with the new pair.
   */
  async refresh (options: Pick<RequestOptions, 'quiet'> & { refreshToken?: string } = {}): Promise<Answer> {
    const answer = await this.request('POST', '/token/refresh', { quiet: options.quiet, body: { refreshToken: options.refreshToken ?? this.refreshToken ?? '' }, token: null })
    this.#keepTokens(answer)
    return answer
  }

  async feeds (options: Omit<RequestOptions, 'body'> = {}): Promise<Answer> {
    return await this.request('GET', '/feeds', options)
  }

  async logout (): Promise<Answer> {
    return await this.request('POST', '/logout')
  }

  async request (method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const headers: Record<string, string> = {}
    const token = options.token === undefined ? this.token : options.token
    if (token !== null && token !== undefined) headers.authorization = `Bearer ${token}`
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    if (cookie !== '') headers.cookie = cookie
    const started = performance.now()
    const res = await fetch(`${this.#baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(10_000)
    })
    const text = await res.text()
    const ms = performance.now() - started
    this.#keepCookies(res.headers.getSetCookie())
    let body: Record<string, unknown> = {}
    try {
      body = text === '' ? {} : JSON.parse(text) as Record<string, unknown>
    } catch {
      body = { error: text.slice(0, 80) }
    }
    const timing = /auth;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '')
    const answer: Answer = {
      who: this.name,
      method,
      path,
      status: res.status,
      servedBy: res.headers.get('x-served-by'),
      reason: res.status < 400 ? null : String(body.reason ?? body.error ?? ''),
      body,
      ms,
      authMs: timing?.[1] === undefined ? null : Number(timing[1])
    }
    this.#onAnswer(answer, options.quiet === true)
    return answer
  }

  #keepTokens (answer: Answer): void {
    if (answer.status !== 200) return
    this.token = answer.body.token as string
    if (typeof answer.body.refreshToken === 'string') this.refreshToken = answer.body.refreshToken
  }

  #keepCookies (setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) ||
        attributes.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] ?? '') < Date.now())
      if (expired || value === '') this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
  }
}
