import fp from 'fastify-plugin'
import { createUserStore, type UserStore } from '../users.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The demo users and their password check (../users.ts). */
    users: UserStore
  }
}

export default fp(async (app) => {
  app.decorate('users', await createUserStore())
}, { name: 'users' })
