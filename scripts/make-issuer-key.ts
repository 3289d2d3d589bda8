import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { activationDelaySeconds, readKeyFile, writeNewKey } from '../services/issuer/keys.ts'
import { usageFailure, wholeNumber } from './lib/cli.ts'

const USAGE = `Usage: node scripts/make-issuer-key.ts DIR [--rotate] [--activate-in SECONDS]
       node scripts/make-issuer-key.ts --out FILE [--activate-in SECONDS]

Makes an Ed25519 private key for the issuer (jwt mode, JWT_SIGNING=eddsa): a private JWK with
its kid (its RFC 7638 thumbprint) and signFrom, readable by its owner only. It never prints the key.
  DIR              the issuers' ISSUER_KEYS_DIR. Without --rotate, a key that signs at once, only
                   if DIR holds none yet (Compose's issuer-keygen runs this at every up).
  --rotate         add a new key to DIR, published at once and signing after --activate-in
                   seconds; the old one is retired by the issuers once its tokens have expired.
                   Then send the issuers SIGHUP, or wait a second: they read DIR again.
  --activate-in S  seconds from now until the new key signs. Default: long enough for every app
                   server to have fetched it, from JWKS_REFRESH_SECONDS (60) and
                   JWT_CLOCK_TOLERANCE_SECONDS (5) as set in this environment: 1 + 60 + 1 + 5 = 67.
  --out FILE       write one key to FILE instead (a Kubernetes Secret's file), signing at once
                   unless --activate-in says otherwise.`

// parseCommandLine (lib/cli.ts) takes no positional argument; DIR is one, so parseArgs directly.
const fail: (message: string) => never = usageFailure(USAGE)
let parsed
try {
  parsed = parseArgs({ options: { rotate: { type: 'boolean', default: false }, 'activate-in': { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
} catch (err) {
  fail((err as Error).message)
}
const { values, positionals } = parsed
if (values.help === true) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
const dir = positionals[0]
if (positionals.length > 1) fail(`one DIR only (got ${positionals.join(' ')})`)
if ((dir === undefined) === (values.out === undefined)) fail('give DIR or --out FILE, one of them')
if (values.rotate && values.out !== undefined) fail('--rotate adds a key to DIR; with --out, give --activate-in instead')

const envSeconds = (name: string, fallback: number): number => {
  const raw = process.env[name]
  return raw === undefined || raw === '' ? fallback : wholeNumber(fail, name, raw, 0, 86400)
}
const defaultDelay = activationDelaySeconds(envSeconds('JWKS_REFRESH_SECONDS', 60), envSeconds('JWT_CLOCK_TOLERANCE_SECONDS', 5))
const activateIn = values['activate-in'] === undefined ? undefined : wholeNumber(fail, 'activate-in', values['activate-in'], 0, 86400 * 30)

/** The usable keys DIR holds now. */
async function keysIn (path: string): Promise<string[]> {
  const kids: string[] = []
  for (const name of readdirSync(path).filter((n) => /^[A-Za-z0-9_-]+\.json$/.test(n))) {
    try {
      kids.push((await readKeyFile(join(path, name))).kid)
    } catch {}
  }
  return kids
}

try {
  if (values.out !== undefined) {
    const made = await writeNewKey({ path: values.out }, Date.now() + (activateIn ?? 0) * 1000)
    process.stdout.write(`issuer-keygen: made key ${made.kid} in ${made.path}\n`)
  } else if (dir !== undefined && values.rotate) {
    const delay = activateIn ?? defaultDelay
    const made = await writeNewKey({ intoDir: dir }, Date.now() + delay * 1000)
    process.stdout.write(`issuer-keygen: made key ${made.kid} in ${dir}: published now, signing in ${delay} s; send the issuers SIGHUP to read it at once\n`)
  } else if (dir !== undefined) {
    const held = await keysIn(dir)
    if (held.length > 0) {
      process.stdout.write(`issuer-keygen: ${dir} already holds ${held.length === 1 ? 'a key' : `${held.length} keys`} (${held.join(', ')}): kept\n`)
    } else {
      const made = await writeNewKey({ intoDir: dir }, Date.now() - 1000 + (activateIn ?? 0) * 1000)
      process.stdout.write(`issuer-keygen: made key ${made.kid} in ${dir}\n`)
    }
  }
} catch (err) {
  const { code, message } = err as NodeJS.ErrnoException
  process.stderr.write(`issuer-keygen: cannot write the key (${code ?? message}): ${values.out ?? dir ?? ''} must be somewhere this user (${process.getuid?.() ?? '?'}) can write, and a file there must not exist yet\n`)
  process.exit(1)
}
