{{/* Names and labels shared by the templates. */}}

{{- define "taskhost.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's resource name: <release>-taskhost, or the release name when it already says taskhost. */}}
{{- define "taskhost.fullname" -}}
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

{{- define "taskhost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskhost.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "taskhost.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "taskhost.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: taskhost
{{- end }}

{{- define "taskhost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "taskhost.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "taskhost.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The ConfigMap mounted as the components directory (components.source = configMap). */}}
{{- define "taskhost.componentsConfigMap" -}}
{{- default (printf "%s-components" (include "taskhost.fullname" .)) .Values.components.configMap.name }}
{{- end }}

{{/* Where the host loads components from, by components.source. */}}
{{- define "taskhost.componentsDir" -}}
{{- if eq .Values.components.source "configMap" }}/var/lib/taskhost/components{{ else }}/opt/taskhost/components{{ end }}
{{- end }}

{{/* The sidecar's environment (dapr.io/env): what deploy/dapr/pubsub-kafka*.yaml read through envRef. */}}
{{- define "taskhost.sidecarEnv" -}}
TASKHOST_KAFKA_BROKERS={{ .Values.kafka.brokers }}
{{- with .Values.kafka.protocolVersion }},TASKHOST_KAFKA_VERSION={{ . }}{{ end }}
{{- end }}
