import type { ClusterSpec } from './step.ts'

// The cluster the issuer's steps share (jwt mode, JWT_SIGNING=eddsa): times shrunk so that what
// takes minutes in production shows in seconds. Access tokens live 3 s (ACCESS_TTL_SECONDS), the
// app servers fetch the JWKS every 2 s (JWKS_REFRESH_SECONDS), and clocks may differ by 1 s.
export const ACCESS_TTL_SECONDS = 3
export const JWKS_REFRESH_SECONDS = 2
export const CLOCK_TOLERANCE_SECONDS = 1

export const ISSUER_CLUSTER: ClusterSpec = {
  mode: 'jwt',
  strategy: 'round-robin',
  signing: 'eddsa',
  issuerEnv: { ACCESS_TTL_SECONDS: String(ACCESS_TTL_SECONDS), JWT_CLOCK_TOLERANCE_SECONDS: String(CLOCK_TOLERANCE_SECONDS) },
  serverEnv: { JWKS_REFRESH_SECONDS: String(JWKS_REFRESH_SECONDS), JWT_CLOCK_TOLERANCE_SECONDS: String(CLOCK_TOLERANCE_SECONDS) }
}
