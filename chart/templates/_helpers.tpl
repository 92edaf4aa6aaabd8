{{/* Chart name, or nameOverride. */}}
{{- define "mcp-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name used as the prefix of every resource. Truncated to 63 characters because some
Kubernetes name fields are limited to that (DNS-1123 labels).
*/}}
{{- define "mcp-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mcp-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every resource. */}}
{{- define "mcp-gateway.labels" -}}
helm.sh/chart: {{ include "mcp-gateway.chart" . }}
{{ include "mcp-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mcp-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The gateway and Redis share name and instance labels; the component label keeps their
selectors apart (and matches the seed's NetworkPolicy example, which selects component: redis).
*/}}
{{- define "mcp-gateway.gatewaySelectorLabels" -}}
{{ include "mcp-gateway.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "mcp-gateway.redisSelectorLabels" -}}
{{ include "mcp-gateway.selectorLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "mcp-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mcp-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mcp-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) }}
{{- end }}

{{/* Secret names. */}}
{{- define "mcp-gateway.oauthSecretName" -}}
{{- default (include "mcp-gateway.fullname" .) .Values.config.oauth.existingSecret }}
{{- end }}

{{- define "mcp-gateway.keysSecretName" -}}
{{- default (printf "%s-keys" (include "mcp-gateway.fullname" .)) .Values.keys.existingSecret }}
{{- end }}

{{- define "mcp-gateway.redisFullname" -}}
{{- printf "%s-redis" (include "mcp-gateway.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/*
Which Redis the gateway uses: "external", "builtin" or "none" (in-memory store).
The seed's "Using External Redis" example sets redis.enabled and redis.external.enabled both
true and means the external one, so external wins.
*/}}
{{- define "mcp-gateway.redisMode" -}}
{{- if .Values.redis.external.enabled }}external
{{- else if .Values.redis.enabled }}builtin
{{- else }}none
{{- end }}
{{- end }}

{{/* The built-in Redis as a master with replicas, Sentinel beside each node ("true" or ""). */}}
{{- define "mcp-gateway.redisReplication" -}}
{{- if and (eq (include "mcp-gateway.redisMode" .) "builtin") (eq .Values.redis.architecture "replication") }}true{{ end }}
{{- end }}

{{/* The built-in sentinels: each Redis pod's stable DNS name, port 26379 (REDIS_SENTINELS). */}}
{{- define "mcp-gateway.redisSentinels" -}}
{{- $name := include "mcp-gateway.redisFullname" . }}
{{- $list := list }}
{{- range $i := until (int .Values.redis.replication.replicas) }}
{{- $list = append $list (printf "%s-%d.%s-headless.%s.svc:26379" $name $i $name $.Release.Namespace) }}
{{- end }}
{{- join "," $list }}
{{- end }}

{{/* Whether the gateway talks to Sentinel or a Cluster, where grant-bearing writes wait for a replica. */}}
{{- define "mcp-gateway.redisReplicated" -}}
{{- $x := .Values.redis.external }}
{{- if include "mcp-gateway.redisReplication" . }}true
{{- else if and (eq (include "mcp-gateway.redisMode" .) "external") (or $x.sentinels $x.clusterNodes) }}true
{{- end }}
{{- end }}

{{/* Whether the gateway gets a Redis password, and where it lives. */}}
{{- define "mcp-gateway.redisPasswordSecretName" -}}
{{- $mode := include "mcp-gateway.redisMode" . }}
{{- if eq $mode "external" }}
{{- if .Values.redis.external.existingSecret }}{{ .Values.redis.external.existingSecret }}
{{- else if .Values.redis.external.password }}{{ include "mcp-gateway.redisFullname" . }}
{{- end }}
{{- else if and (eq $mode "builtin") .Values.redis.auth.enabled }}
{{- default (include "mcp-gateway.redisFullname" .) .Values.redis.auth.existingSecret }}
{{- end }}
{{- end }}

{{- define "mcp-gateway.redisPasswordSecretKey" -}}
{{- $mode := include "mcp-gateway.redisMode" . }}
{{- if and (eq $mode "external") .Values.redis.external.existingSecret }}
{{- .Values.redis.external.existingSecretPasswordKey }}
{{- else if and (eq $mode "builtin") .Values.redis.auth.existingSecret }}
{{- .Values.redis.auth.existingSecretPasswordKey }}
{{- else }}redis-password
{{- end }}
{{- end }}

{{/* Whether this chart renders the Secret <fullname>-redis itself. */}}
{{- define "mcp-gateway.redisSecretCreated" -}}
{{- $mode := include "mcp-gateway.redisMode" . }}
{{- if and (eq $mode "external") (not .Values.redis.external.existingSecret) .Values.redis.external.password }}true
{{- else if and (eq $mode "builtin") .Values.redis.auth.enabled (not .Values.redis.auth.existingSecret) }}true
{{- end }}
{{- end }}

{{/* A list value that may also be given as a comma-separated string (convenient with --set). */}}
{{- define "mcp-gateway.csv" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ join "," (default list .) }}{{ end }}
{{- end }}

{{/*
config.yaml for the gateway. Values use the seed's camelCase keys; the gateway reads snake_case.
Built as data and serialised with toYaml so any string is quoted correctly.
*/}}
{{- define "mcp-gateway.configYaml" -}}
{{- $proxies := list }}
{{- range $i, $p := .Values.config.proxies }}
{{- $r := dict "pattern" $p.pattern "target_url" $p.targetUrl }}
{{- with $p.allowedEmails }}{{ $_ := set $r "allowed_emails" . }}{{ end }}
{{- with $p.allowedDomains }}{{ $_ := set $r "allowed_domains" . }}{{ end }}
{{- with $p.allowedClients }}{{ $_ := set $r "allowed_clients" . }}{{ end }}
{{- with $p.upstreamAuth }}{{ $_ := set $r "upstream_auth" . }}{{ end }}
{{- with $p.upstreamHeader }}{{ $_ := set $r "upstream_header" . }}{{ end }}
{{- with $p.upstreamHeaderEnv }}{{ $_ := set $r "upstream_header_env" . }}{{ end }}
{{- with $p.scopes }}{{ $_ := set $r "scopes" . }}{{ end }}
{{- with $p.tools }}
{{- $t := omit . "requiredScopes" }}
{{- with .requiredScopes }}{{ $_ := set $t "required_scopes" . }}{{ end }}
{{- $_ := set $r "tools" $t }}
{{- end }}
{{- if hasKey $p "auditArguments" }}{{ $_ := set $r "audit_arguments" $p.auditArguments }}{{ end }}
{{- /* Fail at install rather than at gateway start-up, which rejects the same mistakes. */}}
{{- if eq (default "none" $p.upstreamAuth) "header" }}
{{- if not $p.upstreamHeaderEnv }}
{{- fail (printf "config.proxies[%d] (%s): upstreamAuth header needs upstreamHeaderEnv (the env var holding the value; set it with extraEnv)" $i $p.pattern) }}
{{- end }}
{{- else if $p.upstreamHeaderEnv }}
{{- fail (printf "config.proxies[%d] (%s): upstreamHeaderEnv applies only with upstreamAuth: header" $i $p.pattern) }}
{{- else if and $p.upstreamHeader (ne (default "none" $p.upstreamAuth) "provider_token") }}
{{- fail (printf "config.proxies[%d] (%s): upstreamHeader applies only with upstreamAuth: header or provider_token" $i $p.pattern) }}
{{- end }}
{{- $proxies = append $proxies $r }}
{{- end }}
{{- $clients := list }}
{{- range .Values.config.clients }}
{{- $c := dict "client_id" .clientId }}
{{- with .redirectUris }}{{ $_ := set $c "redirect_uris" . }}{{ end }}
{{- with .clientName }}{{ $_ := set $c "client_name" . }}{{ end }}
{{- with .clientSecretEnv }}{{ $_ := set $c "client_secret_env" . }}{{ end }}
{{- with .grantTypes }}{{ $_ := set $c "grant_types" . }}{{ end }}
{{- with .tokenEndpointAuthMethod }}{{ $_ := set $c "token_endpoint_auth_method" . }}{{ end }}
{{- with .jwks }}{{ $_ := set $c "jwks" . }}{{ end }}
{{- with .jwksUri }}{{ $_ := set $c "jwks_uri" . }}{{ end }}
{{- with .routes }}{{ $_ := set $c "routes" . }}{{ end }}
{{- with .scopes }}{{ $_ := set $c "scopes" . }}{{ end }}
{{- $clients = append $clients $c }}
{{- end }}
{{- $idps := list }}
{{- range .Values.config.trustedIdps }}
{{- $i := dict "issuer" .issuer "jwks_uri" .jwksUri }}
{{- with .claims }}{{ $_ := set $i "claims" . }}{{ end }}
{{- $idps = append $idps $i }}
{{- end }}
{{- $doc := dict "proxies" $proxies }}
{{- if $clients }}{{ $_ := set $doc "clients" $clients }}{{ end }}
{{- if $idps }}{{ $_ := set $doc "trusted_idps" $idps }}{{ end }}
{{- toYaml $doc }}
{{- end }}
