package adminapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/greentic/events/pkg/bus"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
)

// createTenantForTest creates tenants through the API as the operator.
func createTenantForTest(t *testing.T, h *harness, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := h.operator.Tenants.CreateTenant(h.operator.ctx(t), &adminv1.CreateTenantRequest{Tenant: &adminv1.Tenant{Id: id}}); err != nil {
			t.Fatalf("create tenant %s: %v", id, err)
		}
	}
}

func tenantMask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func TestCreateTenant(t *testing.T) {
	h := newHarness(t)
	in := &adminv1.Tenant{
		Id: "acme", DisplayName: "Acme Inc.",
		RateLimit: &adminv1.RateLimit{PerSecond: 50, Burst: 100},
		Accounts:  map[string]*adminv1.ProviderAccount{"marketing": {Provider: "sendgrid", SecretRef: "acme-marketing"}},
		// Output-only fields are ignored.
		Revision: 99,
	}
	res, err := h.operator.Tenants.CreateTenant(h.operator.ctx(t), &adminv1.CreateTenantRequest{Tenant: in})
	if err != nil {
		t.Fatal(err)
	}
	got := res.GetTenant()
	if got.GetId() != "acme" || got.GetDisplayName() != "Acme Inc." || got.GetRateLimit().GetBurst() != 100 ||
		got.GetAccounts()["marketing"].GetSecretRef() != "acme-marketing" || got.GetRevision() == 0 || got.GetRevision() == 99 {
		t.Fatalf("created %v", got)
	}
	if got.GetCreateTime() == nil || !got.GetCreateTime().AsTime().Equal(got.GetUpdateTime().AsTime()) {
		t.Fatalf("create_time %v, update_time %v", got.GetCreateTime(), got.GetUpdateTime())
	}
	if d := time.Since(got.GetUpdateTime().AsTime()); d < 0 || d > time.Minute {
		t.Fatalf("update_time %v is not now", got.GetUpdateTime().AsTime())
	}
	e, err := h.store.Get(context.Background(), bus.BucketTenants, "acme")
	if err != nil || e.Revision != got.GetRevision() {
		t.Fatalf("stored: %+v %v", e, err)
	}
	// The value is the tenant.Tenant JSON the other services decode.
	if want := `{"id":"acme","display_name":"Acme Inc.","rate_limit":{"per_second":50,"burst":100},"accounts":{"marketing":{"provider":"sendgrid","secret_ref":"acme-marketing"}}}`; string(e.Value) != want {
		t.Fatalf("stored %s, want %s", e.Value, want)
	}

	_, err = h.operator.Tenants.CreateTenant(h.operator.ctx(t), &adminv1.CreateTenantRequest{Tenant: &adminv1.Tenant{Id: "acme"}})
	wantCode(t, err, codes.AlreadyExists)

	for _, tc := range []struct {
		name   string
		tenant *adminv1.Tenant
		field  string
	}{
		{"no tenant", nil, "tenant"},
		{"no id", &adminv1.Tenant{}, "tenant.id"},
		{"dotted id", &adminv1.Tenant{Id: "a.b"}, "tenant.id"},
		{"wildcard id", &adminv1.Tenant{Id: "a*"}, "tenant.id"},
		{"burst without rate", &adminv1.Tenant{Id: "initech", RateLimit: &adminv1.RateLimit{Burst: 5}}, "tenant.rate_limit"},
		{"negative rate", &adminv1.Tenant{Id: "initech", RateLimit: &adminv1.RateLimit{PerSecond: -1, Burst: 5}}, "tenant.rate_limit"},
		{"unknown provider", &adminv1.Tenant{Id: "initech", Accounts: map[string]*adminv1.ProviderAccount{"m": {Provider: "mailgun", SecretRef: "x"}}}, "tenant.accounts.m.provider"},
		{"bad account name", &adminv1.Tenant{Id: "initech", Accounts: map[string]*adminv1.ProviderAccount{"a.b": {Provider: "sendgrid", SecretRef: "x"}}}, "tenant.accounts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.operator.Tenants.CreateTenant(h.operator.ctx(t), &adminv1.CreateTenantRequest{Tenant: tc.tenant})
			wantField(t, err, tc.field)
		})
	}

	// Tenant-scoped tokens cannot create tenants, not even their own.
	for _, id := range []string{"globex", "initech"} {
		_, err = h.globex.Tenants.CreateTenant(h.globex.ctx(t), &adminv1.CreateTenantRequest{Tenant: &adminv1.Tenant{Id: id}})
		wantCode(t, err, codes.PermissionDenied)
	}
	_, err = h.anonymous.Tenants.CreateTenant(h.anonymous.ctx(t), &adminv1.CreateTenantRequest{Tenant: &adminv1.Tenant{Id: "globex"}})
	wantCode(t, err, codes.Unauthenticated)
	if _, err := h.store.Get(context.Background(), bus.BucketTenants, "globex"); err == nil {
		t.Fatal("a refused create stored the tenant")
	}
}

func TestGetTenant(t *testing.T) {
	h := newHarness(t)
	createTenantForTest(t, h, "acme", "globex")
	for _, c := range []*client{h.operator, h.acme} {
		res, err := c.Tenants.GetTenant(c.ctx(t), &adminv1.GetTenantRequest{Id: "acme"})
		if err != nil || res.GetTenant().GetId() != "acme" || res.GetTenant().GetRevision() == 0 || res.GetTenant().GetUpdateTime() == nil {
			t.Fatalf("get as %s: %v %v", c.token, res, err)
		}
	}
	_, err := h.operator.Tenants.GetTenant(h.operator.ctx(t), &adminv1.GetTenantRequest{Id: "initech"})
	wantCode(t, err, codes.NotFound)
	// Another tenant is refused whether it exists or not.
	for _, id := range []string{"globex", "initech"} {
		_, err = h.acme.Tenants.GetTenant(h.acme.ctx(t), &adminv1.GetTenantRequest{Id: id})
		wantCode(t, err, codes.PermissionDenied)
	}
	for _, id := range []string{"", "a b", "a.b"} {
		_, err = h.operator.Tenants.GetTenant(h.operator.ctx(t), &adminv1.GetTenantRequest{Id: id})
		wantField(t, err, "id")
	}
	_, err = h.anonymous.Tenants.GetTenant(h.anonymous.ctx(t), &adminv1.GetTenantRequest{Id: "acme"})
	wantCode(t, err, codes.Unauthenticated)
}

func TestListTenants(t *testing.T) {
	h := newHarness(t)
	ids := []string{"acme", "globex", "hooli", "initech", "umbrella"}
	createTenantForTest(t, h, ids[4], ids[2], ids[0], ids[3], ids[1])

	var got []string
	token := ""
	pages := 0
	for {
		res, err := h.operator.Tenants.ListTenants(h.operator.ctx(t), &adminv1.ListTenantsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(res.GetTenants()) > 2 {
			t.Fatalf("page %d has %d tenants", pages, len(res.GetTenants()))
		}
		for _, tn := range res.GetTenants() {
			if tn.GetRevision() == 0 {
				t.Fatalf("tenant %s without revision", tn.GetId())
			}
			got = append(got, tn.GetId())
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	if pages != 3 || fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("%d pages: %v, want 3 pages of %v", pages, got, ids)
	}

	// A tenant-scoped token sees its own tenant only.
	res, err := h.acme.Tenants.ListTenants(h.acme.ctx(t), &adminv1.ListTenantsRequest{})
	if err != nil || len(res.GetTenants()) != 1 || res.GetTenants()[0].GetId() != "acme" || res.GetNextPageToken() != "" {
		t.Fatalf("acme lists %v %v", res, err)
	}
	if _, err := h.operator.Tenants.DeleteTenant(h.operator.ctx(t), &adminv1.DeleteTenantRequest{Id: "globex"}); err != nil {
		t.Fatal(err)
	}
	res, err = h.globex.Tenants.ListTenants(h.globex.ctx(t), &adminv1.ListTenantsRequest{})
	if err != nil || len(res.GetTenants()) != 0 {
		t.Fatalf("globex, deleted, lists %v %v", res, err)
	}

	_, err = h.operator.Tenants.ListTenants(h.operator.ctx(t), &adminv1.ListTenantsRequest{PageToken: "not a token!"})
	wantField(t, err, "page_token")
	_, err = h.acme.Tenants.ListTenants(h.acme.ctx(t), &adminv1.ListTenantsRequest{PageSize: -1})
	wantField(t, err, "page_size")
	_, err = h.anonymous.Tenants.ListTenants(h.anonymous.ctx(t), &adminv1.ListTenantsRequest{})
	wantCode(t, err, codes.Unauthenticated)
}

func TestUpdateTenant(t *testing.T) {
	h := newHarness(t)
	created, err := h.operator.Tenants.CreateTenant(h.operator.ctx(t), &adminv1.CreateTenantRequest{Tenant: &adminv1.Tenant{
		Id: "acme", DisplayName: "Acme", RateLimit: &adminv1.RateLimit{PerSecond: 5, Burst: 10},
		Accounts: map[string]*adminv1.ProviderAccount{"sms": {Provider: "twilio", SecretRef: "acme-twilio"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	createTenantForTest(t, h, "globex")
	rev := created.GetTenant().GetRevision()
	update := func(c *client, tn *adminv1.Tenant, paths ...string) (*adminv1.Tenant, error) {
		t.Helper()
		req := &adminv1.UpdateTenantRequest{Tenant: tn}
		if len(paths) > 0 {
			req.UpdateMask = tenantMask(paths...)
		}
		res, err := c.Tenants.UpdateTenant(c.ctx(t), req)
		return res.GetTenant(), err
	}

	t.Run("mask changes only its fields", func(t *testing.T) {
		got, err := update(h.operator, &adminv1.Tenant{Id: "acme", DisplayName: "Acme Corp", Suspended: true}, "display_name")
		if err != nil {
			t.Fatal(err)
		}
		if got.GetDisplayName() != "Acme Corp" || got.GetSuspended() || got.GetRateLimit().GetBurst() != 10 || got.GetAccounts()["sms"] == nil || got.GetRevision() <= rev {
			t.Fatalf("updated %v", got)
		}
		rev = got.GetRevision()
	})
	t.Run("stale revision", func(t *testing.T) {
		_, err := update(h.operator, &adminv1.Tenant{Id: "acme", DisplayName: "x", Revision: rev - 1}, "display_name")
		wantCode(t, err, codes.FailedPrecondition)
	})
	t.Run("current revision", func(t *testing.T) {
		got, err := update(h.operator, &adminv1.Tenant{Id: "acme", RateLimit: &adminv1.RateLimit{PerSecond: 1, Burst: 2}, Revision: rev}, "rate_limit")
		if err != nil || got.GetRateLimit().GetPerSecond() != 1 || got.GetDisplayName() != "Acme Corp" {
			t.Fatalf("updated %v %v", got, err)
		}
		rev = got.GetRevision()
	})
	t.Run("identical update writes nothing", func(t *testing.T) {
		got, err := update(h.operator, &adminv1.Tenant{Id: "acme", DisplayName: "Acme Corp"}, "display_name")
		if err != nil || got.GetRevision() != rev {
			t.Fatalf("updated %v %v, want revision %d", got, err, rev)
		}
	})
	t.Run("empty mask replaces every mutable field", func(t *testing.T) {
		got, err := update(h.operator, &adminv1.Tenant{Id: "acme", DisplayName: "Acme"})
		if err != nil || got.GetDisplayName() != "Acme" || got.GetRateLimit() != nil || len(got.GetAccounts()) != 0 || got.GetSuspended() {
			t.Fatalf("updated %v %v", got, err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, tc := range []struct {
			tenant *adminv1.Tenant
			paths  []string
			field  string
		}{
			{nil, nil, "tenant"},
			{&adminv1.Tenant{}, nil, "tenant.id"},
			{&adminv1.Tenant{Id: "a.b"}, nil, "tenant.id"},
			{&adminv1.Tenant{Id: "acme"}, []string{"nickname"}, "update_mask"},
			{&adminv1.Tenant{Id: "acme"}, []string{"id"}, "update_mask"},
			{&adminv1.Tenant{Id: "acme"}, []string{"revision"}, "update_mask"},
			{&adminv1.Tenant{Id: "acme", RateLimit: &adminv1.RateLimit{PerSecond: 3}}, []string{"rate_limit"}, "tenant.rate_limit"},
			{&adminv1.Tenant{Id: "acme", Accounts: map[string]*adminv1.ProviderAccount{"m": {Provider: "sendgrid", SecretRef: "bad ref"}}}, []string{"accounts"}, "tenant.accounts.m.secret_ref"},
		} {
			_, err := update(h.operator, tc.tenant, tc.paths...)
			wantField(t, err, tc.field)
		}
	})
	t.Run("missing tenant", func(t *testing.T) {
		_, err := update(h.operator, &adminv1.Tenant{Id: "initech", DisplayName: "x"}, "display_name")
		wantCode(t, err, codes.NotFound)
	})

	t.Run("tenant scope", func(t *testing.T) {
		// A tenant renames itself.
		got, err := update(h.acme, &adminv1.Tenant{Id: "acme", DisplayName: "ACME"}, "display_name")
		if err != nil || got.GetDisplayName() != "ACME" {
			t.Fatalf("acme renames itself: %v %v", got, err)
		}
		// But it neither suspends itself, nor changes its limit or accounts.
		for _, tc := range []struct {
			tenant *adminv1.Tenant
			path   string
		}{
			{&adminv1.Tenant{Id: "acme", Suspended: true}, "suspended"},
			{&adminv1.Tenant{Id: "acme", RateLimit: &adminv1.RateLimit{PerSecond: 1000, Burst: 1000}}, "rate_limit"},
			{&adminv1.Tenant{Id: "acme", Accounts: map[string]*adminv1.ProviderAccount{"m": {Provider: "sendgrid", SecretRef: "globex-sendgrid"}}}, "accounts"},
		} {
			_, err := update(h.acme, tc.tenant, tc.path)
			wantCode(t, err, codes.PermissionDenied)
			_, err = update(h.acme, tc.tenant)
			wantCode(t, err, codes.PermissionDenied)
		}
		// What GetTenant returned can be sent back with a new name.
		if _, err := update(h.operator, &adminv1.Tenant{Id: "acme", RateLimit: &adminv1.RateLimit{PerSecond: 5, Burst: 10}}, "rate_limit"); err != nil {
			t.Fatal(err)
		}
		cur, err := h.acme.Tenants.GetTenant(h.acme.ctx(t), &adminv1.GetTenantRequest{Id: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		cur.Tenant.DisplayName = "Acme again"
		got, err = update(h.acme, cur.GetTenant())
		if err != nil || got.GetDisplayName() != "Acme again" || got.GetRateLimit().GetBurst() != 10 {
			t.Fatalf("acme round trip: %v %v", got, err)
		}
		// Another tenant is out of reach.
		_, err = update(h.acme, &adminv1.Tenant{Id: "globex", DisplayName: "owned"}, "display_name")
		wantCode(t, err, codes.PermissionDenied)
		_, err = update(h.anonymous, &adminv1.Tenant{Id: "acme", DisplayName: "x"}, "display_name")
		wantCode(t, err, codes.Unauthenticated)
	})
}

func TestSuspendResumeTenant(t *testing.T) {
	h := newHarness(t)
	createTenantForTest(t, h, "acme")
	res, err := h.operator.Tenants.SuspendTenant(h.operator.ctx(t), &adminv1.SuspendTenantRequest{Id: "acme"})
	if err != nil || !res.GetTenant().GetSuspended() {
		t.Fatalf("suspend: %v %v", res, err)
	}
	again, err := h.operator.Tenants.SuspendTenant(h.operator.ctx(t), &adminv1.SuspendTenantRequest{Id: "acme"})
	if err != nil || again.GetTenant().GetRevision() != res.GetTenant().GetRevision() {
		t.Fatalf("suspending again: %v %v, want revision %d unchanged", again, err, res.GetTenant().GetRevision())
	}
	e, err := h.store.Get(context.Background(), bus.BucketTenants, "acme")
	if err != nil || string(e.Value) != `{"id":"acme","suspended":true}` {
		t.Fatalf("stored %s %v", e.Value, err)
	}
	resumed, err := h.operator.Tenants.ResumeTenant(h.operator.ctx(t), &adminv1.ResumeTenantRequest{Id: "acme"})
	if err != nil || resumed.GetTenant().GetSuspended() || resumed.GetTenant().GetRevision() <= res.GetTenant().GetRevision() {
		t.Fatalf("resume: %v %v", resumed, err)
	}

	_, err = h.acme.Tenants.SuspendTenant(h.acme.ctx(t), &adminv1.SuspendTenantRequest{Id: "acme"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.acme.Tenants.ResumeTenant(h.acme.ctx(t), &adminv1.ResumeTenantRequest{Id: "acme"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.operator.Tenants.SuspendTenant(h.operator.ctx(t), &adminv1.SuspendTenantRequest{Id: "initech"})
	wantCode(t, err, codes.NotFound)
	_, err = h.operator.Tenants.ResumeTenant(h.operator.ctx(t), &adminv1.ResumeTenantRequest{Id: "a.b"})
	wantField(t, err, "id")
	_, err = h.operator.Tenants.SuspendTenant(h.operator.ctx(t), &adminv1.SuspendTenantRequest{})
	wantField(t, err, "id")
	_, err = h.anonymous.Tenants.SuspendTenant(h.anonymous.ctx(t), &adminv1.SuspendTenantRequest{Id: "acme"})
	wantCode(t, err, codes.Unauthenticated)
}

// tenantLeftovers stores, for tenant id, what DeleteTenant must remove:
// a source, a flow, a schedule, two timer states and a dead letter.
func tenantLeftovers(t *testing.T, h *harness, id string) {
	t.Helper()
	ctx := context.Background()
	src := fmt.Sprintf(`{"tenant":%q,"name":"shop","scheme":"bearer","secrets":["bearer-token-0123456789"],"event_type":{"value":"order.created"}}`, id)
	for _, kv := range []struct {
		b     bus.Bucket
		key   string
		value string
	}{
		{bus.BucketSources, id + ".shop", src},
		{bus.BucketFlows, id + ".orders", "name: orders\n"},
		{bus.BucketSchedules, id + ".nightly", fmt.Sprintf(`{"tenant":%q,"name":"nightly","cron":"0 2 * * *"}`, id)},
	} {
		if _, err := h.store.Create(ctx, kv.b, kv.key, []byte(kv.value)); err != nil {
			t.Fatal(err)
		}
	}
	timers, err := h.rt.Topology.KeyValue(ctx, h.rt.JS, bus.BucketTimers)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{id + ".nightly", id + ".flow.orders.0"} {
		if _, err := timers.Put(ctx, k, []byte("1700000000")); err != nil {
			t.Fatal(err)
		}
	}
	deliveries, err := h.rt.Topology.KeyValue(ctx, h.rt.JS, bus.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deliveries.Put(ctx, id+".shop.d-1", []byte("shop:d-1")); err != nil {
		t.Fatal(err)
	}
	subj, err := bus.DLQSubject(h.rt.Topology.Env, id, "flow")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.JS.Publish(ctx, subj, []byte("dead letter of "+id)); err != nil {
		t.Fatal(err)
	}
}

// tenantKeys counts what is stored for tenant id: configuration keys,
// service state (timer states and delivery ids) and dead letters.
func tenantKeys(t *testing.T, h *harness, id string) (config, timers int, deadLetters uint64) {
	t.Helper()
	ctx := context.Background()
	for _, b := range []bus.Bucket{bus.BucketSources, bus.BucketFlows, bus.BucketSchedules} {
		es, err := h.store.List(ctx, b, id+".")
		if err != nil {
			t.Fatal(err)
		}
		config += len(es)
	}
	if _, err := h.store.Get(ctx, bus.BucketTenants, id); err == nil {
		config++
	}
	kv, err := h.rt.Topology.KeyValue(ctx, h.rt.JS, bus.BucketTimers)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{id + ".nightly", id + ".flow.orders.0"} {
		if _, err := kv.Get(ctx, k); err == nil {
			timers++
		}
	}
	dkv, err := h.rt.Topology.KeyValue(ctx, h.rt.JS, bus.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dkv.Get(ctx, id+".shop.d-1"); err == nil {
		timers++
	}
	s, err := h.rt.JS.Stream(ctx, h.rt.Topology.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.TenantDLQFilter(h.rt.Topology.Env, id)))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range info.State.Subjects {
		deadLetters += n
	}
	return config, timers, deadLetters
}

func TestDeleteTenant(t *testing.T) {
	h := newHarness(t)
	createTenantForTest(t, h, "acme", "globex")
	tenantLeftovers(t, h, "acme")
	tenantLeftovers(t, h, "globex")
	del := func(c *client, id string, rev uint64) error {
		t.Helper()
		_, err := c.Tenants.DeleteTenant(c.ctx(t), &adminv1.DeleteTenantRequest{Id: id, Revision: rev})
		return err
	}

	// Refused: nothing is removed.
	wantCode(t, del(h.acme, "acme", 0), codes.PermissionDenied)
	wantCode(t, del(h.acme, "globex", 0), codes.PermissionDenied)
	wantCode(t, del(h.anonymous, "acme", 0), codes.Unauthenticated)
	wantField(t, del(h.operator, "a.b", 0), "id")
	wantField(t, del(h.operator, "", 0), "id")
	cur, err := h.operator.Tenants.GetTenant(h.operator.ctx(t), &adminv1.GetTenantRequest{Id: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, del(h.operator, "acme", cur.GetTenant().GetRevision()+100), codes.FailedPrecondition)
	if c, tm, d := tenantKeys(t, h, "acme"); c != 4 || tm != 3 || d != 1 {
		t.Fatalf("after refused deletes acme has %d config keys, %d service states, %d dead letters", c, tm, d)
	}

	if err := del(h.operator, "acme", cur.GetTenant().GetRevision()); err != nil {
		t.Fatal(err)
	}
	if c, tm, d := tenantKeys(t, h, "acme"); c != 0 || tm != 0 || d != 0 {
		t.Fatalf("after the delete acme has %d config keys, %d service states, %d dead letters", c, tm, d)
	}
	if c, tm, d := tenantKeys(t, h, "globex"); c != 4 || tm != 3 || d != 1 {
		t.Fatalf("globex lost something: %d config keys, %d service states, %d dead letters", c, tm, d)
	}
	_, err = h.operator.Tenants.GetTenant(h.operator.ctx(t), &adminv1.GetTenantRequest{Id: "acme"})
	wantCode(t, err, codes.NotFound)
	wantCode(t, del(h.operator, "acme", 0), codes.NotFound)

	// A delete that stopped half way (the record gone, children left) is
	// finished by deleting again.
	if _, err := h.store.Create(context.Background(), bus.BucketFlows, "acme.stray", []byte("name: stray\n")); err != nil {
		t.Fatal(err)
	}
	if err := del(h.operator, "acme", 0); err != nil {
		t.Fatalf("finishing a partial delete: %v", err)
	}
	if c, _, _ := tenantKeys(t, h, "acme"); c != 0 {
		t.Fatalf("%d config keys left", c)
	}
	wantCode(t, del(h.operator, "acme", 0), codes.NotFound)

	// Created again, the tenant starts clean.
	createTenantForTest(t, h, "acme")
	if c, tm, d := tenantKeys(t, h, "acme"); c != 1 || tm != 0 || d != 0 {
		t.Fatalf("re-created acme has %d config keys, %d service states, %d dead letters", c, tm, d)
	}
	res, err := h.acme.Sources.ListSources(h.acme.ctx(t), &adminv1.ListSourcesRequest{})
	if err != nil || len(res.GetSources()) != 0 {
		t.Fatalf("re-created acme lists sources %v %v", res, err)
	}
}
