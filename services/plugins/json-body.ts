import fp from 'fastify-plugin'
import { poisoningKey } from '../refused-fields.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Body fields refused by name (unexpected or forbidden), for the request log line. */
    refusedFields?: string[]
  }
}

/**
 * Fastify's JSON parser refuses "__proto__" and "constructor.prototype" keys (prototype
 * poisoning) but says only "not valid JSON"; this one refuses the same bodies and says which key.
 */
export default fp(async (app) => {
  // Declared up front so every request object has the same shape.
  app.decorateRequest('refusedFields', undefined)
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string
    parseJson(request, text, (err, value) => {
      const key = err == null ? undefined : poisoningKey(text)
      if (key === undefined) {
        done(err ?? null, value)
        return
      }
      request.refusedFields = [key]
      const holding = key === 'constructor' ? ' holding "prototype"' : ''
      done(Object.assign(new Error(`body has a forbidden field "${key}"${holding}: it could change an object's prototype`), { statusCode: 400 }), undefined)
    })
  })
}, { name: 'json-body' })
