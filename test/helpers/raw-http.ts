import net from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export interface RawExchange {
  /** Every complete response read from the connection, in order. */
  responses: RawResponse[]
  /** Whether the server closed the connection before the time was up. */
  closed: boolean
  /** Bytes that did not form a complete response. */
  rest: string
}

/**
 * Writes `data` to a fresh TCP connection exactly as given (no client library to tidy it up)
 * and reads until the server closes or `waitMs` passes. For requests a well-behaved HTTP
 * client would refuse to send: smuggling attempts, malformed request lines, oversized heads.
 */
export async function rawExchange (port: number, data: string | Buffer, waitMs = 2000): Promise<RawExchange> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let closed = false
    const timer = setTimeout(() => { socket.destroy(); finish() }, waitMs)
    const finish = (): void => {
      clearTimeout(timer)
      resolve({ ...parseResponses(Buffer.concat(chunks).toString('latin1')), closed })
    }
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => { closed = true; finish() })
    socket.on('connect', () => { socket.write(data) })
  })
}

function parseResponses (text: string): { responses: RawResponse[], rest: string } {
  const responses: RawResponse[] = []
  let rest = text
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end === -1) break
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0)
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    let body = ''
    let after = rest.slice(end + 4)
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length'])
      if (after.length < length) break
      body = after.slice(0, length)
      after = after.slice(length)
    } else if (headers['transfer-encoding'] === 'chunked') {
      let ok = false
      for (;;) {
        const lineEnd = after.indexOf('\r\n')
        if (lineEnd === -1) break
        const size = Number.parseInt(after.slice(0, lineEnd), 16)
        if (Number.isNaN(size)) break
        if (size === 0) { after = after.slice(lineEnd + 4); ok = true; break }
        body += after.slice(lineEnd + 2, lineEnd + 2 + size)
        after = after.slice(lineEnd + 2 + size + 2)
      }
      if (!ok) break
    }
    responses.push({ status, headers, body })
    rest = after
  }
  return { responses, rest }
}

/** Sends `data` and reports the one response: status, JSON body (or undefined), and whether the server hung up after it. */
export async function rawJson (port: number, data: string | Buffer, waitMs = 2000): Promise<{ status: number, json: Record<string, unknown> | undefined, headers: Record<string, string>, count: number, closed: boolean }> {
  const { responses, closed } = await rawExchange(port, data, waitMs)
  const first = responses[0]
  let json: Record<string, unknown> | undefined
  try {
    json = first === undefined ? undefined : JSON.parse(first.body) as Record<string, unknown>
  } catch {}
  return { status: first?.status ?? 0, json, headers: first?.headers ?? {}, count: responses.length, closed }
}
