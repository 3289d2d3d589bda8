import fp from 'fastify-plugin'

export interface ResponseHeadersOptions {
  /** SERVER_ID: the name every answer carries in x-served-by. */
  serverId: string
}

/** Headers every answer carries, set before anything else can answer. */
export default fp<ResponseHeadersOptions>(async (app, { serverId }) => {
  app.addHook('onRequest', async (request, reply) => {
    // Every answer says which server made it: the demo is about exactly that.
    reply.header('x-served-by', serverId)
    // Every answer here carries a credential (login), a user's data (feeds) or a refusal about
    // one: none of it may be kept by a browser or a shared cache (OWASP session management).
    reply.header('cache-control', 'no-store')
  })
}, { name: 'response-headers' })
