{{/* ingress-webhook needs nothing beyond the shared settings. */}}
{{- define "greentic.ingress-webhook.env" -}}{{- end }}
{{- define "greentic.ingress-webhook.envFrom" -}}{{- end }}
{{- define "greentic.ingress-webhook.volumes" -}}{{- end }}
{{- define "greentic.ingress-webhook.volumeMounts" -}}{{- end }}
{{- define "greentic.ingress-webhook.checksum" -}}{{- end }}
