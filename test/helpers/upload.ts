import http from 'node:http'

/** What a client got for one upload: the status and JSON body, or the error it saw instead. */
export interface UploadOutcome {
  status: number
  json: Record<string, unknown> | undefined
  headers: http.IncomingHttpHeaders
  /** The client's own error (EPIPE, ECONNRESET...) when it got no whole answer. */
  error?: string
}

export interface UploadOptions {
  /** Chunked in 64 KiB pieces as fast as the connection takes them, instead of one write with a Content-Length. */
  chunked: boolean
  /** The client's agent; default none (a new connection, Connection: close). */
  agent?: http.Agent
  method?: string
}

/**
 * Sends `size` bytes of body (a '{' then 'a's: JSON that never ends) to `url` the way a program
 * uploading a file would, and reports the answer. The answer may come before the body is sent:
 * the client's own write error after a whole answer is not reported.
 */
export function upload (url: string, size: number, options: UploadOptions): Promise<UploadOutcome> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' }
    if (!options.chunked) headers['content-length'] = size
    const req = http.request(url, { method: options.method ?? 'POST', headers, agent: options.agent ?? false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        let json: Record<string, unknown> | undefined
        try { json = JSON.parse(text) as Record<string, unknown> } catch {}
        resolve({ status: res.statusCode ?? 0, json, headers: res.headers })
      })
      res.on('error', (err: NodeJS.ErrnoException) => { resolve({ status: 0, json: undefined, headers: {}, error: err.code ?? err.message }) })
    })
    req.on('error', (err: NodeJS.ErrnoException) => { resolve({ status: 0, json: undefined, headers: {}, error: err.code ?? err.message }) })
    const body = Buffer.alloc(size, 'a')
    body[0] = 0x7b // '{'
    if (!options.chunked) {
      req.end(body)
      return
    }
    let offset = 0
    const writeMore = (): void => {
      while (offset < body.length) {
        const piece = body.subarray(offset, offset + 65536)
        offset += piece.length
        if (!req.write(piece)) { req.once('drain', writeMore); return }
      }
      req.end()
    }
    writeMore()
  })
}

/** Outcomes counted by status, or by the client's error: `{ 413: 20 }`, `{ 413: 18, 'error EPIPE': 2 }`. */
export function tally (outcomes: UploadOutcome[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const o of outcomes) {
    const key = o.error === undefined ? String(o.status) : `error ${o.error}`
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}
