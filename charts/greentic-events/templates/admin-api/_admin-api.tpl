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
{{- if not .Values.adminApi.auth.existingSecret }}
{{- include "greentic.admin-api.tokensFile" . | sha256sum }}
{{- end }}
{{- end }}

{{/*
The tokens file of the chart-created Secret: adminApi.auth.tokens, one per
line, or with no tokens an operator token the chart generates,
"generated@operator=<48 letters and digits>" (named "generated" in the
logs). A generated token is kept across upgrades: the file already in the
cluster's Secret is reused (lookup; an offline render such as `helm
template` sees no cluster and generates a new one). The Secret and the
pods' checksum read it in one render, so it is made once per render and
kept in the render's top-level map.
*/}}
{{- define "greentic.admin-api.tokensFile" -}}
{{- $auth := .Values.adminApi.auth }}
{{- if $auth.tokens }}
{{- join "\n" $auth.tokens }}
{{- else if not $auth.generateToken }}
{{- fail "adminApi.auth: set existingSecret (a Secret holding the tokens, one per line) or tokens; this environment does not let the chart generate an operator token (adminApi.auth.generateToken is false)" }}
{{- else }}
{{- if not (hasKey . "greenticGeneratedAdminTokens") }}
{{- $name := include "greentic.secretName" (dict "ctx" . "existing" "" "suffix" "admin-tokens") }}
{{- $inCluster := lookup "v1" "Secret" .Release.Namespace $name | default dict }}
{{- $file := dig "data" $auth.key "" $inCluster | b64dec }}
{{- $_ := set . "greenticGeneratedAdminTokens" ($file | default (printf "generated@operator=%s" (randAlphaNum 48))) }}
{{- end }}
{{- get . "greenticGeneratedAdminTokens" }}
{{- end }}
{{- end }}
