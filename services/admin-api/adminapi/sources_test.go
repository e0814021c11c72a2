package adminapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/tenant"
)

// Secrets of the source tests; none may ever appear in an answer.
const (
	srcSecret1 = "first-secret-0123456789"
	srcSecret2 = "second-secret-0123456789"
	srcSecret3 = "third-secret-0123456789"
)

// hmacSourceForTest is a valid hmac-sha256 source (its secrets go in the request).
func hmacSourceForTest(tenantID, name string) *adminv1.Source {
	return &adminv1.Source{
		Tenant: tenantID, Name: name, Scheme: tenant.SchemeHMACSHA256,
		EventType: "field:type", EventId: "header:X-Delivery",
		SignatureHeader: "X-Signature", SignatureEncoding: "hex", SignaturePrefix: "sha256=",
		MaxBodyBytes: 4096,
	}
}

// storedSource reads a source as the ingress does: the bucket's JSON.
func storedSource(t *testing.T, h *harness, tenantID, name string) tenant.Source {
	t.Helper()
	e, err := h.store.Get(context.Background(), bus.BucketSources, tenant.SourceKey(tenantID, name))
	if err != nil {
		t.Fatalf("stored source %s/%s: %v", tenantID, name, err)
	}
	var src tenant.Source
	if err := json.Unmarshal(e.Value, &src); err != nil {
		t.Fatal(err)
	}
	if err := src.Validate(); err != nil {
		t.Fatalf("stored source does not validate: %v", err)
	}
	return src
}

// noSecretIn fails if an answer or an error shows one of the secrets.
func noSecretIn(t *testing.T, m proto.Message, err error, secrets ...string) {
	t.Helper()
	var text string
	if m != nil {
		b, _ := protojson.Marshal(m)
		text = string(b)
	}
	if st, ok := status.FromError(err); ok && err != nil {
		b, _ := protojson.Marshal(st.Proto())
		text += string(b) + err.Error()
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Fatalf("answer shows a secret: %s", text)
		}
	}
}

func TestPutSource(t *testing.T) {
	h := newHarness(t)
	createTenantForTest(t, h, "acme", "globex")
	put := func(c *client, src *adminv1.Source, secrets ...string) (*adminv1.Source, error) {
		t.Helper()
		res, err := c.Sources.PutSource(c.ctx(t), &adminv1.PutSourceRequest{Source: src, Secrets: secrets})
		noSecretIn(t, res, err, srcSecret1, srcSecret2, srcSecret3, "short-1", "not-a-stripe-secret")
		return res.GetSource(), err
	}

	got, err := put(h.acme, hmacSourceForTest("acme", "shop"), srcSecret1)
	if err != nil {
		t.Fatal(err)
	}
	want := hmacSourceForTest("acme", "shop")
	want.SecretCount, want.Revision = 1, got.GetRevision()
	if !proto.Equal(got, want) || got.GetRevision() == 0 {
		t.Fatalf("put returned %v, want %v", got, want)
	}
	stored := storedSource(t, h, "acme", "shop")
	if fmt.Sprint(stored.Secrets) != "["+srcSecret1+"]" || stored.EventType.Field != "type" || stored.EventID.Header != "X-Delivery" || stored.Signature.Prefix != "sha256=" {
		t.Fatalf("stored %+v", stored)
	}
	rev := got.GetRevision()

	t.Run("no secrets keeps the stored ones", func(t *testing.T) {
		in := hmacSourceForTest("acme", "shop")
		in.MaxBodyBytes = 8192
		got, err := put(h.acme, in)
		if err != nil || got.GetSecretCount() != 1 || got.GetMaxBodyBytes() != 8192 || got.GetRevision() <= rev {
			t.Fatalf("put %v %v", got, err)
		}
		if s := storedSource(t, h, "acme", "shop"); fmt.Sprint(s.Secrets) != "["+srcSecret1+"]" || s.MaxBodyBytes != 8192 {
			t.Fatalf("stored %+v", s)
		}
		rev = got.GetRevision()
	})
	t.Run("secrets replace the stored ones", func(t *testing.T) {
		in := hmacSourceForTest("acme", "shop")
		in.MaxBodyBytes = 8192
		got, err := put(h.operator, in, srcSecret2, srcSecret3)
		if err != nil || got.GetSecretCount() != 2 {
			t.Fatalf("put %v %v", got, err)
		}
		if s := storedSource(t, h, "acme", "shop"); fmt.Sprint(s.Secrets) != "["+srcSecret2+" "+srcSecret3+"]" {
			t.Fatalf("stored secrets %d", len(s.Secrets))
		}
		rev = got.GetRevision()
	})
	t.Run("revision", func(t *testing.T) {
		in := hmacSourceForTest("acme", "shop")
		in.Revision = rev - 1
		_, err := put(h.acme, in)
		wantCode(t, err, codes.FailedPrecondition)
		in.Revision = rev
		got, err := put(h.acme, in)
		if err != nil || got.GetMaxBodyBytes() != 4096 {
			t.Fatalf("put over the current revision: %v %v", got, err)
		}
		in = hmacSourceForTest("acme", "missing")
		in.Revision = 1
		_, err = put(h.acme, in, srcSecret1)
		wantCode(t, err, codes.NotFound)
	})
	t.Run("disabled", func(t *testing.T) {
		in := hmacSourceForTest("acme", "shop")
		in.Disabled = true
		got, err := put(h.acme, in)
		if err != nil || !got.GetDisabled() || got.GetSecretCount() == 0 {
			t.Fatalf("put %v %v", got, err)
		}
		res, err := h.acme.Sources.GetSource(h.acme.ctx(t), &adminv1.GetSourceRequest{Tenant: "acme", Name: "shop"})
		if err != nil || !res.GetSource().GetDisabled() {
			t.Fatalf("get %v %v", res, err)
		}
		if s := storedSource(t, h, "acme", "shop"); !s.Disabled {
			t.Fatalf("stored %+v, want it disabled for the ingress", s)
		}
		// Putting it again as written is no change; without the flag it
		// is enabled again.
		if again, err := put(h.acme, in); err != nil || again.GetRevision() != got.GetRevision() {
			t.Fatalf("put again %v %v, want revision %d", again, err, got.GetRevision())
		}
		in.Disabled = false
		if got, err := put(h.acme, in); err != nil || got.GetDisabled() {
			t.Fatalf("put enabled %v %v", got, err)
		}
		if s := storedSource(t, h, "acme", "shop"); s.Disabled {
			t.Fatalf("stored %+v, want it enabled", s)
		}
	})
	t.Run("scheme without secrets drops them", func(t *testing.T) {
		in := &adminv1.Source{Tenant: "acme", Name: "shop", Scheme: tenant.SchemeNone, EventType: "value:form.submitted"}
		got, err := put(h.acme, in)
		if err != nil || got.GetSecretCount() != 0 || got.GetEventType() != "value:form.submitted" {
			t.Fatalf("put %v %v", got, err)
		}
		if s := storedSource(t, h, "acme", "shop"); len(s.Secrets) != 0 {
			t.Fatalf("stored %d secrets", len(s.Secrets))
		}
	})
	t.Run("tenant must exist", func(t *testing.T) {
		_, err := put(h.operator, hmacSourceForTest("initech", "shop"), srcSecret1)
		wantCode(t, err, codes.NotFound)
		if !strings.Contains(err.Error(), "tenant initech") {
			t.Fatalf("error does not name the tenant: %v", err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		with := func(f func(*adminv1.Source)) *adminv1.Source {
			s := hmacSourceForTest("acme", "new")
			f(s)
			return s
		}
		stripe := &adminv1.Source{Tenant: "acme", Name: "stripe", Scheme: tenant.SchemeStripe}
		for _, tc := range []struct {
			name    string
			src     *adminv1.Source
			secrets []string
			field   string
		}{
			{"no source", nil, nil, "source"},
			{"no tenant", with(func(s *adminv1.Source) { s.Tenant = "" }), []string{srcSecret1}, "source.tenant"},
			{"bad tenant", with(func(s *adminv1.Source) { s.Tenant = "a.b" }), []string{srcSecret1}, "source.tenant"},
			{"no name", with(func(s *adminv1.Source) { s.Name = "" }), []string{srcSecret1}, "source.name"},
			{"bad name", with(func(s *adminv1.Source) { s.Name = "a.b" }), []string{srcSecret1}, "source.name"},
			{"no scheme", with(func(s *adminv1.Source) { s.Scheme = "" }), []string{srcSecret1}, "source.scheme"},
			{"unknown scheme", with(func(s *adminv1.Source) { s.Scheme = "md5" }), []string{srcSecret1}, "source.scheme"},
			{"no secrets", with(func(*adminv1.Source) {}), nil, "secrets"},
			{"short secret", with(func(*adminv1.Source) {}), []string{srcSecret1, "short-1"}, "secrets[1]"},
			{"stripe secret", stripe, []string{"not-a-stripe-secret"}, "secrets[0]"},
			{"too many secrets", with(func(*adminv1.Source) {}), strings.Split(strings.Repeat(srcSecret1+",", 9), ",")[:9], "secrets"},
			{"event type form", with(func(s *adminv1.Source) { s.EventType = "body:type" }), []string{srcSecret1}, "source.event_type"},
			{"event type empty name", with(func(s *adminv1.Source) { s.EventType = "field:" }), []string{srcSecret1}, "source.event_type"},
			{"event type required", with(func(s *adminv1.Source) { s.EventType = "" }), []string{srcSecret1}, "source.event_type"},
			{"bad fixed type", with(func(s *adminv1.Source) { s.EventType = "value:order..created" }), []string{srcSecret1}, "source.event_type"},
			{"fixed event id", with(func(s *adminv1.Source) { s.EventId = "value:1" }), []string{srcSecret1}, "source.event_id"},
			{"negative tolerance", with(func(s *adminv1.Source) { s.ToleranceSeconds = -1 }), []string{srcSecret1}, "source.tolerance_seconds"},
			{"untimed tolerance", with(func(s *adminv1.Source) { s.ToleranceSeconds = 60 }), []string{srcSecret1}, "source.tolerance_seconds"},
			{"no signature header", with(func(s *adminv1.Source) { s.SignatureHeader = "" }), []string{srcSecret1}, "source.signature_header"},
			{"signature encoding", with(func(s *adminv1.Source) { s.SignatureEncoding = "base32" }), []string{srcSecret1}, "source.signature_encoding"},
			{"negative body limit", with(func(s *adminv1.Source) { s.MaxBodyBytes = -1 }), []string{srcSecret1}, "source.max_body_bytes"},
			{"url of another scheme", with(func(s *adminv1.Source) { s.Url = "https://example.com" }), []string{srcSecret1}, "source.url"},
			{"secrets of scheme none", &adminv1.Source{Tenant: "acme", Name: "open", Scheme: tenant.SchemeNone, EventType: "value:a.b"}, []string{srcSecret1}, "secrets"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := put(h.operator, tc.src, tc.secrets...)
				wantField(t, err, tc.field)
			})
		}
	})
	t.Run("tenant scope", func(t *testing.T) {
		_, err := put(h.acme, hmacSourceForTest("globex", "shop"), srcSecret1)
		wantCode(t, err, codes.PermissionDenied)
		_, err = put(h.acme, hmacSourceForTest("initech", "shop"), srcSecret1)
		wantCode(t, err, codes.PermissionDenied)
		_, err = put(h.anonymous, hmacSourceForTest("acme", "shop"), srcSecret1)
		wantCode(t, err, codes.Unauthenticated)
		if _, err := h.store.Get(context.Background(), bus.BucketSources, "globex.shop"); err == nil {
			t.Fatal("a refused put stored the source")
		}
	})
}

func TestGetListDeleteSources(t *testing.T) {
	h := newHarness(t)
	createTenantForTest(t, h, "acme", "globex")
	for _, k := range []string{"acme.a", "acme.b", "acme.c", "globex.a"} {
		tn, n, _ := tenant.SplitKey(k)
		if _, err := h.operator.Sources.PutSource(h.operator.ctx(t), &adminv1.PutSourceRequest{Source: hmacSourceForTest(tn, n), Secrets: []string{srcSecret1}}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("get", func(t *testing.T) {
		res, err := h.acme.Sources.GetSource(h.acme.ctx(t), &adminv1.GetSourceRequest{Tenant: "acme", Name: "a"})
		noSecretIn(t, res, err, srcSecret1)
		if err != nil || res.GetSource().GetSecretCount() != 1 || res.GetSource().GetEventType() != "field:type" || res.GetSource().GetRevision() == 0 {
			t.Fatalf("get %v %v", res, err)
		}
		_, err = h.acme.Sources.GetSource(h.acme.ctx(t), &adminv1.GetSourceRequest{Tenant: "acme", Name: "zzz"})
		wantCode(t, err, codes.NotFound)
		_, err = h.acme.Sources.GetSource(h.acme.ctx(t), &adminv1.GetSourceRequest{Tenant: "globex", Name: "a"})
		wantCode(t, err, codes.PermissionDenied)
		_, err = h.acme.Sources.GetSource(h.acme.ctx(t), &adminv1.GetSourceRequest{Tenant: "acme"})
		wantField(t, err, "name")
		_, err = h.operator.Sources.GetSource(h.operator.ctx(t), &adminv1.GetSourceRequest{Name: "a"})
		wantField(t, err, "tenant")
		_, err = h.anonymous.Sources.GetSource(h.anonymous.ctx(t), &adminv1.GetSourceRequest{Tenant: "acme", Name: "a"})
		wantCode(t, err, codes.Unauthenticated)
	})

	t.Run("list", func(t *testing.T) {
		names := func(res *adminv1.ListSourcesResponse) string {
			var out []string
			for _, s := range res.GetSources() {
				out = append(out, s.GetTenant()+"/"+s.GetName())
			}
			return strings.Join(out, " ")
		}
		res, err := h.operator.Sources.ListSources(h.operator.ctx(t), &adminv1.ListSourcesRequest{})
		noSecretIn(t, res, err, srcSecret1)
		if err != nil || names(res) != "acme/a acme/b acme/c globex/a" {
			t.Fatalf("operator lists %q %v", names(res), err)
		}
		res, err = h.acme.Sources.ListSources(h.acme.ctx(t), &adminv1.ListSourcesRequest{})
		if err != nil || names(res) != "acme/a acme/b acme/c" {
			t.Fatalf("acme lists %q %v", names(res), err)
		}
		res, err = h.operator.Sources.ListSources(h.operator.ctx(t), &adminv1.ListSourcesRequest{Tenant: "globex"})
		if err != nil || names(res) != "globex/a" {
			t.Fatalf("operator lists globex: %q %v", names(res), err)
		}
		var pages []string
		token := ""
		for {
			res, err := h.acme.Sources.ListSources(h.acme.ctx(t), &adminv1.ListSourcesRequest{Tenant: "acme", PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, names(res))
			if token = res.GetNextPageToken(); token == "" {
				break
			}
		}
		if fmt.Sprint(pages) != "[acme/a acme/b acme/c]" || len(pages) != 2 {
			t.Fatalf("pages %q", pages)
		}
		_, err = h.acme.Sources.ListSources(h.acme.ctx(t), &adminv1.ListSourcesRequest{Tenant: "globex"})
		wantCode(t, err, codes.PermissionDenied)
		_, err = h.acme.Sources.ListSources(h.acme.ctx(t), &adminv1.ListSourcesRequest{PageToken: "%%%"})
		wantField(t, err, "page_token")
		_, err = h.operator.Sources.ListSources(h.operator.ctx(t), &adminv1.ListSourcesRequest{Tenant: "a.b"})
		wantField(t, err, "tenant")
		_, err = h.anonymous.Sources.ListSources(h.anonymous.ctx(t), &adminv1.ListSourcesRequest{})
		wantCode(t, err, codes.Unauthenticated)
	})

	t.Run("delete", func(t *testing.T) {
		cur, err := h.acme.Sources.GetSource(h.acme.ctx(t), &adminv1.GetSourceRequest{Tenant: "acme", Name: "a"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.acme.Sources.DeleteSource(h.acme.ctx(t), &adminv1.DeleteSourceRequest{Tenant: "acme", Name: "a", Revision: cur.GetSource().GetRevision() + 100})
		wantCode(t, err, codes.FailedPrecondition)
		_, err = h.acme.Sources.DeleteSource(h.acme.ctx(t), &adminv1.DeleteSourceRequest{Tenant: "globex", Name: "a"})
		wantCode(t, err, codes.PermissionDenied)
		_, err = h.acme.Sources.DeleteSource(h.acme.ctx(t), &adminv1.DeleteSourceRequest{Tenant: "acme", Name: "a.b"})
		wantField(t, err, "name")
		_, err = h.anonymous.Sources.DeleteSource(h.anonymous.ctx(t), &adminv1.DeleteSourceRequest{Tenant: "acme", Name: "a"})
		wantCode(t, err, codes.Unauthenticated)
		if _, err := h.acme.Sources.DeleteSource(h.acme.ctx(t), &adminv1.DeleteSourceRequest{Tenant: "acme", Name: "a", Revision: cur.GetSource().GetRevision()}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.operator.Sources.DeleteSource(h.operator.ctx(t), &adminv1.DeleteSourceRequest{Tenant: "acme", Name: "b"}); err != nil {
			t.Fatal(err)
		}
		_, err = h.acme.Sources.DeleteSource(h.acme.ctx(t), &adminv1.DeleteSourceRequest{Tenant: "acme", Name: "a"})
		wantCode(t, err, codes.NotFound)
		es, err := h.store.List(context.Background(), bus.BucketSources, "")
		if err != nil || len(es) != 2 || es[0].Key != "acme.c" || es[1].Key != "globex.a" {
			t.Fatalf("left %v %v", es, err)
		}
	})
}

func TestRotateSourceSecret(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	h.srv.now = func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	createTenantForTest(t, h, "acme", "globex")
	if _, err := h.acme.Sources.PutSource(h.acme.ctx(t), &adminv1.PutSourceRequest{Source: hmacSourceForTest("acme", "shop"), Secrets: []string{srcSecret1}}); err != nil {
		t.Fatal(err)
	}
	rotate := func(c *client, req *adminv1.RotateSourceSecretRequest) (*adminv1.RotateSourceSecretResponse, error) {
		t.Helper()
		res, err := c.Sources.RotateSourceSecret(c.ctx(t), req)
		noSecretIn(t, res, err, srcSecret1, srcSecret2, srcSecret3, "short-2")
		return res, err
	}

	res, err := rotate(h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: srcSecret2, GraceSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetSource().GetSecretCount() != 2 || !res.GetOldSecretsExpireTime().AsTime().Equal(start.Add(time.Hour)) {
		t.Fatalf("rotated: %v", res)
	}
	s := storedSource(t, h, "acme", "shop")
	if fmt.Sprint(s.Secrets) != "["+srcSecret2+"]" || len(s.RetiringSecrets) != 1 || s.RetiringSecrets[0].Secret != srcSecret1 || !s.RetiringSecrets[0].Until.Equal(start.Add(time.Hour)) {
		t.Fatalf("stored %+v", s)
	}

	// A second rotation with the default grace retires the second secret
	// for 24h; the first keeps its own deadline.
	clock.Store(start.Add(10 * time.Minute).UnixNano())
	res, err = rotate(h.operator, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: srcSecret3})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetSource().GetSecretCount() != 3 || !res.GetOldSecretsExpireTime().AsTime().Equal(start.Add(10*time.Minute+24*time.Hour)) {
		t.Fatalf("rotated again: %v", res)
	}
	s = storedSource(t, h, "acme", "shop")
	if got := s.AcceptedSecrets(start.Add(10 * time.Minute)); fmt.Sprint(got) != fmt.Sprint([]string{srcSecret3, srcSecret1, srcSecret2}) {
		t.Fatalf("accepted %d secrets", len(got))
	}

	// An hour later the first secret is no longer counted, and the next
	// write drops it.
	clock.Store(start.Add(time.Hour).UnixNano())
	got, err := h.acme.Sources.GetSource(h.acme.ctx(t), &adminv1.GetSourceRequest{Tenant: "acme", Name: "shop"})
	if err != nil || got.GetSource().GetSecretCount() != 2 {
		t.Fatalf("after the first deadline: %v %v", got, err)
	}
	in := hmacSourceForTest("acme", "shop")
	in.MaxBodyBytes = 1000
	if _, err := h.acme.Sources.PutSource(h.acme.ctx(t), &adminv1.PutSourceRequest{Source: in}); err != nil {
		t.Fatal(err)
	}
	if s := storedSource(t, h, "acme", "shop"); len(s.RetiringSecrets) != 1 || s.RetiringSecrets[0].Secret != srcSecret2 || s.Secrets[0] != srcSecret3 {
		t.Fatalf("after a put: %d secrets, %d retiring", len(s.Secrets), len(s.RetiringSecrets))
	}

	// Rotating to the secret already first keeps it first.
	res, err = rotate(h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: srcSecret3})
	if err != nil || res.GetSource().GetSecretCount() != 2 {
		t.Fatalf("rotating to the current secret: %v %v", res, err)
	}

	// Retiring secrets count against the limit.
	for i := 0; ; i++ {
		_, err := rotate(h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: fmt.Sprintf("more-secret-%02d-0123", i)})
		if err != nil {
			wantCode(t, err, codes.FailedPrecondition)
			if n := 1 + len(storedSource(t, h, "acme", "shop").RetiringSecrets); n != tenant.MaxSecrets {
				t.Fatalf("refused at %d accepted secrets, want %d", n, tenant.MaxSecrets)
			}
			break
		}
		if i > tenant.MaxSecrets {
			t.Fatal("rotations never refused")
		}
	}
	// Secrets given to PutSource replace every accepted secret.
	put, err := h.acme.Sources.PutSource(h.acme.ctx(t), &adminv1.PutSourceRequest{Source: hmacSourceForTest("acme", "shop"), Secrets: []string{srcSecret1}})
	if err != nil || put.GetSource().GetSecretCount() != 1 {
		t.Fatalf("put with secrets: %v %v", put, err)
	}

	if _, err := h.acme.Sources.PutSource(h.acme.ctx(t), &adminv1.PutSourceRequest{Source: &adminv1.Source{Tenant: "acme", Name: "open", Scheme: tenant.SchemeNone, EventType: "value:a.b"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *client
		req  *adminv1.RotateSourceSecretRequest
		code codes.Code
		// field of an InvalidArgument
		field string
	}{
		{"no new secret", h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop"}, codes.InvalidArgument, "new_secret"},
		{"short new secret", h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: "short-2"}, codes.InvalidArgument, "new_secret"},
		{"negative grace", h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: srcSecret2, GraceSeconds: -1}, codes.InvalidArgument, "grace_seconds"},
		{"long grace", h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: srcSecret2, GraceSeconds: 31 * 24 * 3600}, codes.InvalidArgument, "grace_seconds"},
		{"no name", h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", NewSecret: srcSecret2}, codes.InvalidArgument, "name"},
		{"no tenant", h.operator, &adminv1.RotateSourceSecretRequest{Name: "shop", NewSecret: srcSecret2}, codes.InvalidArgument, "tenant"},
		{"missing source", h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "nope", NewSecret: srcSecret2}, codes.NotFound, ""},
		{"scheme without secrets", h.acme, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "open", NewSecret: srcSecret2}, codes.FailedPrecondition, ""},
		{"other tenant", h.globex, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: srcSecret2}, codes.PermissionDenied, ""},
		{"no token", h.anonymous, &adminv1.RotateSourceSecretRequest{Tenant: "acme", Name: "shop", NewSecret: srcSecret2}, codes.Unauthenticated, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rotate(tc.c, tc.req)
			if tc.field != "" {
				wantField(t, err, tc.field)
				return
			}
			wantCode(t, err, tc.code)
		})
	}
	if s := storedSource(t, h, "acme", "shop"); fmt.Sprint(s.Secrets) != "["+srcSecret1+"]" || len(s.RetiringSecrets) != 0 {
		t.Fatal("a refused rotation changed the source")
	}
}
