import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { feedsTimes, login, tally } from '../helpers/cluster.ts'
import { runCli, waitForOutput } from '../helpers/cli.ts'
import { freePort } from '../../scripts/lib/ports.ts'

const START = fileURLToPath(new URL('../../scripts/start.ts', import.meta.url))

/** Processes whose command line mentions `text`: what would be left running. */
function processesMentioning (text: string): string[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ')
      return cmdline.includes(text) ? [`${p}: ${cmdline}`] : []
    } catch {
      return []
    }
  })
}

/** A TMPDIR of the test's own, so whatever the launcher leaves in it is visible; open to the unprivileged user PostgreSQL runs as. */
function privateTmp (): string {
  const dir = mkdtempSync(join(tmpdir(), 'start-postgres-'))
  chmodSync(dir, 0o755)
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

t.test('npm start -- --mode postgres: 30 reads through the balancer succeed on every server; Ctrl-C leaves no process and no data directory', { skip: process.platform !== 'linux' ? 'reads /proc' : false, timeout: 240_000 }, async (t) => {
  const port = await freePort()
  const tmp = privateTmp()
  const run = runCli(t, START, ['--mode', 'postgres', '--port', String(port)], { ...process.env, DATABASE_URL: undefined, TMPDIR: tmp })
  await waitForOutput(run, 'Ctrl-C stops everything', 120_000)
  const out = run.output()
  const line = /postgres +(postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres) +\(private, from (\S+); removed on exit with its data in (\S+)\)/.exec(out)
  t.ok(line, 'the private PostgreSQL is listed, with where it came from and its data directory')
  const dataDir = line?.[3] ?? '?'
  t.ok(dataDir.startsWith(tmp), `its data directory is in TMPDIR (${dataDir})`)
  t.ok(processesMentioning(dataDir).length > 0, 'and it runs there')

  const url = `http://127.0.0.1:${port}`
  const { token } = await login(url)
  const answers = await feedsTimes(url, token, 30)
  t.same(tally(answers), { 'app-1': { 200: 10 }, 'app-2': { 200: 10 }, 'app-3': { 200: 10 } }, '30 reads: 30 × 200, 10 on each server')
  const forged = await feedsTimes(url, `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, 3)
  t.same(forged.map((a) => a.status), [401, 401, 401], 'a tampered credential: 401')

  // Ctrl-C: the terminal's SIGINT reaches the launcher alone (its children have groups of their own).
  run.child.kill('SIGINT')
  t.equal(await run.exited, 0, 'the launcher exits cleanly')
  t.match(run.output(), 'stopping the balancer, the servers and postgres')
  t.same(processesMentioning(dataDir), [], 'no postgres process is left')
  t.notOk(existsSync(dataDir), 'no data directory is left')
  t.same(readdirSync(tmp), [], 'nothing at all in TMPDIR')
})

t.test('Ctrl-C while the cluster is still starting: no postgres process and no data directory either', { skip: process.platform !== 'linux' ? 'reads /proc' : false, timeout: 120_000 }, async (t) => {
  const tmp = privateTmp()
  const run = runCli(t, START, ['--mode', 'postgres', '--port', String(await freePort())], { ...process.env, DATABASE_URL: undefined, TMPDIR: tmp })
  // PostgreSQL is up; the app servers are still starting.
  await waitForOutput(run, 'database system is ready to accept connections', 60_000)
  run.child.kill('SIGINT')
  t.equal(await run.exited, 1)
  t.match(run.output(), 'SIGINT while starting: stopping what had started.')
  t.same(processesMentioning(tmp), [], 'no postgres process is left')
  t.same(readdirSync(tmp), [], 'no data directory is left')
})
