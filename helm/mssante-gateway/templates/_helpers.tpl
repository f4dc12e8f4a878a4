{{- define "mssgw.name" -}}{{ .Release.Name }}-mssgw{{- end -}}
{{- define "mssgw.labels" -}}
app.kubernetes.io/name: mssante-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- /* The bundled PostgreSQL (postgres.bundled, trials only): its objects' name, the host the services reach it by
       (the Service's name in the release's namespace, which its certificate names), and the files of its Secret in
       the services' /run/secrets/mssgw (names of their own: no clash with the store Secret's). */}}
{{- define "mssgw.postgres.name" -}}{{ include "mssgw.name" . }}-postgres{{- end -}}
{{- define "mssgw.postgres.host" -}}{{ include "mssgw.postgres.name" . }}.{{ .Release.Namespace }}.svc{{- end -}}
{{- define "mssgw.postgres.passwordFile" -}}bundled-postgres-password{{- end -}}
{{- define "mssgw.postgres.caFile" -}}bundled-postgres-ca.pem{{- end -}}
{{- /* The gateway's pods: one component per service (the bundled PostgreSQL's pod is not one of them). */}}
{{- define "mssgw.gatewayPods" -}}
matchLabels:
  app.kubernetes.io/instance: {{ .Release.Name }}
matchExpressions:
  - { key: app.kubernetes.io/component, operator: In, values: [{{ keys .Values.services | sortAlpha | join ", " }}] }
{{- end -}}
{{- /* The configuration file: config as given, except that a bundled PostgreSQL replaces where the store is and how
       it is reached (verify-full, with its Secret's CA and password). */}}
{{- define "mssgw.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if .Values.postgres.bundled.enabled }}
{{- $pg := default (dict) $config.postgres }}
{{- $_ := set $pg "url" (printf "postgres://mssgw@%s:5432/mssgw" (include "mssgw.postgres.host" .)) }}
{{- $_ = set $pg "password" (dict "file" (printf "/run/secrets/mssgw/%s" (include "mssgw.postgres.passwordFile" .))) }}
{{- $_ = set $pg "sslMode" "verify-full" }}
{{- $_ = set $pg "caFile" (printf "/run/secrets/mssgw/%s" (include "mssgw.postgres.caFile" .)) }}
{{- $_ = set $config "postgres" $pg }}
{{- end }}
{{- toYaml $config }}
{{- end -}}
