import type { UpstreamCredentials } from './upstream-credentials.js'

/** upstream_auth none: the upstream gets no credential at all. */
export const noCredentials: UpstreamCredentials = { apply: () => {} }
