{{/* The chart's name, at most 63 characters (a DNS label). */}}
{{- define "realmgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's resource name: the release name, with the chart name unless it already holds it. */}}
{{- define "realmgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "realmgate.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "realmgate.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "realmgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "realmgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "realmgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "realmgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "realmgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "realmgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret read into the environment: the user's, or the chart's. */}}
{{- define "realmgate.secretName" -}}
{{- default (include "realmgate.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* The fewest instances running at once: what a PodDisruptionBudget can keep. */}}
{{- define "realmgate.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.minReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}

{{/*
Checks the values that would make a deployment that cannot work, failing the
render with a message instead.
*/}}
{{- define "realmgate.validate" -}}
{{- $mode := .Values.redis.mode }}
{{- if eq .Values.store.type "redis" }}
{{- $n := len .Values.redis.addrs }}
{{- if not (has $mode (list "standalone" "sentinel" "cluster")) }}
{{- fail (printf "redis.mode must be standalone, sentinel or cluster, got %q" $mode) }}
{{- end }}
{{- if eq $n 0 }}
{{- fail "redis.addrs: at least one host:port is required" }}
{{- end }}
{{- if and (eq $mode "standalone") (gt $n 1) }}
{{- fail "redis.addrs: standalone mode takes one address (several addresses are a cluster: set redis.mode=cluster)" }}
{{- end }}
{{- if and (eq $mode "sentinel") (not .Values.redis.masterName) }}
{{- fail "redis.masterName is required with redis.mode=sentinel" }}
{{- end }}
{{- if and (eq $mode "cluster") (lt $n 2) }}
{{- fail "redis.addrs: cluster mode needs two or more node addresses (one address is read as a standalone server)" }}
{{- end }}
{{- if and (eq $mode "cluster") (ne (int .Values.redis.db) 0) }}
{{- fail "redis.db: a Redis Cluster has only db 0" }}
{{- end }}
{{- else if eq .Values.store.type "memory" }}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}
{{- fail "store.type=memory keeps sessions in one process: set replicaCount=1 and autoscaling.enabled=false, or use redis" }}
{{- end }}
{{- else }}
{{- fail (printf "store.type must be redis or memory, got %q" .Values.store.type) }}
{{- end }}
{{- if and (not .Values.secret.existingSecret) (not .Values.secret.keysSecret) }}
{{- fail "secret.keysSecret (keys.secret: 32+ random characters, e.g. openssl rand -base64 32) or secret.existingSecret is required" }}
{{- end }}
{{- range $k, $_ := .Values.secret.env }}
{{- if not (regexMatch "^[A-Za-z_][A-Za-z0-9_]*$" $k) }}
{{- fail (printf "secret.env: %q is not an environment variable name (letters, digits, _)" $k) }}
{{- end }}
{{- end }}
{{- if and .Values.redis.auth (not .Values.secret.existingSecret) (not .Values.secret.redisPassword) (not .Values.extraEnv) }}
{{- fail "redis.auth needs secret.redisPassword, a REALMGATE_REDIS_PASSWORD key in secret.existingSecret, or extraEnv" }}
{{- end }}
{{- end }}

{{/*
The configuration file: .Values.config with the keys the chart owns set
(listen, admin_api.listen, ops.listen on the container ports; store.type and
store.redis addrs, master_name, username, password, db; keys.secret from the
environment). Other keys under ops, admin_api, keys and store.redis (TLS
settings, for one) are kept. Secrets stay ${VAR} references, expanded by
realmgate when it loads the file.
*/}}
{{- define "realmgate.config" -}}
{{- $cfg := deepCopy (default (dict) .Values.config) }}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int .Values.ports.http)) }}
{{- $ops := default (dict) (get $cfg "ops") }}
{{- $_ = set $ops "listen" (printf "0.0.0.0:%d" (int .Values.ports.ops)) }}
{{- $_ = set $cfg "ops" $ops }}
{{- if .Values.adminAPI.enabled }}
{{- $admin := default (dict) (get $cfg "admin_api") }}
{{- $_ = set $admin "listen" (printf "0.0.0.0:%d" (int .Values.ports.admin)) }}
{{- $_ = set $cfg "admin_api" $admin }}
{{- end }}
{{- $keys := default (dict) (get $cfg "keys") }}
{{- $_ = set $keys "secret" "${REALMGATE_SECRET}" }}
{{- $_ = set $cfg "keys" $keys }}
{{- if eq .Values.store.type "redis" }}
{{- $store := default (dict) (get $cfg "store") }}
{{- $r := default (dict) (get $store "redis") }}
{{- $_ = set $r "addrs" .Values.redis.addrs }}
{{- if eq .Values.redis.mode "sentinel" }}
{{- $_ = set $r "master_name" .Values.redis.masterName }}
{{- else }}
{{- $_ = unset $r "master_name" }}
{{- end }}
{{- with .Values.redis.username }}
{{- $_ = set $r "username" . }}
{{- end }}
{{- if .Values.redis.auth }}
{{- $_ = set $r "password" "${REALMGATE_REDIS_PASSWORD}" }}
{{- end }}
{{- if .Values.redis.db }}
{{- $_ = set $r "db" (int .Values.redis.db) }}
{{- end }}
{{- $_ = set $store "type" "redis" }}
{{- $_ = set $store "redis" $r }}
{{- $_ = set $cfg "store" $store }}
{{- else }}
{{- $_ = set $cfg "store" (dict "type" "memory") }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}
