import type { FastifyReply } from 'fastify'
import { randomToken } from '../oauth/secrets.js'

/**
 * Sends one of the gateway's HTML pages (consent, errors) with a fresh style nonce and headers
 * from @fastify/helmet: nothing may frame it, run script or load anything; forms may post only
 * to the gateway and to `formTargets`, the places the form's answer redirects to (Chromium
 * applies form-action to those redirects too).
 */
export async function sendHtmlPage (reply: FastifyReply, status: number, render: (nonce: string) => string, formTargets: string[] = []): Promise<FastifyReply> {
  const nonce = randomToken(16)
  await reply.helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: [`'nonce-${nonce}'`],
        formAction: ["'self'", ...formTargets],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"]
      }
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' }
  })
  return await reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(render(nonce))
}
