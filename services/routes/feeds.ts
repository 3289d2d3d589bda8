import type { FastifyInstance, FastifyRequest } from 'fastify'

/** Stand-in content: what matters is who may read it, not what it says. */
export const FEEDS: Record<string, Array<{ id: number, from: string, text: string }>> = {
  alice: [
    { id: 1, from: 'white-rabbit', text: 'I am late, I am late, for a very important date.' },
    { id: 2, from: 'cheshire-cat', text: 'We are all mad here.' }
  ],
  bob: [
    { id: 1, from: 'wendy', text: 'Can we fix it?' },
    { id: 2, from: 'scoop', text: 'Yes we can!' }
  ],
  carol: [
    { id: 1, from: 'keeper', text: 'The lamp is lit; ships pass safely tonight.' }
  ]
}

export async function feedRoutes (app: FastifyInstance): Promise<void> {
  const handler = async (request: FastifyRequest) => ({
    servedBy: app.config.serverId,
    user: request.username,
    feeds: FEEDS[request.username ?? ''] ?? []
  })
  app.get('/feeds', { preHandler: app.authenticate }, handler)
  // The name the blog post uses.
  app.get('/getFeeds', { preHandler: app.authenticate }, handler)
}
