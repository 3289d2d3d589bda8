import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from 'typebox'

const Feed = Type.Object({ id: Type.Integer(), from: Type.String(), text: Type.String() })

// Serialised from this (fast-json-stringify): a field missing here would be dropped from the
// answer, so test/services/routes/answers.test.ts holds the body byte for byte. A refusal is
// the authenticate plugin's 401, unschemed.
const FeedsAnswers = {
  200: Type.Object({ servedBy: Type.String(), user: Type.String(), feeds: Type.Array(Feed) })
}

/** Stand-in content: what matters is who may read it, not what it says. */
export const FEEDS: Record<string, Array<Static<typeof Feed>>> = {
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

export const feedRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // /getFeeds is the name the blog post uses.
  for (const url of ['/feeds', '/getFeeds']) {
    app.get(url, { preHandler: app.authenticate, schema: { response: FeedsAnswers } }, async (request) => {
      // The preHandler answered 401 unless it set the user.
      const user = request.username ?? ''
      return { servedBy: app.config.serverId, user, feeds: FEEDS[user] ?? [] }
    })
  }
}
