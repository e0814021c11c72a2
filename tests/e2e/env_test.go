//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/greentic/events/tests/chart"
)

// services are the Deployments of a microservices install, each run here as
// the binary of the same name, in the order they are started.
var services = []string{"admin-api", "ingress-webhook", "flow-executor", "timer", "email-sender", "sms-sender"}

// valuesFiles are the chart's values files this install uses.
var valuesFiles = []string{"values-dev.yaml"}

// serviceEnv is the environment the chart gives each service's container,
// keyed by service name, for valuesFiles with set on top (chart.Render,
// `helm install -f ... --set ...`): secret references resolved from the
// Secrets the chart renders, and files the chart mounts from them (admin
// tokens, NATS credentials) written under dir, with the variables naming
// them pointing there. Listen addresses are still the chart's; the caller
// moves them to loopback ports.
func serviceEnv(t *testing.T, set map[string]any, dir string) map[string]map[string]string {
	t.Helper()
	if !slices.Equal(slices.Sorted(slices.Values(services)), slices.Sorted(slices.Values(chart.Services))) {
		t.Fatalf("the chart deploys %v, this test runs %v", chart.Services, services)
	}
	objs, err := chart.Render(valuesFiles, set)
	if err != nil {
		t.Fatalf("render the chart: %v", err)
	}
	out := map[string]map[string]string{}
	for _, name := range services {
		env, err := chart.ResolveEnv(objs, name)
		if err != nil {
			t.Fatalf("environment of %s: %v", name, err)
		}
		d, err := chart.Deployment(objs, name)
		if err != nil {
			t.Fatal(err)
		}
		writeMountedFiles(t, objs, d, env, filepath.Join(dir, name))
		out[name] = env
	}
	return out
}

// writeMountedFiles writes, under dir, each file of a Secret volume that an
// environment variable of the Deployment's container names by its path in
// the container, and points the variable at it.
func writeMountedFiles(t *testing.T, objs []chart.Object, d *appsv1.Deployment, env map[string]string, dir string) {
	t.Helper()
	pod := d.Spec.Template.Spec
	for _, m := range pod.Containers[0].VolumeMounts {
		prefix := strings.TrimSuffix(m.MountPath, "/") + "/"
		for name, value := range env {
			rel, ok := strings.CutPrefix(value, prefix)
			if !ok {
				continue
			}
			i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
			if i < 0 || pod.Volumes[i].Secret == nil {
				t.Fatalf("%s: %s=%s is in volume %s, which is not a Secret", d.Name, name, value, m.Name)
			}
			vol := pod.Volumes[i].Secret
			key := rel
			for _, item := range vol.Items {
				if item.Path == rel {
					key = item.Key
				}
			}
			data, ok, err := chart.SecretData(objs, vol.SecretName)
			if err != nil || !ok {
				t.Fatalf("Secret %s is not rendered by the chart (%v)", vol.SecretName, err)
			}
			content, ok := data[key]
			if !ok {
				t.Fatalf("%s: %s=%s needs key %s of Secret %s, which the chart does not render", d.Name, name, value, key, vol.SecretName)
			}
			path := filepath.Join(dir, m.Name, rel)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			env[name] = path
		}
	}
}
