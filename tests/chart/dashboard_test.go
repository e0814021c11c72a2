package chart

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// natsExporterSeries are the NATS Prometheus exporter's JetStream series the
// dashboard reads (prometheus-nats-exporter collector/jsz.go, without the
// prefix: "nats_" with the official NATS chart's -prefix=nats, "jetstream_"
// by default), with the labels it queries.
var natsExporterSeries = map[string]bool{
	"consumer_num_pending":     true,
	"consumer_num_ack_pending": true,
	"stream_total_messages":    true,
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(dir))
}

// codeMetrics are the metric names registered by the services' code
// (prometheus.*Opts{Name: "greentic_..."}).
func codeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	root := repoRoot(t)
	name := regexp.MustCompile(`Name:\s+"(greentic_[a-z0-9_]+)"`)
	found := map[string]bool{}
	for _, dir := range []string{"pkg", "services"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range name.FindAllSubmatch(b, -1) {
				found[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(found) < 10 {
		t.Fatalf("found only %d metrics in the code: %v", len(found), found)
	}
	return found
}

// TestDashboard: the dashboard ConfigMap is labelled for Grafana's sidecar,
// its JSON parses, it has the panels the operators need, and every series
// it queries exists: greentic_* in the services' code, the others in the
// NATS exporter.
func TestDashboard(t *testing.T) {
	t.Parallel()
	objs, err := Render([]string{"values-prod.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := Find(objs, "ConfigMap", ReleaseName+"-dashboard")
	if !ok {
		t.Fatal("no dashboard ConfigMap")
	}
	obj, err := Decode(o)
	if err != nil {
		t.Fatal(err)
	}
	cm := obj.(*corev1.ConfigMap)
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v, want grafana_dashboard: \"1\"", cm.Labels)
	}
	var dash struct {
		Title       string `json:"title"`
		UID         string `json:"uid"`
		Description string `json:"description"`
		Panels      []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(cm.Data["greentic-events.json"]), &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || !strings.Contains(dash.Description, "NATS Prometheus exporter") {
		t.Errorf("title %q uid %q, description must say where the NATS series come from: %q", dash.Title, dash.UID, dash.Description)
	}

	inCode := codeMetrics(t)
	greentic := regexp.MustCompile(`\bgreentic_[a-z0-9_]+`)
	nats := regexp.MustCompile(`\$\{nats_prefix\}_([a-z0-9_]+)`)
	used := map[string]bool{}
	titles := map[string]bool{}
	for _, p := range dash.Panels {
		titles[p.Title] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range greentic.FindAllString(q.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && inCode[b] {
						base = b
					}
				}
				if !inCode[base] {
					t.Errorf("panel %q: %s is registered nowhere in the code", p.Title, m)
				}
				used[base] = true
			}
			for _, m := range nats.FindAllStringSubmatch(q.Expr, -1) {
				if !natsExporterSeries[m[1]] {
					t.Errorf("panel %q: <prefix>_%s is not a NATS exporter series the dashboard knows", p.Title, m[1])
				}
				used["nats:"+m[1]] = true
			}
		}
	}
	for _, want := range []struct{ what, series string }{
		{"ingress rate and errors", "greentic_ingress_requests_total"},
		{"consumer lag per stage", "nats:consumer_num_pending"},
		{"consumer lag per stage", "nats:consumer_num_ack_pending"},
		{"flow run latency", "greentic_flow_run_seconds"},
		{"send outcomes", "greentic_sender_commands_total"},
		{"DLQ depth", "nats:stream_total_messages"},
	} {
		if !used[want.series] {
			t.Errorf("the dashboard shows no %s (%s)", want.what, want.series)
		}
	}
	for _, title := range []string{"Ingress requests by outcome", "Ingress errors", "Consumer lag per stage", "Flow run latency", "Send outcomes", "DLQ depth"} {
		if !titles[title] {
			t.Errorf("no panel %q", title)
		}
	}

	// Disabled, it is gone.
	objs, err = Render([]string{"values-prod.yaml"}, map[string]any{"metrics.dashboard.enabled": false})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Find(objs, "ConfigMap", ReleaseName+"-dashboard"); ok {
		t.Error("dashboard rendered although disabled")
	}
}
