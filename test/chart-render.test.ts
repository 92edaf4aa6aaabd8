// Renders the Helm chart with `helm template` (defaults, every seed README example, and the
// newer options) and checks the parsed manifests. Needs no cluster: scripts/helm.sh provides helm.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const chart = path.join(root, 'chart')
const example = (name: string) => path.join(chart, 'examples', `${name}.yaml`)
const helmBin = execFileSync(path.join(root, 'scripts', 'helm.sh'), {
  encoding: 'utf8',
  timeout: 300_000,
}).trim()

// Manifests are plain parsed YAML; `any` keeps deep property access readable in assertions.
type Manifest = Record<string, any>
type Env = Record<string, any>

function helm (args: string[]) {
  return spawnSync(helmBin, args, { encoding: 'utf8', timeout: 60_000 })
}

function render (args: string[] = [], release = 'my-gateway'): Manifest[] {
  const r = helm(['template', release, chart, '--namespace', 'mcp', ...args])
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`)
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Manifest)
    .filter((m) => m && m.kind)
}

function renderFails (args: string[]): string {
  const r = helm(['template', 'my-gateway', chart, ...args])
  if (r.status === 0) throw new Error(`expected helm template ${args.join(' ')} to fail`)
  return r.stderr
}

/** NOTES.txt as `helm install --dry-run=client` prints it (no cluster needed). */
function notes (args: string[] = []): string {
  const r = helm(['install', 'my-gateway', chart, '--dry-run=client', ...args])
  if (r.status !== 0) throw new Error(`helm install --dry-run failed: ${r.stderr}`)
  const i = r.stdout.indexOf('NOTES:')
  return i < 0 ? '' : r.stdout.slice(i)
}

const find = (ms: Manifest[], kind: string, name?: string) =>
  ms.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name))
const one = (ms: Manifest[], kind: string, name?: string): Manifest => {
  const found = find(ms, kind, name)
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`)
  return found[0]!
}
const gatewayContainer = (ms: Manifest[]) => one(ms, 'Deployment').spec.template.spec.containers[0]
const envOf = (ms: Manifest[]): Env =>
  Object.fromEntries(gatewayContainer(ms).env.map((e: Manifest) => [e.name, e.value ?? e.valueFrom]))
const configYaml = (ms: Manifest[]) => parse(one(ms, 'ConfigMap').data['config.yaml'])
const secretData = (s: Manifest, key: string) => Buffer.from(s.data[key], 'base64').toString('utf8')

t.test('defaults', async (t) => {
  const ms = render()
  const dep = one(ms, 'Deployment', 'my-gateway-mcp-gateway')
  const pod = dep.spec.template.spec
  const c = gatewayContainer(ms)
  const env = envOf(ms)

  t.equal(dep.spec.replicas, 1)
  t.equal(c.image, 'ghcr.io/mcp-gateway/mcp-gateway:0.1.0', 'tag defaults to appVersion')
  t.equal(c.imagePullPolicy, 'IfNotPresent')
  t.same(c.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'metrics', containerPort: 9464, protocol: 'TCP' }])

  t.match(c.livenessProbe, { httpGet: { path: '/healthz', port: 'http' } })
  t.match(c.readinessProbe, { httpGet: { path: '/readyz', port: 'http' } })

  t.match(pod.securityContext, {
    runAsNonRoot: true,
    runAsUser: 1000,
    fsGroup: 1000,
    seccompProfile: { type: 'RuntimeDefault' },
  })
  t.match(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: 1000,
    capabilities: { drop: ['ALL'] },
  })
  t.equal(pod.automountServiceAccountToken, false)
  const tmp = c.volumeMounts.find((m: Manifest) => m.mountPath === '/tmp')
  t.ok(pod.volumes.find((v: Manifest) => v.name === tmp.name && v.emptyDir), '/tmp is an emptyDir')

  // Every env value must be a string for the API server.
  for (const e of c.env) if ('value' in e) t.type(e.value, 'string', `${e.name} is a string`)
  t.match(env, {
    HOST: '0.0.0.0',
    PORT: '8080',
    METRICS_PORT: '9464',
    BASE_URL: 'http://localhost:8080',
    ALLOWED_ORIGINS: '*',
    LOG_LEVEL: 'info',
    // One hop, the Ingress controller: `true` would take a client-forged X-Forwarded-For entry.
    TRUST_PROXY: '1',
    OAUTH_PROVIDER: 'google',
    OAUTH_GOOGLE_REDIRECT_URI: 'http://localhost:8080/oauth/callback',
    OAUTH_GOOGLE_SCOPES: 'openid,profile,email',
    ACCESS_TOKEN_TTL: '3600',
    REFRESH_TOKEN_TTL: '2592000',
    REFRESH_TOKEN_MAX_LIFETIME: '7776000',
    OPERATOR_TOKEN_MAX_TTL: '86400',
    REVOCATION_RESYNC_SECONDS: '30',
    UPSTREAM_TIMEOUT_MS: '60000',
    REQUEST_TIMEOUT_MS: '30000',
    HEADERS_TIMEOUT_MS: '10000',
    KEEP_ALIVE_TIMEOUT_MS: '72000',
    OAUTH_GOOGLE_CLIENT_ID: { secretKeyRef: { name: 'my-gateway-mcp-gateway', key: 'oauth-google-client-id' } },
    OAUTH_GOOGLE_CLIENT_SECRET: {
      secretKeyRef: { name: 'my-gateway-mcp-gateway', key: 'oauth-google-client-secret' },
    },
    JWT_SIGNING_KEY: { secretKeyRef: { name: 'my-gateway-mcp-gateway-keys', key: 'jwt-signing-key' } },
    ENCRYPTION_KEY: { secretKeyRef: { name: 'my-gateway-mcp-gateway-keys', key: 'encryption-key' } },
  })
  t.notOk('ALLOWED_EMAILS' in env, 'no allow-list by default')

  // config.yaml is mounted where CONFIG_FILE points.
  const mount = c.volumeMounts.find((m: Manifest) => m.name === 'config')
  t.equal(env.CONFIG_FILE, path.posix.join(mount.mountPath, 'config.yaml'))
  t.equal(pod.volumes.find((v: Manifest) => v.name === 'config').configMap.name, 'my-gateway-mcp-gateway')
  t.same(configYaml(ms), {
    proxies: [{ pattern: '/calc/mcp', target_url: 'http://calc-mcp-server:3000/mcp' }],
  })

  const ann = dep.spec.template.metadata.annotations
  t.match(ann['checksum/config'], /^[0-9a-f]{64}$/)
  t.match(ann['checksum/secret'], /^[0-9a-f]{64}$/)

  const svc = one(ms, 'Service', 'my-gateway-mcp-gateway')
  t.equal(svc.spec.type, 'ClusterIP')
  t.same(svc.spec.ports, [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }, { name: 'metrics', port: 9464, targetPort: 'metrics', protocol: 'TCP' }])
  t.same(svc.spec.selector, dep.spec.selector.matchLabels, 'Service selects the gateway pods')
  t.equal(svc.spec.selector['app.kubernetes.io/component'], 'gateway', 'and not the Redis pods')

  // OAuth Secret with the seed's key names, even when empty.
  const oauth = one(ms, 'Secret', 'my-gateway-mcp-gateway')
  t.same(Object.keys(oauth.data).sort(), ['oauth-google-client-id', 'oauth-google-client-secret'])

  // Generated keys: an EC P-256 PEM and 32 random bytes in base64.
  const keys = one(ms, 'Secret', 'my-gateway-mcp-gateway-keys')
  t.match(secretData(keys, 'jwt-signing-key'), /^-----BEGIN EC PRIVATE KEY-----\n/)
  t.equal(Buffer.from(secretData(keys, 'encryption-key'), 'base64').length, 32)

  t.equal(one(ms, 'ServiceAccount').metadata.name, pod.serviceAccountName)
  t.match(one(ms, 'PodDisruptionBudget').spec, {
    maxUnavailable: 1,
    selector: { matchLabels: dep.spec.selector.matchLabels },
  })
  for (const kind of ['HorizontalPodAutoscaler', 'Ingress', 'NetworkPolicy', 'ServiceMonitor', 'PrometheusRule']) {
    t.equal(find(ms, kind).length, 0, `no ${kind} by default`)
  }

  const test = one(ms, 'Pod')
  t.equal(test.metadata.annotations['helm.sh/hook'], 'test')
  t.match(test.spec.containers[0].command.join(' '), /wget .*http:\/\/my-gateway-mcp-gateway:8080\/\.well-known\/oauth-authorization-server/)
})

t.test('built-in Redis (default)', async (t) => {
  const ms = render()
  const sts = one(ms, 'StatefulSet', 'my-gateway-mcp-gateway-redis')
  const pod = sts.spec.template.spec
  const c = pod.containers[0]
  t.equal(sts.spec.replicas, 1)
  t.equal(c.image, 'redis:7-alpine')
  t.equal(sts.metadata.labels['app.kubernetes.io/component'], 'redis')
  t.equal(sts.spec.template.metadata.labels['app.kubernetes.io/component'], 'redis')
  t.equal(sts.spec.serviceName, 'my-gateway-mcp-gateway-redis-headless')
  t.equal(one(ms, 'Service', 'my-gateway-mcp-gateway-redis-headless').spec.clusterIP, 'None')
  t.same(one(ms, 'Service', 'my-gateway-mcp-gateway-redis').spec.selector, sts.spec.selector.matchLabels)

  const script = c.command.join(' ')
  t.match(script, /--appendonly yes/, 'AOF persistence')
  t.match(script, /--dir \/data/)
  t.match(script, /--requirepass "\$REDIS_PASSWORD"/)
  t.match(c.env, [
    { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'my-gateway-mcp-gateway-redis', key: 'redis-password' } } },
    { name: 'REDISCLI_AUTH' },
  ])
  t.ok(c.livenessProbe.exec && c.readinessProbe.exec, 'redis-cli probes')
  t.match(c.securityContext, { readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } })
  t.match(pod.securityContext, { runAsNonRoot: true, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } })
  t.match(c.resources, { requests: { cpu: '50m', memory: '64Mi' } })

  const pvc = sts.spec.volumeClaimTemplates[0]
  t.equal(pvc.metadata.name, 'data')
  t.same(pvc.spec.resources.requests, { storage: '1Gi' })
  t.notOk('storageClassName' in pvc.spec, 'default StorageClass')
  t.same(pvc.spec.accessModes, ['ReadWriteOnce'])

  const pw = secretData(one(ms, 'Secret', 'my-gateway-mcp-gateway-redis'), 'redis-password')
  t.match(pw, /^[A-Za-z0-9]{32}$/, 'generated password')

  const env = envOf(ms)
  t.equal(env.REDIS_ADDR, 'my-gateway-mcp-gateway-redis:6379')
  t.same(env.REDIS_PASSWORD, { secretKeyRef: { name: 'my-gateway-mcp-gateway-redis', key: 'redis-password' } })
  t.notOk('REDIS_TLS' in env)
  t.notOk('REDIS_URL' in env)
})

t.test('built-in Redis options', async (t) => {
  let ms = render(['--set', 'redis.master.persistence.storageClass=-'])
  t.equal(one(ms, 'StatefulSet').spec.volumeClaimTemplates[0].spec.storageClassName, '', '"-" disables provisioning')

  ms = render(['--set', 'redis.master.persistence.enabled=false'])
  const sts = one(ms, 'StatefulSet')
  t.notOk(sts.spec.volumeClaimTemplates, 'no PVC')
  t.ok(sts.spec.template.spec.volumes.find((v: Manifest) => v.name === 'data' && v.emptyDir), 'emptyDir for /data')

  ms = render(['--set', 'redis.auth.password=s3cret'])
  t.equal(secretData(one(ms, 'Secret', 'my-gateway-mcp-gateway-redis'), 'redis-password'), 's3cret')

  ms = render(['--set', 'redis.auth.existingSecret=my-redis', '--set', 'redis.auth.existingSecretPasswordKey=pw'])
  t.equal(find(ms, 'Secret', 'my-gateway-mcp-gateway-redis').length, 0)
  t.same(envOf(ms).REDIS_PASSWORD, { secretKeyRef: { name: 'my-redis', key: 'pw' } })

  ms = render(['--set', 'redis.auth.enabled=false'])
  t.equal(find(ms, 'Secret', 'my-gateway-mcp-gateway-redis').length, 0)
  t.notOk('REDIS_PASSWORD' in envOf(ms))
  t.notMatch(one(ms, 'StatefulSet').spec.template.spec.containers[0].command.join(' '), /requirepass/)

  ms = render(['--set', 'redis.image.repository=mirror/redis', '--set', 'redis.image.tag=7.4'])
  t.equal(one(ms, 'StatefulSet').spec.template.spec.containers[0].image, 'mirror/redis:7.4')
})

t.test('seed example: production (values-prod.yaml)', async (t) => {
  const ms = render(['-f', example('production')])
  const dep = one(ms, 'Deployment')
  const env = envOf(ms)
  t.notOk('replicas' in dep.spec, 'the HPA owns the replica count')
  t.match(one(ms, 'HorizontalPodAutoscaler').spec, {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name },
    minReplicas: 2,
    maxReplicas: 10,
    metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }],
  })
  t.equal(gatewayContainer(ms).image, 'ghcr.io/schnurbus/go-mcp-gateway:v0.1.0')
  t.equal(env.BASE_URL, 'https://mcp-gateway.example.com')
  t.equal(env.OAUTH_GOOGLE_REDIRECT_URI, 'https://mcp-gateway.example.com/oauth/callback')
  const oauth = one(ms, 'Secret', 'my-gateway-mcp-gateway')
  t.equal(secretData(oauth, 'oauth-google-client-id'), 'YOUR_CLIENT_ID')
  t.equal(secretData(oauth, 'oauth-google-client-secret'), 'YOUR_CLIENT_SECRET')
  t.same(configYaml(ms).proxies, [{ pattern: '/calc/mcp', target_url: 'http://calc-mcp-server:3000/mcp' }])

  const ing = one(ms, 'Ingress')
  t.equal(ing.apiVersion, 'networking.k8s.io/v1')
  t.equal(ing.spec.ingressClassName, 'nginx')
  t.same(ing.metadata.annotations, {
    'cert-manager.io/cluster-issuer': 'letsencrypt-prod',
    'nginx.ingress.kubernetes.io/ssl-redirect': 'true',
  })
  t.same(ing.spec.tls, [{ secretName: 'mcp-gateway-tls', hosts: ['mcp-gateway.example.com'] }])
  t.same(ing.spec.rules, [
    {
      host: 'mcp-gateway.example.com',
      http: {
        paths: [
          {
            path: '/',
            pathType: 'Prefix',
            backend: { service: { name: 'my-gateway-mcp-gateway', port: { number: 8080 } } },
          },
        ],
      },
    },
  ])

  const pvc = one(ms, 'StatefulSet').spec.volumeClaimTemplates[0]
  t.same(pvc.spec.resources.requests, { storage: '5Gi' })
  t.equal(pvc.spec.storageClassName, 'standard')
  t.same(gatewayContainer(ms).resources, {
    limits: { cpu: '1000m', memory: '1Gi' },
    requests: { cpu: '500m', memory: '512Mi' },
  })
})

t.test('seed example: external Redis wins over redis.enabled', async (t) => {
  const ms = render(['-f', example('external-redis')])
  t.equal(find(ms, 'StatefulSet').length, 0, 'no built-in Redis')
  t.equal(find(ms, 'Service').length, 1, 'only the gateway Service')
  const env = envOf(ms)
  t.equal(env.REDIS_ADDR, 'redis.example.com:6379')
  t.equal(env.REDIS_TLS, 'false')
  t.same(env.REDIS_PASSWORD, { secretKeyRef: { name: 'my-gateway-mcp-gateway-redis', key: 'redis-password' } })
  t.equal(secretData(one(ms, 'Secret', 'my-gateway-mcp-gateway-redis'), 'redis-password'), 'your-redis-password')
})

t.test('external Redis with TLS and an existing Secret', async (t) => {
  const ms = render([
    '--set', 'redis.external.enabled=true',
    '--set', 'redis.external.host=redis.internal',
    '--set', 'redis.external.port=6380',
    '--set', 'redis.external.tls=true',
    '--set', 'redis.external.existingSecret=redis-creds',
    '--set', 'redis.external.existingSecretPasswordKey=password',
  ])
  const env = envOf(ms)
  t.equal(env.REDIS_ADDR, 'redis.internal:6380')
  t.equal(env.REDIS_TLS, 'true')
  t.same(env.REDIS_PASSWORD, { secretKeyRef: { name: 'redis-creds', key: 'password' } })
  t.equal(find(ms, 'Secret', 'my-gateway-mcp-gateway-redis').length, 0)

  const noPw = envOf(render(['--set', 'redis.external.enabled=true', '--set', 'redis.external.host=r']))
  t.notOk('REDIS_PASSWORD' in noPw, 'no password configured, none sent')
  t.match(renderFails(['--set', 'redis.external.enabled=true']), /redis\.external\.host is required/)
})

t.test('no Redis: in-memory store and a warning when it cannot work', async (t) => {
  const ms = render(['--set', 'redis.enabled=false'])
  t.equal(find(ms, 'StatefulSet').length, 0)
  const env = envOf(ms)
  for (const k of ['REDIS_ADDR', 'REDIS_PASSWORD', 'REDIS_URL', 'REDIS_TLS']) t.notOk(k in env, `no ${k}`)
  t.notMatch(notes(['--set', 'redis.enabled=false']), /WARNING: Redis is disabled/)
  t.match(notes(['--set', 'redis.enabled=false', '--set', 'replicaCount=2']), /WARNING: Redis is disabled/)
  t.match(notes(['--set', 'redis.enabled=false', '--set', 'autoscaling.enabled=true']), /WARNING: Redis is disabled/)
})

t.test('seed example: multiple proxy routes', async (t) => {
  const ms = render(['-f', example('multiple-routes')])
  t.same(configYaml(ms), {
    proxies: [
      { pattern: '/calc/mcp', target_url: 'http://calc-server:3000/mcp' },
      { pattern: '/files/mcp', target_url: 'http://file-server:3001/mcp' },
      { pattern: '/email/mcp', target_url: 'http://email-server:3002/mcp' },
    ],
  })
  const n = notes(['-f', example('multiple-routes')])
  for (const p of ['/calc/mcp', '/files/mcp', '/email/mcp']) t.match(n, `http://localhost:8080${p}`)
})

t.test('seed example: TLS with cert-manager', async (t) => {
  const ing = one(render(['-f', example('cert-manager-tls')]), 'Ingress')
  t.equal(ing.spec.ingressClassName, 'nginx')
  t.equal(ing.metadata.annotations['cert-manager.io/cluster-issuer'], 'letsencrypt-prod')
  t.equal(ing.metadata.annotations['nginx.ingress.kubernetes.io/force-ssl-redirect'], 'true')
  t.same(ing.spec.tls, [{ secretName: 'mcp-gateway-tls', hosts: ['mcp-gateway.example.com'] }])
  t.equal(ing.spec.rules[0].host, 'mcp-gateway.example.com')
})

t.test('seed example: high availability', async (t) => {
  const ms = render(['-f', example('high-availability')])
  const dep = one(ms, 'Deployment')
  t.notOk('replicas' in dep.spec, 'autoscaling enabled: no replicas in the Deployment')
  t.match(one(ms, 'HorizontalPodAutoscaler').spec, {
    minReplicas: 3,
    maxReplicas: 10,
    metrics: [{ resource: { target: { averageUtilization: 70 } } }],
  })
  const anti = dep.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]
  t.equal(anti.weight, 100)
  t.equal(anti.podAffinityTerm.topologyKey, 'kubernetes.io/hostname')
  const pvc = one(ms, 'StatefulSet').spec.volumeClaimTemplates[0]
  t.same(pvc.spec.resources.requests, { storage: '10Gi' })
  t.equal(pvc.spec.storageClassName, 'fast-ssd')

  // The example's anti-affinity selects app.kubernetes.io/name=go-mcp-gateway: with the
  // documented nameOverride the pods carry that label, so it spreads them as it used to.
  const kept = one(render(['-f', example('high-availability'), '--set', 'nameOverride=go-mcp-gateway']), 'Deployment')
  const expr = anti.podAffinityTerm.labelSelector.matchExpressions[0]
  t.ok(expr.values.includes(kept.spec.template.metadata.labels[expr.key]))
  t.equal(kept.metadata.name, 'my-gateway-go-mcp-gateway', 'old resource names')
})

t.test('seed CLI install example', async (t) => {
  const args = [
    '--set', 'config.oauth.google.clientId=YOUR_CLIENT_ID',
    '--set', 'config.oauth.google.clientSecret=YOUR_CLIENT_SECRET',
    '--set', 'config.oauth.google.redirectUri=http://localhost:8080/oauth/callback',
  ]
  const ms = render(args)
  const oauth = one(ms, 'Secret', 'my-gateway-mcp-gateway')
  t.equal(secretData(oauth, 'oauth-google-client-id'), 'YOUR_CLIENT_ID')
  t.equal(secretData(oauth, 'oauth-google-client-secret'), 'YOUR_CLIENT_SECRET')
  t.equal(envOf(ms).OAUTH_GOOGLE_REDIRECT_URI, 'http://localhost:8080/oauth/callback')
  const n = notes(args)
  t.match(n, /Register this redirect URI[^\n]*\n\s+http:\/\/localhost:8080\/oauth\/callback/)
  t.notMatch(n, /WARNING/)

  // The seed's upgrade example.
  const up = render(['--set', 'image.tag=v0.2.0', '--set', 'replicaCount=3'])
  t.equal(one(up, 'Deployment').spec.replicas, 3)
  t.equal(gatewayContainer(up).image, 'ghcr.io/mcp-gateway/mcp-gateway:v0.2.0')
})

t.test('NOTES warn about a redirect URI outside baseUrl and missing credentials', async (t) => {
  const n = notes(['--set', 'config.baseUrl=https://gw.example.com'])
  t.match(n, /redirectUri does not start with config\.baseUrl/)
  t.match(n, /clientId\/clientSecret are empty/)
  t.match(n, /https:\/\/gw\.example\.com\/calc\/mcp/)
})

t.test('NOTES warn when the HPA has no CPU request to scale on', async (t) => {
  t.match(notes(['--set', 'autoscaling.enabled=true']), /resources\.requests\.cpu is not set/)
  t.notMatch(notes(['-f', example('production')]), /resources\.requests\.cpu is not set/)
})

t.test('checksum/config follows config.yaml', async (t) => {
  const sum = (args: string[]) => one(render(args), 'Deployment').spec.template.metadata.annotations['checksum/config']
  const base = sum([])
  t.equal(sum([]), base, 'stable across renders')
  t.not(sum(['-f', example('multiple-routes')]), base, 'a changed proxy list rolls the pods')
  t.not(sum(['--set-json', 'config.proxies=[{"pattern":"/calc/mcp","targetUrl":"http://other:3000/mcp"}]']), base)
})

t.test('schema violations fail to render', async (t) => {
  t.match(renderFails(['--set', 'replicaCount=two']), /replicaCount/)
  t.match(renderFails(['--set', 'replicaCnt=2']), /replicaCnt/)
  t.match(renderFails(['--set', 'config.oauth.google.clintId=x']), /clintId/)
  t.match(renderFails(['--set', 'redis.external.port=abc']), /port/)
  t.match(renderFails(['--set', 'autoscaling.enabled=yes']), /enabled/)
  t.match(renderFails(['--set-json', 'config.proxies=[{"pattern":"/a/mcp"}]']), /targetUrl/)
  t.match(renderFails(['--set-json', 'config.proxies=[{"pattern":"/a","targetUrl":"http://a","upstreamAuth":"bogus"}]']), /upstreamAuth/)
  t.match(renderFails(['--set', 'config.oauth.provider=facebook']), /provider/)
  t.match(renderFails(['--set', 'config.metricsPort=8080']), /metricsPort must differ/)
  // Rules the gateway enforces at start-up, caught at install time instead.
  t.match(renderFails(['--set', 'config.baseUrl=https://gw.example.com/mcp']), /baseUrl/)
  t.match(renderFails(['--set-json', 'config.proxies=[{"pattern":"/calc/mcp/","targetUrl":"http://a"}]']), /pattern/)
  t.match(renderFails(['--set-json', 'config.proxies=[{"pattern":"calc","targetUrl":"http://a"}]']), /pattern/)
  t.match(renderFails(['--set-json', 'config.proxies=[{"pattern":"/calc","targetUrl":"ftp://a"}]']), /targetUrl/)
  t.match(renderFails(['--set', 'config.tokens.accessTokenTtl=30']), /accessTokenTtl/)
  t.match(renderFails(['--set', 'config.trustProxy=all']), /trustProxy/)
  t.match(renderFails(['--set', 'config.headersTimeoutMs=40000']), /headersTimeoutMs must not exceed/)
  t.match(renderFails(['--set', 'config.trustProxy=-1']), /trustProxy/)
})

t.test('per-route options and pre-registered clients map to snake_case', async (t) => {
  const proxies = [
    {
      pattern: '/calc/mcp',
      targetUrl: 'http://calc:3000/mcp',
      allowedEmails: ['ana@example.com'],
      allowedDomains: ['example.com'],
      allowedClients: ['ci-bot'],
      upstreamAuth: 'header',
      upstreamHeader: 'X-Api-Key',
      upstreamHeaderEnv: 'CALC_API_KEY',
      scopes: ['mcp'],
      tools: { allow: ['read_*'], deny: ['drop_*'], grants: [{ emails: ['ana@example.com'], allow: ['write_*'] }], requiredScopes: { write_file: ['files.write'] } },
      auditArguments: false,
    },
    { pattern: '/files/mcp', targetUrl: 'http://files:3001/mcp', upstreamAuth: 'provider_token' },
  ]
  const clients = [
    { clientId: 'my-app', clientSecretEnv: 'MY_APP_SECRET', redirectUris: ['https://app.example.com/cb'], clientName: 'My App' },
    { clientId: 'ci-bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'https://ci.example.com/jwks.json', routes: ['/calc/mcp'], scopes: ['mcp'] },
  ]
  const trustedIdps = [{ issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/keys', claims: { tenant: ['acme'] } }]
  const ms = render(['--set-json', `config.proxies=${JSON.stringify(proxies)}`, '--set-json', `config.clients=${JSON.stringify(clients)}`, '--set-json', `config.trustedIdps=${JSON.stringify(trustedIdps)}`])
  t.same(configYaml(ms), {
    proxies: [
      {
        pattern: '/calc/mcp',
        target_url: 'http://calc:3000/mcp',
        allowed_emails: ['ana@example.com'],
        allowed_domains: ['example.com'],
        allowed_clients: ['ci-bot'],
        upstream_auth: 'header',
        upstream_header: 'X-Api-Key',
        upstream_header_env: 'CALC_API_KEY',
        scopes: ['mcp'],
        tools: { allow: ['read_*'], deny: ['drop_*'], grants: [{ emails: ['ana@example.com'], allow: ['write_*'] }], required_scopes: { write_file: ['files.write'] } },
        audit_arguments: false,
      },
      { pattern: '/files/mcp', target_url: 'http://files:3001/mcp', upstream_auth: 'provider_token' },
    ],
    clients: [
      {
        client_id: 'my-app',
        client_secret_env: 'MY_APP_SECRET',
        redirect_uris: ['https://app.example.com/cb'],
        client_name: 'My App',
      },
      { client_id: 'ci-bot', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://ci.example.com/jwks.json', routes: ['/calc/mcp'], scopes: ['mcp'] },
    ],
    trusted_idps: [{ issuer: 'https://idp.example.com', jwks_uri: 'https://idp.example.com/keys', claims: { tenant: ['acme'] } }],
  })
  const proxiesArg = (list: unknown[]) => ['--set-json', `config.proxies=${JSON.stringify(list)}`]
  t.match(renderFails(proxiesArg([{ pattern: '/a/mcp', targetUrl: 'http://a:1/mcp', upstreamAuth: 'header' }])), /needs upstreamHeaderEnv/)
  t.match(renderFails(proxiesArg([{ pattern: '/a/mcp', targetUrl: 'http://a:1/mcp', tools: { grants: [{ emails: ['a@b.c'] }] } }])), /allow/)
  t.match(
    renderFails(proxiesArg([{ pattern: '/a/mcp', targetUrl: 'http://a:1/mcp', upstreamHeaderEnv: 'X' }])),
    /applies only with upstreamAuth: header/
  )
  t.match(renderFails(proxiesArg([{ pattern: '/a/mcp', targetUrl: 'http://a:1/mcp', upstreamHeader: 'X-Token' }])), /upstreamHeader applies only with upstreamAuth: header or provider_token/)
  t.equal(configYaml(render(proxiesArg([{ pattern: '/a/mcp', targetUrl: 'http://a:1/mcp', upstreamAuth: 'provider_token', upstreamHeader: 'X-Google-Token' }]))).proxies[0].upstream_header, 'X-Google-Token')
  // Without upstreamHeader the gateway sends Authorization.
  t.same(configYaml(render(proxiesArg([{ pattern: '/a/mcp', targetUrl: 'http://a:1/mcp', upstreamAuth: 'header', upstreamHeaderEnv: 'A_TOKEN' }]))).proxies, [
    { pattern: '/a/mcp', target_url: 'http://a:1/mcp', upstream_auth: 'header', upstream_header_env: 'A_TOKEN' },
  ])
})

t.test('newer gateway settings reach the environment', async (t) => {
  let env = envOf(
    render([
      '--set-json', 'config.allowedEmails=["ana@example.com","bo@example.com"]',
      '--set', 'config.allowedEmailDomains=example.com',
      '--set', 'config.logLevel=debug',
      '--set', 'config.trustProxy=2',
      '--set', 'config.tokens.accessTokenTtl=600',
      '--set', 'config.tokens.refreshTokenTtl=86400',
      '--set', 'config.tokens.refreshTokenMaxLifetime=604800',
      '--set', 'config.tokens.operatorTokenMaxTtl=3600',
      '--set', 'config.tokens.revocationResyncSeconds=5',
      '--set', 'config.upstreamTimeoutMs=120000',
      '--set', 'config.requestTimeoutMs=60000',
      '--set', 'config.headersTimeoutMs=20000',
      '--set', 'config.keepAliveTimeoutMs=620000',
      '--set', 'config.baseUrl=https://gw.example.com/',
      '--set', 'config.port=9090',
    ])
  )
  t.match(env, {
    ALLOWED_EMAILS: 'ana@example.com,bo@example.com',
    ALLOWED_EMAIL_DOMAINS: 'example.com',
    LOG_LEVEL: 'debug',
    TRUST_PROXY: '2',
    ACCESS_TOKEN_TTL: '600',
    REFRESH_TOKEN_TTL: '86400',
    REFRESH_TOKEN_MAX_LIFETIME: '604800',
    OPERATOR_TOKEN_MAX_TTL: '3600',
    REVOCATION_RESYNC_SECONDS: '5',
    UPSTREAM_TIMEOUT_MS: '120000',
    REQUEST_TIMEOUT_MS: '60000',
    HEADERS_TIMEOUT_MS: '20000',
    KEEP_ALIVE_TIMEOUT_MS: '620000',
    BASE_URL: 'https://gw.example.com',
    PORT: '9090',
  })

  const oidc = render([
    '--set', 'config.oauth.provider=oidc',
    '--set', 'config.oauth.oidc.issuer=https://id.example.com',
    '--set', 'config.oauth.oidc.clientId=cid',
    '--set', 'config.oauth.oidc.clientSecret=csecret',
  ])
  env = envOf(oidc)
  t.match(env, {
    OAUTH_PROVIDER: 'oidc',
    OAUTH_OIDC_ISSUER: 'https://id.example.com',
    OAUTH_OIDC_SCOPES: 'openid,profile,email',
    OAUTH_OIDC_CLIENT_ID: { secretKeyRef: { name: 'my-gateway-mcp-gateway', key: 'oauth-oidc-client-id' } },
    OAUTH_OIDC_CLIENT_SECRET: { secretKeyRef: { key: 'oauth-oidc-client-secret' } },
  })
  t.notOk('OAUTH_GOOGLE_CLIENT_ID' in env)
  t.equal(secretData(one(oidc, 'Secret', 'my-gateway-mcp-gateway'), 'oauth-oidc-client-secret'), 'csecret')
  t.match(notes(['--set', 'config.oauth.provider=oidc', '--set', 'config.oauth.oidc.issuer=https://id.example.com']), /\n\s+http:\/\/localhost:8080\/oauth\/callback/)
  t.match(renderFails(['--set', 'config.oauth.provider=oidc']), /oidc\.issuer is required/)

  env = envOf(render(['--set', 'config.oauth.provider=github', '--set', 'config.oauth.github.clientId=g', '--set', 'config.oauth.github.clientSecret=s']))
  t.match(env, {
    OAUTH_PROVIDER: 'github',
    OAUTH_GITHUB_CLIENT_ID: { secretKeyRef: { key: 'oauth-github-client-id' } },
    OAUTH_GITHUB_CLIENT_SECRET: { secretKeyRef: { key: 'oauth-github-client-secret' } },
  })
})

t.test('existing Secrets replace the generated ones', async (t) => {
  const ms = render(['--set', 'config.oauth.existingSecret=oauth-creds', '--set', 'keys.existingSecret=gw-keys'])
  t.equal(find(ms, 'Secret', 'my-gateway-mcp-gateway').length, 0)
  t.equal(find(ms, 'Secret', 'my-gateway-mcp-gateway-keys').length, 0)
  const env = envOf(ms)
  t.same(env.OAUTH_GOOGLE_CLIENT_ID, { secretKeyRef: { name: 'oauth-creds', key: 'oauth-google-client-id' } })
  t.same(env.OAUTH_GOOGLE_CLIENT_SECRET, { secretKeyRef: { name: 'oauth-creds', key: 'oauth-google-client-secret' } })
  t.same(env.JWT_SIGNING_KEY, { secretKeyRef: { name: 'gw-keys', key: 'jwt-signing-key' } })
  t.same(env.ENCRYPTION_KEY, { secretKeyRef: { name: 'gw-keys', key: 'encryption-key' } })
})

t.test('pod options pass through', async (t) => {
  const values = {
    podAnnotations: { 'example.com/a': 'b' },
    podLabels: { team: 'mcp' },
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoSchedule' }],
    topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'ScheduleAnyway' }],
    extraEnv: [{ name: 'MY_APP_SECRET', valueFrom: { secretKeyRef: { name: 'apps', key: 'my-app' } } }],
    extraEnvFrom: [{ secretRef: { name: 'upstream-keys' } }],
    extraVolumes: [{ name: 'ca', configMap: { name: 'ca-bundle' } }],
    extraVolumeMounts: [{ name: 'ca', mountPath: '/etc/ssl/extra', readOnly: true }],
    imagePullSecrets: [{ name: 'regcred' }],
    serviceAccount: { create: true, name: 'gw', annotations: { 'iam/role': 'r' } },
    service: { type: 'LoadBalancer', port: 80, annotations: { 'lb/x': 'y' } },
  }
  const ms = render(['--set-json', `podAnnotations=${JSON.stringify(values.podAnnotations)}`, ...Object.entries(values).slice(1).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`])])
  const tpl = one(ms, 'Deployment').spec.template
  const c = tpl.spec.containers[0]
  t.equal(tpl.metadata.annotations['example.com/a'], 'b')
  t.ok(tpl.metadata.annotations['checksum/config'], 'checksums kept next to podAnnotations')
  t.equal(tpl.metadata.labels.team, 'mcp')
  t.same(tpl.spec.nodeSelector, values.nodeSelector)
  t.same(tpl.spec.tolerations, values.tolerations)
  t.same(tpl.spec.topologySpreadConstraints, values.topologySpreadConstraints)
  t.same(tpl.spec.imagePullSecrets, values.imagePullSecrets)
  t.same(c.env.at(-1), values.extraEnv[0])
  t.same(c.envFrom, values.extraEnvFrom)
  t.same(tpl.spec.volumes.at(-1), values.extraVolumes[0])
  t.same(c.volumeMounts.at(-1), values.extraVolumeMounts[0])
  t.equal(tpl.spec.serviceAccountName, 'gw')
  t.same(one(ms, 'ServiceAccount', 'gw').metadata.annotations, { 'iam/role': 'r' })
  const svc = one(ms, 'Service', 'my-gateway-mcp-gateway')
  t.equal(svc.spec.type, 'LoadBalancer')
  t.equal(svc.spec.ports[0].port, 80)
  t.same(svc.metadata.annotations, { 'lb/x': 'y' })
})

t.test('names: nameOverride and fullnameOverride', async (t) => {
  t.equal(one(render(['--set', 'fullnameOverride=gw']), 'Deployment').metadata.name, 'gw')
  t.equal(one(render(['--set', 'fullnameOverride=gw']), 'StatefulSet').metadata.name, 'gw-redis')
  // The seed's troubleshooting commands use these names.
  const ms = render(['--set', 'nameOverride=go-mcp-gateway'])
  t.equal(one(ms, 'Deployment').metadata.name, 'my-gateway-go-mcp-gateway')
  t.equal(one(ms, 'ConfigMap').metadata.name, 'my-gateway-go-mcp-gateway')
  t.equal(one(ms, 'StatefulSet').metadata.name, 'my-gateway-go-mcp-gateway-redis')
  t.equal(one(render([], 'mcp-gateway-prod'), 'Deployment').metadata.name, 'mcp-gateway-prod', 'no doubled name')
})

t.test('PodDisruptionBudget, NetworkPolicy and ServiceMonitor', async (t) => {
  t.match(one(render(['--set', 'podDisruptionBudget.minAvailable=2']), 'PodDisruptionBudget').spec, { minAvailable: 2 })
  t.equal(find(render(['--set', 'podDisruptionBudget.enabled=false']), 'PodDisruptionBudget').length, 0)

  const ms = render(['--set', 'networkPolicy.enabled=true', '--set', 'serviceMonitor.enabled=true', '-f', example('multiple-routes')])
  const gw = one(ms, 'NetworkPolicy', 'my-gateway-mcp-gateway')
  t.same(gw.spec.podSelector.matchLabels, one(ms, 'Deployment').spec.selector.matchLabels)
  t.same(gw.spec.policyTypes, ['Ingress', 'Egress'])
  t.same(gw.spec.ingress[0].from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }])
  t.same(gw.spec.ingress[0].ports, [{ protocol: 'TCP', port: 8080 }])
  t.same(gw.spec.ingress[1], { ports: [{ protocol: 'TCP', port: 9464 }], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] }, 'the metrics port from Prometheus only')
  t.notOk(gw.spec.ingress[0].ports.some((p: Manifest) => p.port === 9464), 'not from the Ingress controller')
  const egressPorts = gw.spec.egress.flatMap((r: Manifest) => r.ports.map((p: Manifest) => p.port))
  for (const p of [53, 6379, 443, 3000, 3001, 3002]) t.ok(egressPorts.includes(p), `egress to port ${p}`)
  const toRedis = gw.spec.egress.find((r: Manifest) => r.to)
  t.equal(toRedis.to[0].podSelector.matchLabels['app.kubernetes.io/component'], 'redis', 'as in the seed example')
  const redisNp = one(ms, 'NetworkPolicy', 'my-gateway-mcp-gateway-redis')
  t.same(redisNp.spec.ingress[0].from[0].podSelector.matchLabels, gw.spec.podSelector.matchLabels)

  const sm = one(ms, 'ServiceMonitor')
  t.equal(sm.apiVersion, 'monitoring.coreos.com/v1')
  t.same(sm.spec.endpoints, [{ port: 'metrics', path: '/metrics', interval: '30s' }])
  t.same(sm.spec.selector.matchLabels, one(ms, 'Service', 'my-gateway-mcp-gateway').spec.selector)

  // metricsPort 0: the seed's layout, /metrics on the http port.
  const seed = render(['--set', 'networkPolicy.enabled=true', '--set', 'serviceMonitor.enabled=true', '--set', 'config.metricsPort=0'])
  t.same(one(seed, 'ServiceMonitor').spec.endpoints, [{ port: 'http', path: '/metrics', interval: '30s' }])
  t.same(one(seed, 'Service', 'my-gateway-mcp-gateway').spec.ports.map((p: Manifest) => p.name), ['http'])
  t.notOk('METRICS_PORT' in envOf(seed))
  t.same(one(seed, 'NetworkPolicy', 'my-gateway-mcp-gateway').spec.ingress.flatMap((r: Manifest) => r.ports.map((p: Manifest) => p.port)), [8080, 8080])

  const ext = one(render(['--set', 'networkPolicy.enabled=true', '-f', example('external-redis')]), 'NetworkPolicy')
  t.ok(ext.spec.egress.some((r: Manifest) => !r.to && r.ports.some((p: Manifest) => p.port === 6379)), 'egress to external Redis')
})

t.test('chart metadata', async (t) => {
  const meta = parse(readFileSync(path.join(chart, 'Chart.yaml'), 'utf8'))
  t.equal(meta.name, 'mcp-gateway')
  t.equal(meta.appVersion, '0.1.0')
  t.equal(meta.apiVersion, 'v2')
})

t.test('redis.architecture: replication renders Sentinel-watched Redis and points the gateway at it', async (t) => {
  const ms = render(['-f', example('redis-replication')])
  const name = 'my-gateway-mcp-gateway-redis'
  const sts = one(ms, 'StatefulSet', name)
  const pod = sts.spec.template.spec
  t.equal(sts.spec.replicas, 3, 'a master and two replicas')
  t.same(pod.containers.map((c: Manifest) => c.name), ['redis', 'sentinel'], 'a Sentinel beside each node')
  t.same(pod.containers.map((c: Manifest) => c.ports[0].containerPort), [6379, 26379])
  for (const c of pod.containers) {
    t.match(c.securityContext, { readOnlyRootFilesystem: true, runAsNonRoot: true })
    t.match(c.env, [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name, key: 'redis-password' } } }, { name: 'REDISCLI_AUTH' }])
  }
  t.same(sts.spec.volumeClaimTemplates[0].spec.resources.requests, { storage: '10Gi' }, 'AOF on each node\'s own claim')
  const term = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm
  t.same(term.labelSelector.matchLabels, sts.spec.selector.matchLabels, 'anti-affinity between the Redis pods')
  t.equal(term.topologyKey, 'kubernetes.io/hostname')
  const hard = one(render(['-f', example('redis-replication'), '--set', 'redis.replication.podAntiAffinity=hard']), 'StatefulSet', name)
  t.ok(hard.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, 'hard anti-affinity on request')

  const pdb = one(ms, 'PodDisruptionBudget', name)
  t.same(pdb.spec, { maxUnavailable: 1, selector: { matchLabels: sts.spec.selector.matchLabels } }, 'drains take one Redis node at a time')
  const scripts = one(ms, 'ConfigMap', `${name}-scripts`).data
  t.match(scripts['sentinel.sh'], /sentinel monitor mymaster \$master 6379 2/)
  t.match(scripts['sentinel.sh'], /down-after-milliseconds mymaster 5000/)
  t.match(scripts['redis.sh'], /--appendonly yes/)
  t.match(scripts['redis.sh'], /--masterauth "\$REDIS_PASSWORD"/, 'replicas authenticate to the master')
  t.match(scripts['find-master.sh'], /sentinel get-master-addr-by-name "mymaster"/, 'a restarting pod asks the sentinels for the master')
  t.equal(find(ms, 'Service', name).length, 0, 'no load-balanced Service that could send a write to a replica')
  t.same(one(ms, 'Service', `${name}-headless`).spec.ports.map((p: Manifest) => p.port), [6379, 26379])

  const env = envOf(ms)
  const sentinels = [0, 1, 2].map(i => `${name}-${i}.${name}-headless.mcp.svc:26379`).join(',')
  t.equal(env.REDIS_SENTINELS, sentinels, 'the gateway finds every sentinel by its stable name')
  t.equal(env.REDIS_SENTINEL_MASTER, 'mymaster')
  t.same(env.REDIS_SENTINEL_PASSWORD, { secretKeyRef: { name, key: 'redis-password' } })
  t.same(env.REDIS_PASSWORD, { secretKeyRef: { name, key: 'redis-password' } })
  t.equal(env.REDIS_WAIT_REPLICAS, '1')
  t.equal(env.REDIS_WAIT_TIMEOUT_MS, '500')
  t.notOk('REDIS_ADDR' in env, 'no standalone address beside the sentinels')

  const np = render(['-f', example('redis-replication'), '--set', 'networkPolicy.enabled=true'])
  const redisNp = one(np, 'NetworkPolicy', name)
  t.same(redisNp.spec.ingress[0].ports.map((p: Manifest) => p.port), [6379, 26379])
  t.same(redisNp.spec.ingress[0].from[1].podSelector.matchLabels, sts.spec.selector.matchLabels, 'Redis pods reach each other (replication, sentinel gossip)')
  const toRedis = one(np, 'NetworkPolicy', 'my-gateway-mcp-gateway').spec.egress.find((r: Manifest) => r.to)
  t.same(toRedis.ports.map((p: Manifest) => p.port), [6379, 26379], 'the gateway reaches data nodes and sentinels')

  t.match(renderFails(['--set', 'redis.architecture=replication', '--set', 'redis.replication.replicas=2']), /replicas/, 'fewer than 3 nodes is refused')
  t.match(renderFails(['--set', 'redis.architecture=cluster']), /architecture/, 'an unknown architecture is refused')
  t.match(renderFails(['--set', 'redis.architecture=replication', '--set', 'redis.replication.sentinel.quorum=4']), /quorum/)
})

t.test('external Sentinel and Cluster values', async (t) => {
  let ms = render(['-f', example('redis-external-sentinel')])
  let env = envOf(ms)
  t.equal(env.REDIS_SENTINELS, 'sentinel-0.example.net:26379,sentinel-1.example.net:26379,sentinel-2.example.net:26379')
  t.equal(env.REDIS_SENTINEL_MASTER, 'gateway')
  t.same(env.REDIS_PASSWORD, { secretKeyRef: { name: 'redis-credentials', key: 'password' } })
  t.notOk('REDIS_ADDR' in env)
  t.notOk('REDIS_SENTINEL_PASSWORD' in env, 'sentinels without a password of their own')
  t.equal(env.REDIS_WAIT_REPLICAS, '1')
  t.equal(find(ms, 'StatefulSet').length, 0, 'no built-in Redis')
  env = envOf(render(['-f', example('redis-external-sentinel'), '--set', 'redis.external.sentinelExistingSecret=sentinel-pw']))
  t.same(env.REDIS_SENTINEL_PASSWORD, { secretKeyRef: { name: 'sentinel-pw', key: 'sentinel-password' } })

  ms = render(['-f', example('redis-external-cluster'), '--set', 'networkPolicy.enabled=true'])
  env = envOf(ms)
  t.equal(env.REDIS_CLUSTER_NODES, 'redis-0.example.net:6379,redis-1.example.net:6379,redis-2.example.net:6379')
  t.equal(env.REDIS_TLS, 'true')
  t.notOk('REDIS_ADDR' in env)
  t.equal(envOf(render(['-f', example('redis-external-cluster'), '--set', 'redis.wait.replicas=0'])).REDIS_WAIT_REPLICAS, '0')
  const listed = envOf(render(['--set', 'redis.external.enabled=true', '--set', 'redis.external.clusterNodes={a:7000,b:7001}', '--set', 'networkPolicy.enabled=true']))
  t.equal(listed.REDIS_CLUSTER_NODES, 'a:7000,b:7001', 'a list works too')
  const egress = one(render(['--set', 'redis.external.enabled=true', '--set', 'redis.external.clusterNodes={a:7000,b:7001}', '--set', 'networkPolicy.enabled=true']), 'NetworkPolicy').spec.egress
  for (const port of [7000, 7001]) t.ok(egress.some((r: Manifest) => r.ports.some((p: Manifest) => p.port === port)), `egress to cluster port ${port}`)

  t.match(renderFails(['-f', example('redis-external-sentinel'), '--set', 'redis.external.clusterNodes=a:1']), /exclude each other/)
  t.match(renderFails(['--set', 'redis.external.enabled=true', '--set', 'redis.external.sentinels=a:26379']), /sentinelMasterName is required/)
  t.match(renderFails(['--set', 'redis.external.enabled=true', '--set', 'redis.external.sentinels=nohost']), /sentinels/, 'host:port is checked')
})

t.test('standalone modes get no Sentinel, Cluster or WAIT settings (the seed examples mean what they meant)', async (t) => {
  for (const args of [[], ['-f', example('high-availability')], ['-f', example('external-redis')], ['-f', example('production')]]) {
    const env = envOf(render(args))
    for (const v of ['REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER', 'REDIS_CLUSTER_NODES', 'REDIS_WAIT_REPLICAS', 'REDIS_WAIT_TIMEOUT_MS']) {
      t.notOk(v in env, `${args.join(' ') || 'defaults'}: no ${v}`)
    }
    t.ok('REDIS_ADDR' in env, 'REDIS_ADDR as before')
  }
})
