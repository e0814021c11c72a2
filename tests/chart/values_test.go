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
