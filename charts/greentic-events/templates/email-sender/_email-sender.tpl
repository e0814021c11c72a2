{{/*
email-sender: the provider, the deployment's SendGrid key (SENDGRID_API_KEY,
from a Secret only) and the tenant accounts' keys (envFrom a Secret).
*/}}
{{- define "greentic.email-sender.env" -}}
{{- $s := .Values.emailSender }}
- name: GREENTIC_EMAIL_PROVIDER
  value: {{ $s.provider | quote }}
{{- if ne $s.provider "capture" }}
- name: SENDGRID_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "greentic.secretName" (dict "ctx" . "existing" $s.sendgrid.existingSecret "suffix" "sendgrid") }}
      key: {{ $s.sendgrid.existingSecretKey }}
      optional: {{ eq $s.provider "auto" }}
{{- end }}
{{- end }}

{{- define "greentic.email-sender.envFrom" -}}
{{- $t := .Values.emailSender.tenantAccounts }}
{{- if or $t.existingSecret $t.env }}
- secretRef:
    # Optional: a deployment may have no tenant accounts yet.
    optional: true
    name: {{ include "greentic.secretName" (dict "ctx" . "existing" $t.existingSecret "suffix" "email-accounts") }}
{{- end }}
{{- end }}

{{- define "greentic.email-sender.volumes" -}}{{- end }}
{{- define "greentic.email-sender.volumeMounts" -}}{{- end }}

{{/* Environment variables are read at start: a changed chart-created Secret restarts the pods. */}}
{{- define "greentic.email-sender.checksum" -}}
{{- $s := .Values.emailSender }}
{{- if or (and (not $s.sendgrid.existingSecret) $s.sendgrid.apiKey) (and (not $s.tenantAccounts.existingSecret) $s.tenantAccounts.env) }}
{{- dict "sendgrid" $s.sendgrid.apiKey "accounts" $s.tenantAccounts.env | toJson | sha256sum }}
{{- end }}
{{- end }}
