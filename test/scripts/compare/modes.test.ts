import t from 'tap'
import { authModeOf, COMPARE_MODES, DEFAULT_COMPARE_MODES, sessionCacheOf, storeOf, usesPostgres, usesRedis } from '../../../scripts/compare/modes.ts'

t.test('each compare mode runs its servers in one auth mode, with one store per request or none', async (t) => {
  const rows = COMPARE_MODES.map((m) => [m, authModeOf(m), sessionCacheOf(m) ?? '-', storeOf(m) ?? '-', usesRedis(m), usesPostgres(m)])
  t.same(rows, [
    ['memory', 'memory', '-', '-', false, false],
    ['redis', 'redis', '-', 'redis', true, false],
    ['postgres', 'postgres', 'none', 'postgres', false, true],
    ['jwt', 'jwt', '-', '-', false, false],
    ['jwt-revocation', 'jwt', '-', 'redis', true, false],
    ['cookie', 'cookie', '-', '-', false, false],
    // The shared cache is asked on every request too (a Redis command instead of a statement).
    ['postgres+redis-cache', 'postgres', 'redis', 'postgres', true, true],
    ['postgres+local-cache', 'postgres', 'local', 'postgres', false, true],
    ['jwt-eddsa', 'jwt', '-', '-', false, false]
  ])
  t.same(DEFAULT_COMPARE_MODES, ['memory', 'redis', 'postgres', 'jwt', 'jwt-revocation', 'cookie'], 'the default: the six answers; the variants when asked')
})
