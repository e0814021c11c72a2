{{/*
sms-sender: the provider, the deployment's Twilio account (from a Secret
only; a key missing from the Secret leaves its variable unset) and the
tenant accounts' credentials (envFrom a Secret).
*/}}
{{- define "greentic.sms-sender.env" -}}
{{- $s := .Values.smsSender }}
- name: GREENTIC_SMS_PROVIDER
  value: {{ $s.provider | quote }}
{{- if ne $s.provider "capture" }}
{{- $name := include "greentic.secretName" (dict "ctx" . "existing" $s.twilio.existingSecret "suffix" "twilio") }}
{{- range $env, $field := dict "TWILIO_ACCOUNT_SID" "accountSid" "TWILIO_AUTH_TOKEN" "authToken" "TWILIO_API_KEY_SID" "apiKeySid" "TWILIO_API_KEY_SECRET" "apiKeySecret" }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ index $s.twilio.keys $field }}
      {{- /* The account SID is what every Twilio call needs; the rest is either pair. */}}
      optional: {{ or (ne $field "accountSid") (eq $s.provider "auto") }}
{{- end }}
{{- end }}
{{- end }}

{{- define "greentic.sms-sender.envFrom" -}}
{{- $t := .Values.smsSender.tenantAccounts }}
{{- if or $t.existingSecret $t.env }}
- secretRef:
    # Optional: a deployment may have no tenant accounts yet.
    optional: true
    name: {{ include "greentic.secretName" (dict "ctx" . "existing" $t.existingSecret "suffix" "sms-accounts") }}
{{- end }}
{{- end }}

{{- define "greentic.sms-sender.volumes" -}}{{- end }}
{{- define "greentic.sms-sender.volumeMounts" -}}{{- end }}

{{- define "greentic.sms-sender.checksum" -}}
{{- $s := .Values.smsSender }}
{{- $tw := pick $s.twilio "accountSid" "authToken" "apiKeySid" "apiKeySecret" }}
{{- if or (and (not $s.twilio.existingSecret) (values $tw | compact)) (and (not $s.tenantAccounts.existingSecret) $s.tenantAccounts.env) }}
{{- dict "twilio" $tw "accounts" $s.tenantAccounts.env | toJson | sha256sum }}
{{- end }}
{{- end }}
