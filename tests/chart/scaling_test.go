package chart

import (
	"os"
	"path/filepath"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/greentic/events/pkg/bus"
)

// TestScaling: which autoscaler each service gets, for each values file
// and cluster. KEDA only where the cluster serves its API and the values
// enable it; the HPA otherwise; the timer and admin-api never.
func TestScaling(t *testing.T) {
	t.Parallel()
	const none, hpa, keda = "", "HorizontalPodAutoscaler", "ScaledObject"
	consumersOnly := func(mode string) map[string]string {
		return map[string]string{"ingress-webhook": none, "timer": none, "flow-executor": mode, "email-sender": mode, "sms-sender": mode, "admin-api": none}
	}
	tests := []struct {
		name  string
		files []string
		set   map[string]any
		apis  []string
		want  map[string]string
	}{
		{"dev", []string{"values-dev.yaml"}, nil, []string{KEDAAPI}, consumersOnly(none)},
		{"defaults", nil, nil, nil, consumersOnly(hpa)},
		{"defaults, KEDA installed but not enabled", nil, nil, []string{KEDAAPI}, consumersOnly(hpa)},
		{"staging with KEDA installed", []string{"values-staging.yaml"}, nil, []string{KEDAAPI}, consumersOnly(hpa)},
		{"prod without KEDA", []string{"values-prod.yaml"}, nil, nil, consumersOnly(hpa)},
		{"prod with KEDA", []string{"values-prod.yaml"}, nil, []string{KEDAAPI, PrometheusOperatorAPI}, consumersOnly(keda)},
		{"prod with KEDA, executor autoscaling off", []string{"values-prod.yaml"}, map[string]any{"flowExecutor.autoscaling.enabled": false}, []string{KEDAAPI},
			map[string]string{"ingress-webhook": none, "timer": none, "flow-executor": none, "email-sender": keda, "sms-sender": keda, "admin-api": none}},
		{"ingress autoscaled: an HPA even with KEDA", []string{"values-prod.yaml"}, map[string]any{"ingressWebhook.autoscaling.enabled": true}, []string{KEDAAPI},
			map[string]string{"ingress-webhook": hpa, "timer": none, "flow-executor": keda, "email-sender": keda, "sms-sender": keda, "admin-api": none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Render(tt.files, tt.set, tt.apis...)
			if err != nil {
				t.Fatal(err)
			}
			for svc, want := range tt.want {
				got := none
				for _, kind := range []string{hpa, keda} {
					if _, ok := Find(objs, kind, Name(svc)); ok {
						if got != none {
							t.Errorf("%s: both %s and %s", svc, got, kind)
						}
						got = kind
					}
				}
				if got != want {
					t.Errorf("%s: autoscaler %q, want %q", svc, got, want)
				}
				d, err := Deployment(objs, svc)
				if err != nil {
					t.Fatal(err)
				}
				if (d.Spec.Replicas == nil) != (want != none) {
					t.Errorf("%s: replicas %v with autoscaler %q", svc, d.Spec.Replicas, want)
				}
			}
		})
	}
}

// TestScaledObjectTriggers: each ScaledObject watches its service's own
// durable consumer on the right stream, named as pkg/bus names them, for
// any environment name.
func TestScaledObjectTriggers(t *testing.T) {
	t.Parallel()
	for _, env := range []string{"prod", "eu-west-2"} {
		t.Run(env, func(t *testing.T) {
			objs, err := Render([]string{"values-prod.yaml"}, map[string]any{
				"environment":                           env,
				"keda.natsServerMonitoringEndpoint":     "nats-headless.messaging.svc:8222",
				"flowExecutor.autoscaling.lagThreshold": 250,
			}, KEDAAPI)
			if err != nil {
				t.Fatal(err)
			}
			topo := bus.DefaultTopology(env)
			want := map[string][2]string{
				"flow-executor": {topo.EventsStream(), topo.Durable("flow-executor")},
				"email-sender":  {topo.OutboundStream(), topo.Durable("email-sender")},
				"sms-sender":    {topo.OutboundStream(), topo.Durable("sms-sender")},
			}
			for svc, w := range want {
				o, ok := Find(objs, "ScaledObject", Name(svc))
				if !ok {
					t.Fatalf("no ScaledObject for %s", svc)
				}
				obj, err := Decode(o)
				if err != nil {
					t.Fatal(err)
				}
				so := obj.(*ScaledObject)
				var js *ScaleTriggers
				for i := range so.Spec.Triggers {
					if so.Spec.Triggers[i].Type == "nats-jetstream" {
						js = &so.Spec.Triggers[i]
					}
				}
				if js == nil {
					t.Fatalf("%s: no nats-jetstream trigger", svc)
				}
				md := js.Metadata
				if md["stream"] != w[0] || md["consumer"] != w[1] {
					t.Errorf("%s: stream %q consumer %q, want %q %q", svc, md["stream"], md["consumer"], w[0], w[1])
				}
				if md["natsServerMonitoringEndpoint"] != "nats-headless.messaging.svc:8222" || md["account"] != "$G" {
					t.Errorf("%s: endpoint %q account %q", svc, md["natsServerMonitoringEndpoint"], md["account"])
				}
				if svc == "flow-executor" && md["lagThreshold"] != "250" {
					t.Errorf("%s: lagThreshold %q, want 250", svc, md["lagThreshold"])
				}
				if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil || *so.Spec.MinReplicaCount > *so.Spec.MaxReplicaCount {
					t.Errorf("%s: replica bounds %v..%v", svc, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
				}
			}
		})
	}
}

func TestHPA(t *testing.T) {
	t.Parallel()
	objs, err := Render([]string{"values-prod.yaml"}, map[string]any{"flowExecutor.autoscaling.targetCPUUtilizationPercentage": 55})
	if err != nil {
		t.Fatal(err)
	}
	o, ok := Find(objs, "HorizontalPodAutoscaler", Name("flow-executor"))
	if !ok {
		t.Fatal("no HPA for flow-executor")
	}
	obj, err := Decode(o)
	if err != nil {
		t.Fatal(err)
	}
	h := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 20 {
		t.Errorf("replicas %v..%d, want 3..20", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	m := h.Spec.Metrics
	if len(m) != 1 || m[0].Resource == nil || m[0].Resource.Name != corev1.ResourceCPU || *m[0].Resource.Target.AverageUtilization != 55 {
		t.Errorf("metrics %+v, want CPU at 55%%", m)
	}
}

// TestTimerReplicas: the timer takes any replica count (every replica fires
// every tick; the stream keeps one event per tick) and is never autoscaled.
func TestTimerReplicas(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 5} {
		objs, err := Render([]string{"values-prod.yaml"}, map[string]any{"timer.replicas": n}, KEDAAPI)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Deployment(objs, "timer")
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec.Replicas == nil || int(*d.Spec.Replicas) != n {
			t.Errorf("timer replicas %v, want %d", d.Spec.Replicas, n)
		}
	}
}

// TestServiceMonitor: one ServiceMonitor, only where the Prometheus
// operator's API is served and it is enabled, scraping the ops port of
// every service.
func TestServiceMonitor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		set  map[string]any
		apis []string
		want bool
	}{
		{"no operator", nil, nil, false},
		{"operator", nil, []string{PrometheusOperatorAPI}, true},
		{"operator, disabled", map[string]any{"metrics.serviceMonitor.enabled": false}, []string{PrometheusOperatorAPI}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Render([]string{"values-prod.yaml"}, tt.set, tt.apis...)
			if err != nil {
				t.Fatal(err)
			}
			sms := decodeAll[*monitoringv1.ServiceMonitor](t, objs, "ServiceMonitor")
			if (len(sms) == 1) != tt.want || len(sms) > 1 {
				t.Fatalf("%d ServiceMonitors, want one: %v", len(sms), tt.want)
			}
			if !tt.want {
				return
			}
			sm := sms[0]
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "ops" || sm.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("endpoints %+v, want port ops, path /metrics", sm.Spec.Endpoints)
			}
			services := decodeAll[*corev1.Service](t, objs, "Service")
			for _, svc := range Services {
				var found bool
				for _, s := range services {
					if s.Name == Name(svc) {
						found = selects(t, &sm.Spec.Selector, s.Labels)
					}
				}
				if !found {
					t.Errorf("the ServiceMonitor does not select the Service of %s", svc)
				}
			}
		})
	}
}

// TestConfigFlags: `config` entries become GREENTIC_<FLAG> variables with
// values the flags parse, including numbers read from a values file (which
// Helm reads as float64).
func TestConfigFlags(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "values-test.yaml")
	err := os.WriteFile(file, []byte(`
ingressWebhook:
  config:
    max-body-bytes: 4194304
    tenant-rate: 0.5
    publish-timeout: 2s
flowExecutor:
  logLevel: warn
  config:
    http-allow-private: true
    max-parked: 20000
    http-allow-cidrs: 10.1.0.0/16,10.2.0.0/16
streams:
  replicas: 3
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Render([]string{"values-dev.yaml", file}, map[string]any{"emailSender.config.email-concurrency": 64})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"ingress-webhook": {"GREENTIC_MAX_BODY_BYTES": "4194304", "GREENTIC_TENANT_RATE": "0.5", "GREENTIC_PUBLISH_TIMEOUT": "2s", "GREENTIC_HTTP_ADDR": ":8080", "GREENTIC_STREAM_REPLICAS": "3", "GREENTIC_LOG_LEVEL": "debug"},
		"flow-executor":   {"GREENTIC_HTTP_ALLOW_PRIVATE": "true", "GREENTIC_MAX_PARKED": "20000", "GREENTIC_HTTP_ALLOW_CIDRS": "10.1.0.0/16,10.2.0.0/16", "GREENTIC_LOG_LEVEL": "warn"},
		"email-sender":    {"GREENTIC_EMAIL_CONCURRENCY": "64", "GREENTIC_EMAIL_PROVIDER": "capture"},
		"admin-api":       {"GREENTIC_ADMIN_GRPC_ADDR": ":9090", "GREENTIC_ADMIN_TOKENS_FILE": "/etc/greentic/admin-tokens/tokens"},
	}
	for svc, vars := range want {
		env, err := ResolveEnv(objs, svc)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range vars {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", svc, k, env[k], v)
			}
		}
	}
}
