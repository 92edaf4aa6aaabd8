import type { IncomingHttpHeaders } from 'node:http'

/**
 * Request headers a client must not get through to an upstream: its credentials for the gateway,
 * its browser's Origin, and every header with which a proxy, CDN, mesh or auth proxy asserts a
 * client address, scheme, host, path or user (upstreams behind such proxies believe them). The
 * gateway sets X-Forwarded-For/-Host/-Proto itself. Exact names here, families below.
 */
const CLIENT_ONLY = new Set([
  'authorization', 'proxy-authorization', 'cookie', 'origin',
  // Client address, scheme and host claims.
  'forwarded', 'x-real-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'cf-connecting-ipv6',
  'fastly-client-ip', 'x-cluster-client-ip', 'x-host', 'x-scheme', 'x-url-scheme', 'front-end-https',
  // User claims of auth proxies (Apache/CGI, Grafana, Kong).
  'remote-user', 'x-user', 'x-email', 'x-webauth-user', 'x-authenticated-user', 'x-authenticated-userid',
  'x-credential-identifier', 'x-userinfo', 'x-id-token', 'x-access-token'
])

/**
 * Header families by prefix: X-Forwarded-* (user, email, groups, port, prefix, ...), X-Original-*,
 * Envoy's internal X-Envoy-*, oauth2-proxy's X-Auth-Request-*, Kubernetes' X-Remote-*, Kong's
 * X-Consumer-*, Pomerium, Google IAP, AWS ALB OIDC, Azure App Service, Cloudflare Access.
 */
const CLIENT_ONLY_FAMILY = /^(?:x-(?:forwarded|original|envoy|auth-request|remote|consumer|pomerium|goog-iap|goog-authenticated-user|amzn-oidc|ms-token|ms-client-principal)-|x-ms-client-principal$|cf-access-)/

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, not to the message: never
 * copied from one side to the other. Host and Content-Length are set for the upstream request
 * by undici (the target's host, the forwarded body's length); Expect would make it wait for a
 * 100 it does not handle.
 */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'http2-settings'])
const SET_BY_FORWARDER = new Set(['host', 'content-length', 'expect'])

/**
 * `headers` (Node's lower-cased names) without the client-only, hop-by-hop and forwarder-set
 * ones, nor those the client's Connection header names, in one pass. A copy: deleting keys
 * turns the object into a slow dictionary, which costs twice as much.
 */
export function forwardableHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const connection = headers.connection
  // Names a client lists in Connection are hop-by-hop too; it cannot use them to strip the gateway's own.
  const listed = connection === undefined || connection === 'keep-alive' || connection === 'close' ? null : connection.toLowerCase().split(',').map(name => name.trim())
  const kept: IncomingHttpHeaders = {}
  for (const name in headers) {
    if (CLIENT_ONLY.has(name) || HOP_BY_HOP.has(name) || SET_BY_FORWARDER.has(name) || CLIENT_ONLY_FAMILY.test(name)) continue
    if (listed !== null && listed.includes(name)) continue
    kept[name] = headers[name]
  }
  return kept
}
