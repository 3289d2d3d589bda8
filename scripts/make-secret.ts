import { randomBytes } from 'node:crypto'
import { linkSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'

// Usage: node scripts/make-secret.ts FILE [FILE...]
//
// Writes a random secret (48 bytes, base64: what `openssl rand -base64 48` makes) to each FILE,
// readable by its owner only, unless that FILE already holds one; each FILE gets its own.
// Compose's one-shot keygen service runs it before the app servers start, so every cluster has
// a JWT secret and a cookie key of its own, kept in a named volume across restarts, and nobody
// runs one published with the code. It never prints a secret.

const files = process.argv.slice(2)
if (files.length === 0) {
  process.stderr.write('Usage: node scripts/make-secret.ts FILE [FILE...]\n')
  process.exit(2)
}

/** What FILE holds, trimmed; undefined when there is no FILE. */
function existing (file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Makes or keeps the secret in `file`; false when it could not. */
function makeSecret (file: string): boolean {
  try {
    const current = existing(file)
    if (current !== undefined && current !== '') {
      process.stdout.write(`keygen: ${file} already holds a secret: kept\n`)
      return true
    }
    // An empty file (made by hand, say) is no secret: replace it.
    if (current === '') rmSync(file)
    // Written aside, then linked into place: no reader ever sees half a secret, and if another
    // keygen got there first its secret stays (link refuses to replace a file; rename would not).
    const aside = `${file}.${process.pid}.new`
    writeFileSync(aside, `${randomBytes(48).toString('base64')}\n`, { mode: 0o600 })
    let made = true
    try {
      linkSync(aside, file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      made = false
    } finally {
      unlinkSync(aside)
    }
    process.stdout.write(made ? `keygen: made a new secret in ${file}\n` : `keygen: ${file} was written meanwhile: kept\n`)
    return true
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException
    process.stderr.write(`keygen: cannot write the secret to ${file} (${code ?? message}): it must be in a directory this user (${process.getuid?.() ?? '?'}) can write\n`)
    return false
  }
}

// Every file is tried, so one message names each that failed.
const results = files.map(makeSecret)
if (results.includes(false)) process.exit(1)
