{{- define "mssgw.name" -}}{{ .Release.Name }}-mssgw{{- end -}}
{{- define "mssgw.labels" -}}
app.kubernetes.io/name: mssante-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
