{{/* The release's base name: the release name, or "<release>-leadrelay". */}}
{{- define "leadrelay.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "leadrelay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one role; call with (dict "root" $ "role" "intake"). */}}
{{- define "leadrelay.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/* The Secret the pods read. */}}
{{- define "leadrelay.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "leadrelay.fullname" .) -}}
{{- end -}}

{{/*
The plain LEADRELAY_* settings of one role as env entries: .Values.config,
then the role's own config over it. Settings the chart sets itself and
secrets are refused, so that a value never lands in the wrong place.
*/}}
{{- define "leadrelay.configEnv" -}}
{{- $cfg := merge (deepCopy .roleConfig) (deepCopy .root.Values.config) -}}
{{- $managed := list "LEADRELAY_HTTP_ADDR" "LEADRELAY_OPS_ADDR" "LEADRELAY_OPS_HOSTS" "LEADRELAY_SHUTDOWN_TIMEOUT" -}}
{{- $secret := list "LEADRELAY_REDIS_URL" "LEADRELAY_SITES" "LEADRELAY_SITE_SECRETS" "LEADRELAY_UI_PASSWORD" "LEADRELAY_CRM_APIKEY" "LEADRELAY_CRM_APIKEY_FILE" "LEADRELAY_DATA_KEYS" "LEADRELAY_DATA_KEYS_FILE" "LEADRELAY_NOTIFY_URL" -}}
{{- range $name := keys $cfg | sortAlpha }}
{{- if not (hasPrefix "LEADRELAY_" $name) }}
{{- fail (printf "config: %s is not a LeadRelay setting (LEADRELAY_*)" $name) }}
{{- end }}
{{- if has $name $managed }}
{{- fail (printf "config: %s is set by the chart (ports, opsHosts, shutdownTimeoutSeconds); remove it" $name) }}
{{- end }}
{{- if has $name $secret }}
{{- fail (printf "config: %s is a secret; it comes from the Secret (see secrets in values.yaml)" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ index $cfg $name | toString | quote }}
{{- end }}
- name: LEADRELAY_HTTP_ADDR
  value: {{ printf ":%d" (int .root.Values.ports.http) | quote }}
- name: LEADRELAY_OPS_ADDR
  value: {{ printf ":%d" (int .root.Values.ports.ops) | quote }}
- name: LEADRELAY_SHUTDOWN_TIMEOUT
  value: {{ printf "%ds" (int .root.Values.shutdownTimeoutSeconds) | quote }}
{{- end -}}

{{/* One env entry from a key of the Secret; optional keys may be absent. */}}
{{- define "leadrelay.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "leadrelay.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* What every pod of the release shares: no API token; no service links
(variables named after each Service, <SERVICE>_PORT and the like, which for
a release named leadrelay look like settings LeadRelay does not know and
warns about); the image's non-root user. */}}
{{- define "leadrelay.podCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* The container's own restrictions. */}}
{{- define "leadrelay.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{/* Ports and probes of a LeadRelay container: /healthz says the process
lives, /readyz that it can do its work (Redis answers; for a worker, the CRM
has no configuration problem). */}}
{{- define "leadrelay.portsAndProbes" -}}
ports:
  - name: http
    containerPort: {{ .Values.ports.http }}
    protocol: TCP
  - name: ops
    containerPort: {{ .Values.ports.ops }}
    protocol: TCP
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/* The image reference. */}}
{{- define "leadrelay.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* A pod's annotations: the created Secret's digest, so that a changed
secret rolls the pods, and the role's own. */}}
{{- define "leadrelay.podAnnotations" -}}
{{- $a := deepCopy (.extra | default dict) -}}
{{- if not .root.Values.secrets.existingSecret -}}
{{- $_ := set $a "checksum/secret" (include (print .root.Template.BasePath "/secret.yaml") .root | sha256sum) -}}
{{- end -}}
{{- if $a }}{{ toYaml $a }}{{ end -}}
{{- end -}}
