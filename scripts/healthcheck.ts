// The containers' HEALTHCHECK: the slim image has no curl, so Node asks itself.
// `node scripts/healthcheck.ts [path]`: exit 0 when GET http://127.0.0.1:$PORT<path> answers
// 2xx within two seconds, 1 otherwise. Default path /health, default PORT 3000.
const path = process.argv[2] ?? '/health'
const port = process.env.PORT ?? '3000'

try {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) })
  process.exitCode = res.ok ? 0 : 1
  if (!res.ok) process.stderr.write(`GET ${path}: ${res.status}\n`)
} catch (err) {
  process.stderr.write(`GET ${path}: ${(err as Error).message}\n`)
  process.exitCode = 1
}
