{{/*
admin-api: bearer tokens as a mounted file (GREENTIC_ADMIN_TOKENS_FILE),
optionally TLS (and mTLS) from a kubernetes.io/tls Secret.
*/}}
{{- define "greentic.admin-api.env" -}}
{{- $a := .Values.adminApi }}
- name: GREENTIC_ADMIN_TOKENS_FILE
  value: /etc/greentic/admin-tokens/tokens
{{- if $a.tls.existingSecret }}
- name: GREENTIC_ADMIN_TLS_CERT
  value: /etc/greentic/admin-tls/tls.crt
- name: GREENTIC_ADMIN_TLS_KEY
  value: /etc/greentic/admin-tls/tls.key
{{- if $a.tls.clientCA }}
- name: GREENTIC_ADMIN_TLS_CLIENT_CA
  value: /etc/greentic/admin-tls/ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "greentic.admin-api.envFrom" -}}{{- end }}

{{- define "greentic.admin-api.volumes" -}}
{{- $a := .Values.adminApi }}
- name: admin-tokens
  secret:
    secretName: {{ include "greentic.secretName" (dict "ctx" . "existing" $a.auth.existingSecret "suffix" "admin-tokens") }}
    defaultMode: 0440
    items:
      - key: {{ $a.auth.key }}
        path: tokens
{{- with $a.tls.existingSecret }}
- name: admin-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "greentic.admin-api.volumeMounts" -}}
- name: admin-tokens
  mountPath: /etc/greentic/admin-tokens
  readOnly: true
{{- if .Values.adminApi.tls.existingSecret }}
- name: admin-tls
  mountPath: /etc/greentic/admin-tls
  readOnly: true
{{- end }}
{{- end }}

{{/* The tokens are read at start: a changed chart-created Secret restarts the pods. */}}
{{- define "greentic.admin-api.checksum" -}}
{{- $a := .Values.adminApi }}
{{- if and (not $a.auth.existingSecret) $a.auth.tokens }}
{{- $a.auth.tokens | toJson | sha256sum }}
{{- end }}
{{- end }}
