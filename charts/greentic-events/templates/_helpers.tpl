{{/*
Shared helpers. Every service's folder holds small files that call the
defines below with (dict "ctx" $ "name" "<service>"); what differs between
services (its port, its secrets) is in the folder's _<service>.tpl, which
defines greentic.<service>.env, .envFrom, .volumes, .volumeMounts and
.checksum (each may render nothing).
*/}}

{{- define "greentic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "greentic.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The services: the port each serves besides the ops port, whether it calls
the internet (flow-executor's http nodes, the providers) and, for
consumers, the stream and stage of their durable JetStream consumer
(pkg/bus Topology.Durable: greentic-{env}-{stage}). One small define per
service, read with greentic.component.
*/}}
{{- define "greentic.component.ingress-webhook" -}}
port: {name: http, number: 8080, flag: http-addr}
internet: false
consumer: null
{{- end }}
{{- define "greentic.component.timer" -}}
port: null
internet: false
consumer: null
{{- end }}
{{- define "greentic.component.flow-executor" -}}
port: null
internet: true
consumer: {stream: EVENTS, stage: flow-executor}
{{- end }}
{{- define "greentic.component.email-sender" -}}
port: null
internet: true
consumer: {stream: OUTBOUND, stage: email-sender}
{{- end }}
{{- define "greentic.component.sms-sender" -}}
port: null
internet: true
consumer: {stream: OUTBOUND, stage: sms-sender}
{{- end }}
{{- define "greentic.component.admin-api" -}}
port: {name: grpc, number: 9090, flag: admin-grpc-addr}
internet: false
consumer: null
{{- end }}

{{/* The component entry of (dict "ctx" $ "name" "<service>"), as YAML. */}}
{{- define "greentic.component" -}}
{{- include (printf "greentic.component.%s" .name) . }}
{{- end }}

{{/* The key of the service's values: flow-executor -> flowExecutor. */}}
{{- define "greentic.key" -}}
{{- .name | replace "-" "_" | camelcase | untitle }}
{{- end }}

{{- define "greentic.componentName" -}}
{{- printf "%s-%s" (include "greentic.fullname" .ctx) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "greentic.selectorLabels" -}}
app.kubernetes.io/name: {{ include "greentic.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "greentic.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "greentic.selectorLabels" . }}
app.kubernetes.io/part-of: greentic-events
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
greentic.io/environment: {{ .ctx.Values.environment | quote }}
{{- end }}

{{/* Release-wide labels, for objects that belong to no one service. */}}
{{- define "greentic.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "greentic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: greentic-events
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
greentic.io/environment: {{ .Values.environment | quote }}
{{- end }}

{{- define "greentic.image" -}}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- $repo := $svc.image.repository }}
{{- with .ctx.Values.image.registry }}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}
{{- end }}
{{- $tag := $svc.image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" $repo $tag }}
{{- else }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}

{{/*
An environment variable's value as text. Helm reads numbers from values
files as float64, and toString would print 4194304 as 4.194304e+06, which
no flag parses: whole numbers are printed as integers.
*/}}
{{- define "greentic.envValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
The seconds of a Go duration as the schema allows it ("20s", "1m30s",
"1.5h", "500ms"), as a number.
*/}}
{{- define "greentic.durationSeconds" -}}
{{- $unit := dict "ns" 1e-9 "us" 1e-6 "µs" 1e-6 "ms" 1e-3 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" . -1 }}
{{- $u := regexFind "(ns|us|µs|ms|s|m|h)$" . }}
{{- $total = addf $total (mulf (trimSuffix $u . | float64) (get $unit $u)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
terminationGracePeriodSeconds, refused unless it leaves the services their
whole shutdownTimeout plus 5s to close their connections and exit:
Kubernetes kills a pod at the end of its grace period, and a service killed
while draining loses its graceful shutdown.
*/}}
{{- define "greentic.terminationGracePeriodSeconds" -}}
{{- $grace := .Values.terminationGracePeriodSeconds }}
{{- $need := include "greentic.durationSeconds" .Values.shutdownTimeout | float64 | addf 5 | ceil }}
{{- if lt (float64 $grace) $need }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least shutdownTimeout (%s) + 5s = %v: Kubernetes kills a pod at the end of its grace period, so a shorter one cuts the services' graceful shutdown short" (include "greentic.envValue" $grace) .Values.shutdownTimeout (int64 $need)) }}
{{- end }}
{{- include "greentic.envValue" $grace }}
{{- end }}

{{/* GREENTIC_<FLAG> of a flag name (pkg/service EnvName). */}}
{{- define "greentic.flagEnv" -}}
{{- printf "GREENTIC_%s" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
How the service scales: "keda" (a ScaledObject on its consumer's lag),
"hpa" (a HorizontalPodAutoscaler on CPU) or "" (a fixed replica count).
KEDA only for consumers, only when keda.enabled and the cluster serves
keda.sh/v1alpha1: never both for one Deployment.
*/}}
{{- define "greentic.scaling" -}}
{{- $c := include "greentic.component" . | fromYaml }}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- if and $svc.enabled (dig "autoscaling" "enabled" false $svc) }}
{{- if and $c.consumer .ctx.Values.keda.enabled (.ctx.Capabilities.APIVersions.Has "keda.sh/v1alpha1") }}
{{- print "keda" }}
{{- else }}
{{- print "hpa" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The settings every service shares, as environment variables. */}}
{{- define "greentic.commonEnv" -}}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- $v := .ctx.Values -}}
- name: NATS_URL
  value: {{ $v.nats.url | quote }}
{{- if $v.nats.credentials.existingSecret }}
- name: GREENTIC_NATS_CREDS
  value: /etc/greentic/nats/{{ $v.nats.credentials.key }}
{{- end }}
- name: GREENTIC_ENV
  value: {{ $v.environment | quote }}
- name: GREENTIC_OPS_ADDR
  value: ":9100"
- name: GREENTIC_LOG_LEVEL
  value: {{ $svc.logLevel | default $v.logLevel | quote }}
- name: GREENTIC_SHUTDOWN_TIMEOUT
  value: {{ $v.shutdownTimeout | quote }}
- name: GREENTIC_STREAM_REPLICAS
  value: {{ include "greentic.envValue" $v.streams.replicas | quote }}
- name: GREENTIC_EVENTS_MAX_AGE
  value: {{ $v.streams.eventsMaxAge | quote }}
- name: GREENTIC_OUTBOUND_MAX_AGE
  value: {{ $v.streams.outboundMaxAge | quote }}
- name: GREENTIC_DLQ_MAX_AGE
  value: {{ $v.streams.dlqMaxAge | quote }}
- name: GREENTIC_DUPLICATE_WINDOW
  value: {{ $v.streams.duplicateWindow | quote }}
- name: GREENTIC_DELIVERY_WINDOW
  value: {{ $v.streams.deliveryWindow | quote }}
{{- end }}

{{/* The service's `config` flags as GREENTIC_<FLAG> variables, in name order. */}}
{{- define "greentic.configEnv" -}}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- range $flag, $value := $svc.config }}
- name: {{ include "greentic.flagEnv" $flag }}
  value: {{ include "greentic.envValue" $value | quote }}
{{- end }}
{{- end }}

{{/* The service's pod anti-affinity: its own podAntiAffinity over the chart's. */}}
{{- define "greentic.antiAffinity" -}}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- mergeOverwrite (deepCopy .ctx.Values.podAntiAffinity) ($svc.podAntiAffinity | default dict) | toYaml }}
{{- end }}

{{- define "greentic.affinity" -}}
{{- $aa := include "greentic.antiAffinity" . | fromYaml }}
{{- if eq $aa.mode "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: {{ $aa.topologyKey }}
      labelSelector:
        matchLabels:
          {{- include "greentic.selectorLabels" . | nindent 10 }}
{{- else if eq $aa.mode "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: {{ $aa.topologyKey }}
        labelSelector:
          matchLabels:
            {{- include "greentic.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}

{{/* The Deployment of a service. */}}
{{- define "greentic.deployment" -}}
{{- $c := include "greentic.component" . | fromYaml }}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- $v := .ctx.Values }}
{{- if $svc.enabled }}
{{- $affinity := include "greentic.affinity" . | trim }}
{{- $checksum := include (printf "greentic.%s.checksum" .name) .ctx | trim }}
{{- $envFrom := include (printf "greentic.%s.envFrom" .name) .ctx | trim }}
{{- $volumes := include (printf "greentic.%s.volumes" .name) .ctx | trim }}
{{- $mounts := include (printf "greentic.%s.volumeMounts" .name) .ctx | trim }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "greentic.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "greentic.labels" . | nindent 4 }}
spec:
  {{- /* An autoscaler owns the replica count: a replicas field here would reset it on every upgrade. */}}
  {{- if not (include "greentic.scaling" .) }}
  replicas: {{ $svc.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      {{- if eq (include "greentic.antiAffinity" . | fromYaml).mode "hard" }}
      {{- /* One pod per node: a surge pod would find no node when every node has one. */}}
      maxSurge: 0
      maxUnavailable: 1
      {{- else }}
      maxSurge: 1
      maxUnavailable: 0
      {{- end }}
  selector:
    matchLabels:
      {{- include "greentic.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "greentic.labels" . | nindent 8 }}
        {{- with $svc.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if or $checksum $svc.podAnnotations }}
      annotations:
        {{- with $checksum }}
        checksum/secrets: {{ . }}
        {{- end }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "greentic.componentName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ include "greentic.terminationGracePeriodSeconds" .ctx }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $svc.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $affinity }}
      affinity:
        {{- . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "greentic.image" . | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          ports:
            {{- with $c.port }}
            - name: {{ .name }}
              containerPort: {{ .number }}
              protocol: TCP
            {{- end }}
            - name: ops
              containerPort: 9100
              protocol: TCP
          env:
            {{- include "greentic.commonEnv" . | nindent 12 }}
            {{- with $c.port }}
            - name: {{ include "greentic.flagEnv" .flag }}
              value: {{ printf ":%v" .number | quote }}
            {{- end }}
            {{- with include (printf "greentic.%s.env" .name) .ctx | trim }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with include "greentic.configEnv" . | trim }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $svc.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $envFrom }}
          envFrom:
            {{- . | nindent 12 }}
          {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: ops
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: ops
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          startupProbe:
            httpGet:
              path: /healthz
              port: ops
            periodSeconds: 2
            failureThreshold: 30
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            runAsGroup: 65532
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            privileged: false
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $v.nats.credentials.existingSecret }}
            - name: nats-credentials
              mountPath: /etc/greentic/nats
              readOnly: true
            {{- end }}
            {{- with $mounts }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 16Mi
        {{- with $v.nats.credentials.existingSecret }}
        - name: nats-credentials
          secret:
            secretName: {{ . }}
            defaultMode: 0440
            items:
              - key: {{ $v.nats.credentials.key }}
                path: {{ $v.nats.credentials.key }}
        {{- end }}
        {{- with $volumes }}
        {{- . | nindent 8 }}
        {{- end }}
{{- end }}
{{- end }}

{{/* The Service of a service: the ops port, and the port it serves. */}}
{{- define "greentic.service" -}}
{{- $c := include "greentic.component" . | fromYaml }}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- if $svc.enabled }}
{{- $conf := dig "service" (dict) $svc }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "greentic.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "greentic.labels" . | nindent 4 }}
  {{- with get $conf "annotations" }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ get $conf "type" | default "ClusterIP" }}
  selector:
    {{- include "greentic.selectorLabels" . | nindent 4 }}
  ports:
    {{- with $c.port }}
    - name: {{ .name }}
      port: {{ get $conf "port" | default .number }}
      targetPort: {{ .name }}
      protocol: TCP
      {{- if eq .name "grpc" }}
      appProtocol: grpc
      {{- end }}
    {{- end }}
    - name: ops
      port: 9100
      targetPort: ops
      protocol: TCP
{{- end }}
{{- end }}

{{- define "greentic.serviceAccount" -}}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- if $svc.enabled }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "greentic.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "greentic.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end }}
{{- end }}

{{- define "greentic.podDisruptionBudget" -}}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- if $svc.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "greentic.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "greentic.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ $svc.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "greentic.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/*
The NetworkPolicy of a service: in, only the ports it serves; out, only
NATS, DNS and (for flow-executor and the senders) the internet.
*/}}
{{- define "greentic.networkPolicy" -}}
{{- $c := include "greentic.component" . | fromYaml }}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- $np := .ctx.Values.networkPolicy }}
{{- if and $svc.enabled $np.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "greentic.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "greentic.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "greentic.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- with $c.port }}
    {{- $from := ternary $np.webhookFrom $np.adminFrom (eq .name "http") }}
    {{- if or (eq .name "http") $from }}
    - ports:
        - port: {{ .name }}
          protocol: TCP
      {{- with $from }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- end }}
    - ports:
        - port: ops
          protocol: TCP
      {{- with $np.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  egress:
    - ports:
        - port: {{ $np.nats.port }}
          protocol: TCP
      {{- with $np.nats.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
      {{- with $np.dns.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- if $c.internet }}
    - ports:
        {{- range $np.internet.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- with $np.internet.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- with $svc.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}

{{/* The autoscaler of a service: a HorizontalPodAutoscaler or a KEDA ScaledObject, never both. */}}
{{- define "greentic.autoscaler" -}}
{{- $c := include "greentic.component" . | fromYaml }}
{{- $svc := index .ctx.Values (include "greentic.key" .) }}
{{- $mode := include "greentic.scaling" . }}
{{- $as := $svc.autoscaling }}
{{- if eq $mode "hpa" }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "greentic.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "greentic.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "greentic.componentName" . }}
  minReplicas: {{ $as.minReplicas }}
  maxReplicas: {{ $as.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $as.targetCPUUtilizationPercentage }}
{{- else if eq $mode "keda" }}
{{- $k := .ctx.Values.keda }}
{{- $env := .ctx.Values.environment }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "greentic.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "greentic.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "greentic.componentName" . }}
  pollingInterval: {{ $k.pollingInterval }}
  cooldownPeriod: {{ $k.cooldownPeriod }}
  minReplicaCount: {{ $as.minReplicas }}
  maxReplicaCount: {{ $as.maxReplicas }}
  triggers:
    # Messages not yet delivered plus delivered and not yet acknowledged
    # on the service's durable consumer, shared by every replica.
    - type: nats-jetstream
      metadata:
        natsServerMonitoringEndpoint: {{ $k.natsServerMonitoringEndpoint | quote }}
        account: {{ $k.account | quote }}
        stream: {{ printf "GREENTIC_%s_%s" $c.consumer.stream ($env | upper | replace "-" "_") | quote }}
        consumer: {{ printf "greentic-%s-%s" $env $c.consumer.stage | quote }}
        lagThreshold: {{ include "greentic.envValue" $as.lagThreshold | quote }}
        activationLagThreshold: {{ include "greentic.envValue" $as.activationLagThreshold | quote }}
        useHttps: {{ $k.useHttps | quote }}
    # And CPU, as the HorizontalPodAutoscaler would.
    - type: cpu
      metricType: Utilization
      metadata:
        value: {{ include "greentic.envValue" $as.targetCPUUtilizationPercentage | quote }}
{{- end }}
{{- end }}

{{/* The name of a Secret the chart creates for the service, or the existing one. */}}
{{- define "greentic.secretName" -}}
{{- .existing | default (printf "%s-%s" (include "greentic.fullname" .ctx) .suffix) }}
{{- end }}
