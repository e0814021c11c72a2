{{/* flow-executor needs nothing beyond the shared settings. */}}
{{- define "greentic.flow-executor.env" -}}{{- end }}
{{- define "greentic.flow-executor.envFrom" -}}{{- end }}
{{- define "greentic.flow-executor.volumes" -}}{{- end }}
{{- define "greentic.flow-executor.volumeMounts" -}}{{- end }}
{{- define "greentic.flow-executor.checksum" -}}{{- end }}
