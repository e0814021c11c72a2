package bundle

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

const example = "../../examples/bundle.yaml"

func TestLoadExample(t *testing.T) {
	b, err := Load(example)
	if err != nil {
		t.Fatalf("Load(%s): %v", example, err)
	}
	if len(b.Tenants) != 1 {
		t.Fatalf("tenants = %d, want 1", len(b.Tenants))
	}
	demo := b.Tenants[0]
	if demo.ID != "demo" || demo.DisplayName != "Demo tenant" || demo.Suspended {
		t.Errorf("tenant = %+v", demo.Tenant)
	}
	// One source per verification scheme, and the CloudEvents source.
	var names []string
	for _, s := range demo.Sources {
		names = append(names, s.Name+"/"+s.Scheme)
	}
	if got, want := strings.Join(names, " "), "generic/hmac-sha256 github/github stripe/stripe twilio/twilio sendgrid/sendgrid standard-webhooks/standard-webhooks bearer/bearer cloudevents/bearer"; got != want {
		t.Fatalf("sources = %s\nwant      %s", got, want)
	}
	if got := demo.Sources[2].EffectiveTolerance(); got != 5*time.Minute {
		t.Errorf("stripe tolerance = %s, want 5m from the bundle", got)
	}
	want := tenant.Source{
		Tenant:    "demo",
		Name:      "generic",
		Scheme:    tenant.SchemeHMACSHA256,
		Secrets:   []string{"demo-secret"},
		Signature: tenant.Signature{Header: "X-Greentic-Signature", Encoding: "hex", Prefix: "sha256="},
		EventType: tenant.ValueFrom{Field: "type"},
		EventID:   tenant.ValueFrom{Field: "id"},
	}
	got := demo.Sources[0]
	if got.Tenant != want.Tenant || got.Name != want.Name || got.Scheme != want.Scheme ||
		strings.Join(got.Secrets, ",") != "demo-secret" || got.Signature != want.Signature ||
		got.EventType != want.EventType || got.EventID != want.EventID || got.MaxBodyBytes != 0 || got.Disabled {
		t.Errorf("source = %+v\nwant     %+v", got, want)
	}
	if len(demo.Flows) != 1 {
		t.Fatalf("flows = %+v, want one", demo.Flows)
	}
	f := demo.Flows[0]
	onDisk, err := os.ReadFile("../../examples/flows/handle_event.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "handle_event" || filepath.Base(f.Path) != "handle_event.yaml" || string(f.Doc) != string(onDisk) {
		t.Errorf("flow = %s at %s (%d bytes), want handle_event with the file's text", f.Name, f.Path, len(f.Doc))
	}
}

func TestLoadRelativeToBundle(t *testing.T) {
	// Flow paths are relative to the bundle file, not the working directory.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "flows"), 0o755); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("testdata/flows/ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "flows", "ok.yaml"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("testdata/flows/ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// An absolute path is taken as it is.
	bundle := "tenants:\n  - id: acme\n    flows: [flows/ok.yaml]\n  - id: globex\n    flows: [" + abs + "]\n"
	path := filepath.Join(dir, "bundle.yaml")
	if err := os.WriteFile(path, []byte(bundle), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Tenants) != 2 || len(b.Tenants[0].Flows) != 1 || b.Tenants[0].Flows[0].Name != "ok" || len(b.Tenants[1].Flows) != 1 {
		t.Fatalf("bundle = %+v", b)
	}
}

func TestLoadErrors(t *testing.T) {
	position := regexp.MustCompile(`\b5:11: nodes\[0\]\.type: unknown node type "teleport"`)
	for _, tc := range []struct {
		file   string
		want   []string
		re     *regexp.Regexp
		secret string // must not appear in the error
	}{
		{file: "does_not_exist.yaml", want: []string{"read bundle", "does_not_exist.yaml"}},
		{file: "not_yaml.yaml", want: []string{"not_yaml.yaml", "line"}},
		{file: "unknown_key.yaml", want: []string{"unknown_key.yaml", `"colour"`}},
		{file: "unknown_source_key.yaml", want: []string{`"max_body"`}},
		{file: "bad_tenant.yaml", want: []string{"bad_tenant.yaml", "tenants[1]", `"bad tenant"`}},
		{file: "bad_source.yaml", want: []string{"bad_source.yaml", "tenants[0].sources[1]", "secrets[0]"}, secret: `"short"`},
		{file: "source_other_tenant.yaml", want: []string{"tenants[0].sources[0]", `"globex"`, `"acme"`}},
		{file: "missing_flow.yaml", want: []string{"missing_flow.yaml", "tenants[0].flows[1]", "does_not_exist.yaml"}},
		{file: "broken_flow.yaml", want: []string{"broken_flow.yaml", "tenants[1].flows[0]", "broken.yaml"}, re: position},
		{file: "duplicate_tenant.yaml", want: []string{"tenants[1]", `"acme"`, "tenants[0]"}},
		{file: "duplicate_source.yaml", want: []string{"tenants[0].sources[1]", `"shop"`, "sources[0]"}},
		{file: "duplicate_flow.yaml", want: []string{"tenants[0].flows[1]", `"ok"`, "flows[0]"}},
		{file: "bad_account.yaml", want: []string{"bad_account.yaml", "tenants[0]", "accounts.marketing.provider", `"mailchimp"`}},
		{file: "unknown_account_key.yaml", want: []string{`"api_key"`}, secret: "SG.secret"},
		{file: "bad_schedule.yaml", want: []string{"bad_schedule.yaml", "tenants[0].schedules[1]", "hourly", "cron"}},
		{file: "schedule_without_name.yaml", want: []string{"tenants[0].schedules[0]", "name: required"}},
		{file: "schedule_other_tenant.yaml", want: []string{"tenants[0].schedules[0]", `"globex"`, `"acme"`}},
		{file: "duplicate_schedule.yaml", want: []string{"tenants[0].schedules[1]", `"nightly"`, "schedules[0]"}},
		{file: "unknown_schedule_key.yaml", want: []string{"unknown_schedule_key.yaml", `"every"`}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := Load(filepath.Join("testdata", tc.file))
			if err == nil {
				t.Fatalf("Load succeeded: %+v", b)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %s", err, want)
				}
			}
			if tc.re != nil && !tc.re.MatchString(err.Error()) {
				t.Errorf("error %q does not match %s", err, tc.re)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}

func TestLoadAccountsAndSchedules(t *testing.T) {
	b, err := Load("testdata/accounts_and_schedules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Tenants) != 2 {
		t.Fatalf("tenants = %d, want 2", len(b.Tenants))
	}
	acme := b.Tenants[0]
	wantAccounts := map[string]tenant.Account{
		"marketing": {Provider: tenant.ProviderSendGrid, SecretRef: "acme-sendgrid"},
		"alerts":    {Provider: tenant.ProviderTwilio, SecretRef: "ACME_TWILIO"},
	}
	if !maps.Equal(acme.Accounts, wantAccounts) {
		t.Errorf("accounts = %+v, want %+v", acme.Accounts, wantAccounts)
	}
	if len(acme.Schedules) != 2 {
		t.Fatalf("schedules = %+v, want two", acme.Schedules)
	}
	nightly := acme.Schedules[0]
	// The tenant defaults to the one the schedule is listed under; a YAML
	// payload becomes its JSON.
	if nightly.Tenant != "acme" || nightly.Name != "nightly" || nightly.Cron != "0 2 * * *" || nightly.Timezone != "Europe/Paris" ||
		nightly.EventType != "report.nightly" || nightly.Missed != schedule.MissedSkip || nightly.Paused {
		t.Errorf("nightly = %+v", nightly)
	}
	var payload map[string]any
	if err := json.Unmarshal(nightly.Payload, &payload); err != nil || payload["kind"] != "nightly" || payload["limit"] != 10.0 {
		t.Errorf("nightly payload = %s (%v)", nightly.Payload, err)
	}
	launch := acme.Schedules[1]
	at, err := launch.AtTime()
	if err != nil || !at.Equal(time.Date(2030, 1, 1, 8, 0, 0, 0, time.UTC)) || !launch.Paused || launch.Cron != "" {
		t.Errorf("launch = %+v, at %v (%v)", launch, at, err)
	}
	// Schedules of different tenants may share a name.
	if g := b.Tenants[1]; len(g.Schedules) != 1 || g.Schedules[0].Key() != "globex.nightly" || g.Accounts != nil {
		t.Errorf("globex = %+v", g)
	}
}

func TestApply(t *testing.T) {
	rt := servicetest.Runtime(t, natstest.RunServer(t).URL(), "dev")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(example)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		want Applied
	}{
		{"first", Applied{Changed: 10}}, // tenant, 8 sources, flow
		{"again", Applied{Unchanged: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply(ctx, store, b)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got != tc.want {
				t.Errorf("Apply = %+v, want %+v", got, tc.want)
			}
		})
	}

	// What the services read back is what the bundle said.
	reg := tenant.NewRegistry()
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	synced := make(chan struct{})
	go func() { done <- store.WatchRegistry(wctx, reg, testLog(), func() { close(synced) }) }()
	t.Cleanup(func() { wcancel(); <-done })
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("registry did not sync")
	}
	if src, ok := reg.Source("demo", "generic"); !ok || src.Signature.Prefix != "sha256=" || src.Secrets[0] != "demo-secret" {
		t.Errorf("stored source = %+v, %v", src, ok)
	}
	if src, ok := reg.Source("demo", "sendgrid"); !ok || len(src.PublicKeys) != 1 || src.Validate() != nil {
		t.Errorf("stored sendgrid source = %+v, %v", src, ok)
	}
	flows, err := rt.Topology.KeyValue(ctx, rt.JS, bus.BucketFlows)
	if err != nil {
		t.Fatal(err)
	}
	e, err := flows.Get(ctx, tenant.FlowKey("demo", "handle_event"))
	if err != nil {
		t.Fatalf("stored flow: %v", err)
	}
	if string(e.Value()) != string(b.Tenants[0].Flows[0].Doc) {
		t.Errorf("stored flow differs from the bundle's file")
	}

	t.Run("accounts and schedules", func(t *testing.T) {
		b, err := Load("testdata/accounts_and_schedules.yaml")
		if err != nil {
			t.Fatal(err)
		}
		// acme, its flow and two schedules; globex and its schedule.
		for i, want := range []Applied{{Changed: 6}, {Unchanged: 6}} {
			got, err := Apply(ctx, store, b)
			if err != nil {
				t.Fatalf("Apply #%d: %v", i+1, err)
			}
			if got != want {
				t.Errorf("Apply #%d = %+v, want %+v", i+1, got, want)
			}
		}
		e, err := store.Get(ctx, bus.BucketSchedules, "acme.nightly")
		if err != nil {
			t.Fatalf("stored schedule: %v", err)
		}
		var sc schedule.Schedule
		if err := json.Unmarshal(e.Value, &sc); err != nil || sc.Validate() != nil {
			t.Fatalf("stored schedule %s: %v", e.Value, err)
		}
		if sc.Tenant != "acme" || sc.Cron != "0 2 * * *" || sc.Timezone != "Europe/Paris" || string(sc.Payload) != `{"kind":"nightly","limit":10}` {
			t.Errorf("stored schedule = %+v (payload %s)", sc, sc.Payload)
		}
		e, err = store.Get(ctx, bus.BucketTenants, "acme")
		if err != nil {
			t.Fatal(err)
		}
		var acme tenant.Tenant
		if err := json.Unmarshal(e.Value, &acme); err != nil || acme.Accounts["marketing"].SecretRef != "acme-sendgrid" || len(acme.Accounts) != 2 {
			t.Errorf("stored tenant = %s (%v)", e.Value, err)
		}

		// A changed schedule is rewritten, and only it.
		b.Tenants[1].Schedules[0].Cron = "@every 2h"
		if got, err := Apply(ctx, store, b); err != nil || got != (Applied{Changed: 1, Unchanged: 5}) {
			t.Errorf("Apply after a change = %+v, %v; want 1 changed, 5 unchanged", got, err)
		}
	})

	t.Run("store error names the item", func(t *testing.T) {
		bad := &Bundle{Tenants: []Tenant{{Tenant: tenant.Tenant{ID: "acme"}, Sources: []tenant.Source{{Tenant: "acme", Name: "x"}}}}}
		got, err := Apply(ctx, store, bad)
		if err == nil || !strings.Contains(err.Error(), "apply source acme/x") {
			t.Fatalf("Apply = %v, want an error naming source acme/x", err)
		}
		if got != (Applied{Changed: 1}) {
			t.Errorf("Apply counted %+v before failing, want the tenant as changed", got)
		}
		bad = &Bundle{Tenants: []Tenant{{Tenant: tenant.Tenant{ID: "acme"}, Schedules: []schedule.Schedule{{Tenant: "acme", Name: "never"}}}}}
		if _, err := Apply(ctx, store, bad); err == nil || !strings.Contains(err.Error(), "apply schedule acme/never") {
			t.Fatalf("Apply = %v, want an error naming schedule acme/never", err)
		}
	})
}

func testLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
