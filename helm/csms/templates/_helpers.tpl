{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "csms.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "csms.fullname" -}}
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

{{- define "csms.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "csms.labels" -}}
helm.sh/chart: {{ include "csms.chart" . }}
{{ include "csms.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: csms
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "csms.selectorLabels" -}}
app.kubernetes.io/name: {{ include "csms.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "csms.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "csms.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "csms.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for whatever is not taken from an existingSecret. */}}
{{- define "csms.secretName" -}}
{{- include "csms.fullname" . }}
{{- end }}

{{/* True (non-empty) when the chart must create its own Secret. */}}
{{- define "csms.needsSecret" -}}
{{- if or (not .Values.database.existingSecret) (not .Values.internalSecret.existingSecret) (and .Values.apiTokens.tokens (not .Values.apiTokens.existingSecret)) (and .Values.etcd.password (not .Values.etcd.existingSecret)) .Values.exportWebhook.secret }}true{{- end }}
{{- end }}

{{/*
The grace period covers the preStop sleep, then the whole drain, then a margin. A smaller override is refused so a drain is never cut short by SIGKILL.
*/}}
{{- define "csms.terminationGracePeriodSeconds" -}}
{{- $minimum := add .Values.lifecycle.preStopSleepSeconds (int (ceil .Values.config.drainTimeout)) }}
{{- $override := .Values.lifecycle.terminationGracePeriodSeconds }}
{{- if $override }}
{{- if le (int $override) (int $minimum) }}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.drainTimeout (%d)" (int $override) (int $minimum)) }}
{{- end }}
{{- int $override }}
{{- else }}
{{- add $minimum .Values.lifecycle.terminationGraceMarginSeconds }}
{{- end }}
{{- end }}

{{/* Validations that a JSON schema cannot express. */}}
{{- define "csms.validate" -}}
{{- if and (not .Values.database.url) (not .Values.database.existingSecret) }}
{{- fail "set database.url or database.existingSecret: the replicas need an external Postgres" }}
{{- end }}
{{- if and (not (include "csms.etcdEndpoints" .)) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "no etcd: set etcd.endpoints (external) or etcd.embedded.enabled=true; more than one replica needs etcd to coordinate" }}
{{- end }}
{{- if and (include "csms.etcdEmbedded" .) (or .Values.etcd.username .Values.etcd.password .Values.etcd.existingSecret .Values.etcd.ca.secretName) }}
{{- fail "etcd.username, etcd.password, etcd.existingSecret and etcd.ca are for external etcd: set etcd.endpoints too" }}
{{- end }}
{{- if and (not .Values.internalSecret.value) (not .Values.internalSecret.existingSecret) }}
{{- fail "set internalSecret.existingSecret (a Secret you manage) or internalSecret.value (e.g. --set internalSecret.value=$(openssl rand -hex 32)): the chart never generates it, so every render (helm template, GitOps) gives the same Secret" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set maxUnavailable or minAvailable, not both" }}
{{- end }}
{{- if and .Values.etcd.existingSecretUsernameKey (not .Values.etcd.existingSecret) }}
{{- fail "etcd.existingSecretUsernameKey needs etcd.existingSecret" }}
{{- end }}
{{- end }}

{{/* The chart's own etcd runs when no external endpoints are given (and it is not switched off). */}}
{{- define "csms.etcdEmbedded" -}}
{{- if and (not .Values.etcd.endpoints) .Values.etcd.embedded.enabled }}true{{- end }}
{{- end }}

{{- define "csms.etcdName" -}}
{{- printf "%s-etcd" (include "csms.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Member i's stable DNS name behind the headless Service. */}}
{{- define "csms.etcdMemberHost" -}}
{{- $name := include "csms.etcdName" .root }}
{{- printf "%s-%d.%s.%s.svc" $name (int .index) $name .root.Release.Namespace }}
{{- end }}

{{/* CSMS_ETCD_ENDPOINTS: the external endpoints, else every in-chart member (the client fails over between them). */}}
{{- define "csms.etcdEndpoints" -}}
{{- if .Values.etcd.endpoints }}
{{- join "," .Values.etcd.endpoints }}
{{- else if include "csms.etcdEmbedded" . }}
{{- $urls := list }}
{{- range $i := until (int .Values.etcd.embedded.replicas) }}
{{- $urls = append $urls (printf "http://%s:2379" (include "csms.etcdMemberHost" (dict "root" $ "index" $i))) }}
{{- end }}
{{- join "," $urls }}
{{- end }}
{{- end }}

{{- define "csms.etcdSelectorLabels" -}}
{{ include "csms.selectorLabels" . }}
app.kubernetes.io/component: etcd
{{- end }}
