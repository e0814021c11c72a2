{{/* timer needs nothing beyond the shared settings. */}}
{{- define "greentic.timer.env" -}}{{- end }}
{{- define "greentic.timer.envFrom" -}}{{- end }}
{{- define "greentic.timer.volumes" -}}{{- end }}
{{- define "greentic.timer.volumeMounts" -}}{{- end }}
{{- define "greentic.timer.checksum" -}}{{- end }}
