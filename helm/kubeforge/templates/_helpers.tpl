{{/* The chart name, cut to 63 characters. */}}
{{- define "kubeforge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The resource-name prefix: release-chart unless the release name already holds the chart name; cut to 63. */}}
{{- define "kubeforge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "kubeforge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "kubeforge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubeforge
{{- end -}}

{{/* Selector labels of one component (pass a dict with root and component). */}}
{{- define "kubeforge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeforge.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The pinned image: the tag defaults to the chart's appVersion (the kubeforge package version). */}}
{{- define "kubeforge.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "kubeforge.schedulerServiceAccount" -}}
{{- printf "%s-scheduler" (include "kubeforge.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubeforge.pipelineServiceAccount" -}}
{{- printf "%s-pipeline" (include "kubeforge.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Pod-level security: non-root, a fixed UID/GID, seccomp RuntimeDefault. */}}
{{/* The store URL (with its password) as a file from the existing Secret, read with --store-file:
never an argument (visible in the process list) nor an environment variable (inherited by children). */}}
{{- define "kubeforge.storeUrlVolume" -}}
- name: store-url
  secret:
    secretName: {{ .Values.postgres.existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ .Values.postgres.urlKey }}, path: url}
{{- end -}}

{{- define "kubeforge.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security: read-only root filesystem, no privilege escalation, no capabilities. */}}
{{- define "kubeforge.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment shared by the scheduler API and dispatcher. */}}
{{- define "kubeforge.schedulerEnv" -}}
- name: KUBEFORGE_ARTIFACT_ROOT
  value: {{ .Values.artifactRoot | quote }}
- name: KUBEFORGE_PIPELINE_SERVICE_ACCOUNT
  value: {{ include "kubeforge.pipelineServiceAccount" . }}
- name: KUBEFORGE_GPU_TOLERATION
  value: {{ .Values.gpu.toleration | toJson | quote }}
- name: KUBEFORGE_HOME
  value: /var/lib/kubeforge
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}
