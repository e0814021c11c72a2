package chart

import (
	"strings"
	"testing"
)

// TestSchemaRejects: a wrong value fails the install (values.schema.json,
// checked by Helm before rendering) with a message naming the value.
func TestSchemaRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  map[string]any
		want string // in the message: the value's path or name
	}{
		{"unknown top-level key", map[string]any{"replicaCount": 3}, "replicaCount"},
		{"misspelt service key", map[string]any{"flowExecutor.replica": 2}, "replica"},
		{"unknown service", map[string]any{"webhookSender.enabled": true}, "webhookSender"},
		{"wrong type", map[string]any{"flowExecutor.replicas": "two"}, "/flowExecutor/replicas"},
		{"negative replicas", map[string]any{"timer.replicas": -1}, "/timer/replicas"},
		{"fractional replicas", map[string]any{"adminApi.replicas": 1.5}, "/adminApi/replicas"},
		{"stream replicas above 5", map[string]any{"streams.replicas": 7}, "/streams/replicas"},
		{"bad log level", map[string]any{"logLevel": "verbose"}, "/logLevel"},
		{"bad service log level", map[string]any{"timer.logLevel": "trace"}, "/timer/logLevel"},
		{"bad provider", map[string]any{"emailSender.provider": "mailgun"}, "/emailSender/provider"},
		{"bad environment", map[string]any{"environment": "Prod"}, "/environment"},
		{"bad duration", map[string]any{"streams.duplicateWindow": "2 hours"}, "/streams/duplicateWindow"},
		{"duration without unit", map[string]any{"flowExecutor.config.ack-wait": "30"}, "/flowExecutor/config/ack-wait"},
		{"unknown flag", map[string]any{"flowExecutor.config.ack-timeout": "30s"}, "ack-timeout"},
		{"listen address set by the chart", map[string]any{"ingressWebhook.config.http-addr": ":80"}, "http-addr"},
		{"flag of another service", map[string]any{"timer.config.concurrency": 4}, "concurrency"},
		{"bad enum in config", map[string]any{"emailSender.config.email-unknown-outcome": "retry"}, "/emailSender/config/email-unknown-outcome"},
		{"bad anti-affinity", map[string]any{"podAntiAffinity.mode": "always"}, "/podAntiAffinity/mode"},
		{"resources without limits", map[string]any{"timer.resources.limits": nil}, "limits"}, // null removes a default
		{"bad quantity", map[string]any{"timer.resources.limits.memory": "lots"}, "/timer/resources/limits/memory"},
		{"CPU target above 100", map[string]any{"flowExecutor.autoscaling.targetCPUUtilizationPercentage": 150}, "/flowExecutor/autoscaling/targetCPUUtilizationPercentage"},
		{"zero lag threshold", map[string]any{"smsSender.autoscaling.lagThreshold": 0}, "/smsSender/autoscaling/lagThreshold"},
		{"short admin token", map[string]any{"adminApi.auth.tokens": []any{"operator=short"}}, "/adminApi/auth/tokens/0"},
		{"tenant secret not GREENTIC_SECRET_", map[string]any{"emailSender.tenantAccounts.env": map[string]any{"SENDGRID_API_KEY": "x"}}, "/emailSender/tenantAccounts/env"},
		{"NATS URL without scheme", map[string]any{"nats.url": "nats.nats.svc:4222"}, "/nats/url"},
		{"KEDA endpoint with a scheme", map[string]any{"keda.natsServerMonitoringEndpoint": "http://nats:8222"}, "/keda/natsServerMonitoringEndpoint"},
		{"bad pull policy", map[string]any{"image.pullPolicy": "Sometimes"}, "/image/pullPolicy"},
		{"bad PDB", map[string]any{"timer.podDisruptionBudget.maxUnavailable": "half"}, "/timer/podDisruptionBudget/maxUnavailable"},
		{"bad service type", map[string]any{"ingressWebhook.service.type": "External"}, "/ingressWebhook/service/type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render([]string{"values-dev.yaml"}, tt.set)
			if err == nil {
				t.Fatalf("%v: accepted", tt.set)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: the error does not name %q:\n%v", tt.set, tt.want, err)
			}
			if !strings.Contains(err.Error(), "schema") {
				t.Errorf("%v: not a schema error:\n%v", tt.set, err)
			}
		})
	}
}

// TestSchemaAccepts: the values the README documents pass.
func TestSchemaAccepts(t *testing.T) {
	t.Parallel()
	tests := []map[string]any{
		{"image.tag": "v1.2.3", "image.registry": "registry.example.com/greentic"},
		{"flowExecutor.image.tag": "sha256:0f3c1d2e"},
		{"streams.replicas": 5, "streams.dlqMaxAge": "720h", "streams.duplicateWindow": "90m"},
		{"timer.config.timer-state-flush-interval": "0"},
		{"nats.url": "tls://nats-0.example.com:4222,tls://nats-1.example.com:4222"},
		{"ingressWebhook.ingress.enabled": true, "ingressWebhook.ingress.className": "nginx",
			"ingressWebhook.ingress.hosts": []any{map[string]any{"host": "hooks.example.com"}},
			"ingressWebhook.ingress.tls":   []any{map[string]any{"secretName": "hooks-tls", "hosts": []any{"hooks.example.com"}}}},
		{"adminApi.auth.tokens": []any{"ci@operator=0123456789abcdef", "tenant:acme=fedcba9876543210"}},
		{"timer.podDisruptionBudget.maxUnavailable": "50%"},
		{"emailSender.extraEnv": []any{map[string]any{"name": "GOMEMLIMIT", "value": "200MiB"}}},
	}
	for _, set := range tests {
		objs, err := Render([]string{"values-dev.yaml"}, set)
		if err != nil {
			t.Errorf("%v: %v", set, err)
			continue
		}
		for _, o := range objs {
			if _, err := Decode(o); err != nil {
				t.Errorf("%v: %v", set, err)
			}
		}
	}
}

// TestTemplateRejects: values the schema cannot judge alone, because they
// depend on each other, fail the render with a message naming them.
func TestTemplateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files []string
		set   map[string]any
		want  []string // in the message
	}{
		{"grace period equal to the shutdown timeout", []string{"values-dev.yaml"},
			map[string]any{"shutdownTimeout": "30s", "terminationGracePeriodSeconds": 30},
			[]string{"terminationGracePeriodSeconds (30)", "shutdownTimeout (30s)", "= 35"}},
		{"grace period 1s short of a compound timeout", []string{"values-prod.yaml"},
			map[string]any{"shutdownTimeout": "1m30s", "terminationGracePeriodSeconds": 94},
			[]string{"terminationGracePeriodSeconds (94)", "shutdownTimeout (1m30s)", "= 95"}},
		{"grace period short of a fractional timeout", []string{"values-dev.yaml"},
			map[string]any{"shutdownTimeout": "2.5s", "terminationGracePeriodSeconds": 7},
			[]string{"terminationGracePeriodSeconds (7)", "shutdownTimeout (2.5s)", "= 8"}},
		{"grace period in minutes for a timeout in hours", []string{"values-staging.yaml"},
			map[string]any{"shutdownTimeout": "1h", "terminationGracePeriodSeconds": 3000},
			[]string{"terminationGracePeriodSeconds (3000)", "shutdownTimeout (1h)", "= 3605"}},
		{"staging without admin tokens", []string{"values-staging.yaml"},
			map[string]any{"adminApi.auth.existingSecret": ""},
			[]string{"adminApi.auth", "existingSecret", "tokens", "generateToken"}},
		{"production without admin tokens", []string{"values-prod.yaml"},
			map[string]any{"adminApi.auth.existingSecret": ""},
			[]string{"adminApi.auth", "existingSecret", "tokens", "generateToken"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(tt.files, tt.set)
			if err == nil {
				t.Fatalf("%v: accepted", tt.set)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: the error does not name %q:\n%v", tt.set, w, err)
				}
			}
		})
	}
}

// TestTemplateAccepts: a grace period of at least shutdownTimeout + 5s
// passes and reaches every pod; so do staging and production with tokens
// given as values.
func TestTemplateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		files []string
		set   map[string]any
		grace int64
	}{
		{nil, nil, 30}, // the defaults: 20s + 5s
		{[]string{"values-dev.yaml"}, map[string]any{"shutdownTimeout": "30s", "terminationGracePeriodSeconds": 35}, 35},
		{[]string{"values-prod.yaml"}, map[string]any{"shutdownTimeout": "1m30s", "terminationGracePeriodSeconds": 95}, 95},
		{[]string{"values-dev.yaml"}, map[string]any{"shutdownTimeout": "2.5s", "terminationGracePeriodSeconds": 8}, 8},
		{[]string{"values-dev.yaml"}, map[string]any{"shutdownTimeout": "500ms", "terminationGracePeriodSeconds": 6}, 6},
		{[]string{"values-staging.yaml"}, map[string]any{"adminApi.auth.existingSecret": "", "adminApi.auth.tokens": []any{"ops@operator=0123456789abcdef"}}, 30},
	}
	for _, tt := range tests {
		objs, err := Render(tt.files, tt.set)
		if err != nil {
			t.Errorf("%v %v: %v", tt.files, tt.set, err)
			continue
		}
		for svc, d := range deployments(t, objs) {
			if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != tt.grace {
				t.Errorf("%v %v: %s: terminationGracePeriodSeconds %v, want %d", tt.files, tt.set, svc, g, tt.grace)
			}
		}
	}
}
