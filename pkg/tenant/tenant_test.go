package tenant

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// validSource is a source that passes Validate; cases change one thing.
func validSource() Source {
	return Source{
		Tenant:    "acme",
		Name:      "shop",
		Scheme:    SchemeHMACSHA256,
		Secrets:   []string{"0123456789abcdef"},
		Signature: Signature{Header: "X-Signature", Encoding: "hex", Prefix: "sha256="},
		EventType: ValueFrom{Field: "type"},
		EventID:   ValueFrom{Header: "X-Event-Id"},
	}
}

func TestSourceValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Source)
		want   []string // substrings of the error; none means valid
	}{
		{name: "valid hmac", modify: func(*Source) {}},
		{name: "valid none with fixed type", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "open", Scheme: SchemeNone, EventType: ValueFrom{Value: "order.created"}}
		}},
		{name: "base64 encoding", modify: func(s *Source) { s.Signature.Encoding = "base64" }},
		{name: "default encoding", modify: func(s *Source) { s.Signature.Encoding = "" }},
		{name: "rotated secrets", modify: func(s *Source) { s.Secrets = append(s.Secrets, "new-secret-2") }},
		{name: "type from header", modify: func(s *Source) { s.EventType = ValueFrom{Header: "X-Type"} }},
		{name: "no event id", modify: func(s *Source) { s.EventID = ValueFrom{} }},
		{name: "explicit body limit", modify: func(s *Source) { s.MaxBodyBytes = 10 }},

		{name: "invalid tenant", modify: func(s *Source) { s.Tenant = "ac me" }, want: []string{"tenant", `"ac me"`}},
		{name: "missing tenant", modify: func(s *Source) { s.Tenant = "" }, want: []string{"tenant"}},
		{name: "invalid name", modify: func(s *Source) { s.Name = "sh.op" }, want: []string{"source", `"sh.op"`}},
		{name: "missing scheme", modify: func(s *Source) { s.Scheme = "" }, want: []string{"scheme: required"}},
		{name: "unknown scheme", modify: func(s *Source) { s.Scheme = "basic" }, want: []string{"scheme", `"basic"`, "hmac-sha256", "none", "stripe", "sendgrid"}},
		{name: "hmac without secrets", modify: func(s *Source) { s.Secrets = nil }, want: []string{"secrets", "between 1 and 8"}},
		{name: "short secret", modify: func(s *Source) { s.Secrets = []string{"long-enough-1", "short"} }, want: []string{"secrets[1]", "8 characters"}},
		{name: "missing signature header", modify: func(s *Source) { s.Signature.Header = "" }, want: []string{"signature.header"}},
		{name: "bad encoding", modify: func(s *Source) { s.Signature.Encoding = "base32" }, want: []string{"signature.encoding", `"base32"`}},
		{name: "event type not configured", modify: func(s *Source) { s.EventType = ValueFrom{} }, want: []string{"event_type"}},
		{name: "event type from field and header", modify: func(s *Source) { s.EventType = ValueFrom{Field: "type", Header: "X-Type"} }, want: []string{"event_type", "only one"}},
		{name: "event type from field and value", modify: func(s *Source) { s.EventType = ValueFrom{Field: "type", Value: "a.b"} }, want: []string{"event_type", "only one"}},
		{name: "event id from header and value", modify: func(s *Source) { s.EventID = ValueFrom{Header: "X-Id", Value: "1"} }, want: []string{"event_id", "only one"}},
		{name: "invalid fixed event type", modify: func(s *Source) { s.EventType = ValueFrom{Value: "order..created"} }, want: []string{"event_type.value"}},
		{name: "fixed event type with wildcard", modify: func(s *Source) { s.EventType = ValueFrom{Value: "order.*"} }, want: []string{"event_type.value", "wildcard"}},
		{name: "too many secrets", modify: func(s *Source) {
			s.Secrets = strings.Split("aaaaaaaa,bbbbbbbb,cccccccc,dddddddd,eeeeeeee,ffffffff,gggggggg,hhhhhhhh,iiiiiiii", ",")
		}, want: []string{"secrets", "between 1 and 8"}},
		{name: "github by convention", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "gh", Scheme: SchemeGitHub, Secrets: []string{"gh-secret-1"}}
		}},
		{name: "stripe by convention", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "st", Scheme: SchemeStripe, Secrets: []string{"whsec_abc123456"}, Tolerance: Duration(10 * time.Minute)}
		}},
		{name: "stripe secret without whsec_", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "st", Scheme: SchemeStripe, Secrets: []string{"sk_live_abcdef"}}
		}, want: []string{"secrets[0]", "whsec_"}},
		{name: "standard-webhooks", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "sw", Scheme: SchemeStandardWebhooks, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
		}},
		{name: "standard-webhooks secret not base64", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "sw", Scheme: SchemeStandardWebhooks, Secrets: []string{"whsec_not*base64!!"}}
		}, want: []string{"secrets[0]"}},
		{name: "twilio with public url", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "tw", Scheme: SchemeTwilio, Secrets: []string{"0123456789abcdef"}, URL: "https://hooks.example.com/v1/webhooks/acme/tw"}
		}},
		{name: "twilio relative url", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "tw", Scheme: SchemeTwilio, Secrets: []string{"0123456789abcdef"}, URL: "/v1/webhooks/acme/tw"}
		}, want: []string{"url", "absolute"}},
		{name: "url on another scheme", modify: func(s *Source) { s.URL = "https://x.example.com/" }, want: []string{"url", "twilio"}},
		{name: "sendgrid", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "sg", Scheme: SchemeSendGrid, PublicKeys: []string{sendGridKey}}
		}},
		{name: "sendgrid without keys", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "sg", Scheme: SchemeSendGrid}
		}, want: []string{"public_keys"}},
		{name: "sendgrid bad key", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "sg", Scheme: SchemeSendGrid, PublicKeys: []string{"bm90IGEga2V5"}}
		}, want: []string{"public_keys[0]"}},
		{name: "sendgrid with secrets", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "sg", Scheme: SchemeSendGrid, PublicKeys: []string{sendGridKey}, Secrets: []string{"whatever-1"}}
		}, want: []string{"secrets", "public_keys"}},
		{name: "public keys on hmac", modify: func(s *Source) { s.PublicKeys = []string{sendGridKey} }, want: []string{"public_keys", "sendgrid"}},
		{name: "bearer short token", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "b", Scheme: SchemeBearer, Secrets: []string{"short-token"}, EventType: ValueFrom{Field: "type"}}
		}, want: []string{"secrets[0]", "16"}},
		{name: "bearer needs an event type", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "b", Scheme: SchemeBearer, Secrets: []string{"long-enough-token-1"}}
		}, want: []string{"event_type", "no convention"}},
		{name: "none with secrets", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "n", Scheme: SchemeNone, Secrets: []string{"whatever-1"}, EventType: ValueFrom{Value: "a.b"}}
		}, want: []string{"secrets", "none"}},
		{name: "signature on github", modify: func(s *Source) { s.Scheme = SchemeGitHub }, want: []string{"signature", "hmac-sha256"}},
		{name: "tolerance on hmac", modify: func(s *Source) { s.Tolerance = Duration(time.Minute) }, want: []string{"tolerance", "no timestamp"}},
		{name: "tolerance too long", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "st", Scheme: SchemeStripe, Secrets: []string{"whsec_abc123456"}, Tolerance: Duration(2 * time.Hour)}
		}, want: []string{"tolerance", "1h"}},
		{name: "fixed event id", modify: func(s *Source) { s.EventID = ValueFrom{Value: "x"} }, want: []string{"event_id.value"}},
		{name: "cloudevents source", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: CloudEventsSource, Scheme: SchemeBearer, Secrets: []string{"long-enough-token-1"}}
		}},
		{name: "cloudevents source with a provider scheme", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: CloudEventsSource, Scheme: SchemeGitHub, Secrets: []string{"gh-secret-1"}}
		}, want: []string{"scheme", "cloudevents"}},
		{name: "cloudevents source with an event type", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: CloudEventsSource, Scheme: SchemeNone, EventType: ValueFrom{Value: "a.b"}}
		}, want: []string{"event_type", "CloudEvents"}},
		{name: "negative max body", modify: func(s *Source) { s.MaxBodyBytes = -1 }, want: []string{"max_body_bytes", "-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSource()
			tc.modify(&s)
			err := s.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", s, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error", s)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			for _, sec := range s.Secrets {
				if len(sec) >= 8 && strings.Contains(err.Error(), sec) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

// sendGridKey is a P-256 public key as SendGrid shows it.
const sendGridKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEihGkk8+3qo7tSdF8ly2rlkCObNFXtVyHbBgwvpnjVXWAkLCD/DGUBfv06fPo5Rm6ILnGp2FhwN6kDYDtGDj+WA=="

func TestDurationJSON(t *testing.T) {
	var s Source
	if err := json.Unmarshal([]byte(`{"tolerance":"90s"}`), &s); err != nil || time.Duration(s.Tolerance) != 90*time.Second {
		t.Fatalf("tolerance %s, %v", time.Duration(s.Tolerance), err)
	}
	out, _ := json.Marshal(Source{Tolerance: Duration(time.Minute)})
	if !strings.Contains(string(out), `"tolerance":"1m0s"`) {
		t.Errorf("marshalled %s", out)
	}
	for _, bad := range []string{`{"tolerance":300}`, `{"tolerance":"5 minutes"}`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil || !strings.Contains(err.Error(), "duration") {
			t.Errorf("%s: err = %v, want a duration error", bad, err)
		}
	}
}

func TestTenantRateLimit(t *testing.T) {
	for _, tc := range []struct {
		rl RateLimit
		ok bool
	}{
		{RateLimit{}, true}, {RateLimit{PerSecond: 10, Burst: 20}, true}, {RateLimit{PerSecond: 0.5, Burst: 1}, true},
		{RateLimit{PerSecond: 10}, false}, {RateLimit{Burst: 5}, false}, {RateLimit{PerSecond: -1, Burst: 1}, false},
		{RateLimit{PerSecond: MaxRate, Burst: MaxRate}, true}, {RateLimit{PerSecond: 1, Burst: 1 << 40}, false}, {RateLimit{PerSecond: 1e12, Burst: 1}, false},
	} {
		err := Tenant{ID: "acme", RateLimit: tc.rl}.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "rate_limit")) {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.rl, err, tc.ok)
		}
	}
}

func TestSourceBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		max, want int64
	}{
		{0, DefaultMaxBodyBytes},
		{-5, DefaultMaxBodyBytes},
		{1, 1},
		{10 << 20, 10 << 20},
	} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			if got := (Source{MaxBodyBytes: tc.max}).BodyLimit(); got != tc.want {
				t.Errorf("BodyLimit with max %d = %d, want %d", tc.max, got, tc.want)
			}
		})
	}
	if DefaultMaxBodyBytes != 1<<20 {
		t.Errorf("DefaultMaxBodyBytes = %d, want 1 MiB", DefaultMaxBodyBytes)
	}
}

func TestTenantValidate(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"acme", true}, {"acme-2_b", true}, {"", false}, {"a.b", false}, {"a b", false}, {"a*", false}, {strings.Repeat("x", 65), false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			err := Tenant{ID: tc.id}.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate(%q) = %v", tc.id, err)
			}
			if err != nil && !strings.Contains(err.Error(), "tenant") {
				t.Errorf("error %q does not name the tenant", err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	if got := SourceKey("acme", "shop"); got != "acme.shop" {
		t.Errorf("SourceKey = %q", got)
	}
	if got := FlowKey("acme", "handle_event"); got != "acme.handle_event" {
		t.Errorf("FlowKey = %q", got)
	}
	for _, tc := range []struct {
		key, tenant, name string
		ok                bool
	}{
		{"acme.shop", "acme", "shop", true},
		{"acme.a.b", "acme", "a.b", true},
		{"acme", "", "", false},
		{".shop", "", "", false},
		{"acme.", "", "", false},
		{"", "", "", false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			tn, n, ok := SplitKey(tc.key)
			if ok != tc.ok || (ok && (tn != tc.tenant || n != tc.name)) {
				t.Errorf("SplitKey(%q) = %q, %q, %v; want %q, %q, %v", tc.key, tn, n, ok, tc.tenant, tc.name, tc.ok)
			}
		})
	}
	t.Run("round trip", func(t *testing.T) {
		tn, n, ok := SplitKey(SourceKey("acme", "shop"))
		if !ok || tn != "acme" || n != "shop" {
			t.Errorf("SplitKey(SourceKey) = %q, %q, %v", tn, n, ok)
		}
	})
}

func TestRegistry(t *testing.T) {
	shop := validSource()
	t.Run("empty", func(t *testing.T) {
		r := NewRegistry()
		if _, ok := r.Tenant("acme"); ok {
			t.Error("empty registry has tenant acme")
		}
		if ids := r.Tenants(); len(ids) != 0 {
			t.Errorf("Tenants = %v", ids)
		}
	})
	t.Run("source needs its tenant", func(t *testing.T) {
		r := NewRegistry()
		r.PutSource(shop)
		if _, ok := r.Source("acme", "shop"); ok {
			t.Fatal("source of a missing tenant is found")
		}
		r.PutTenant(Tenant{ID: "acme"})
		got, ok := r.Source("acme", "shop")
		if !ok || got.Signature.Header != shop.Signature.Header {
			t.Fatalf("Source after the tenant arrived = %+v, %v", got, ok)
		}
		if _, ok := r.Source("other", "shop"); ok {
			t.Error("source found under another tenant")
		}
		r.DeleteTenant("acme")
		if _, ok := r.Source("acme", "shop"); ok {
			t.Error("source still reachable after its tenant was deleted")
		}
		r.PutTenant(Tenant{ID: "acme"})
		if _, ok := r.Source("acme", "shop"); !ok {
			t.Error("source not reachable after its tenant came back")
		}
	})
	t.Run("replace and delete", func(t *testing.T) {
		r := NewRegistry()
		r.PutTenant(Tenant{ID: "acme", DisplayName: "Acme"})
		r.PutTenant(Tenant{ID: "acme", DisplayName: "Acme Inc", Suspended: true})
		if got, _ := r.Tenant("acme"); got.DisplayName != "Acme Inc" || !got.Suspended {
			t.Errorf("Tenant after replace = %+v", got)
		}
		r.PutSource(shop)
		changed := shop
		changed.Disabled = true
		r.PutSource(changed)
		if got, _ := r.Source("acme", "shop"); !got.Disabled {
			t.Errorf("Source after replace = %+v", got)
		}
		r.DeleteSource("acme", "shop")
		if _, ok := r.Source("acme", "shop"); ok {
			t.Error("deleted source still found")
		}
		r.DeleteSource("acme", "never") // deleting nothing is fine
		r.DeleteTenant("acme")
		if _, ok := r.Tenant("acme"); ok {
			t.Error("deleted tenant still found")
		}
	})
	t.Run("tenants sorted", func(t *testing.T) {
		r := NewRegistry()
		for _, id := range []string{"zeta", "acme", "mid"} {
			r.PutTenant(Tenant{ID: id})
		}
		if got := strings.Join(r.Tenants(), ","); got != "acme,mid,zeta" {
			t.Errorf("Tenants = %s", got)
		}
	})
}

func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	const writers, rounds = 4, 200
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				id := fmt.Sprintf("t%d", (w*rounds+i)%16)
				r.PutTenant(Tenant{ID: id})
				s := validSource()
				s.Tenant = id
				r.PutSource(s)
				if i%3 == 0 {
					r.DeleteSource(id, s.Name)
				}
				if i%7 == 0 {
					r.DeleteTenant(id)
				}
			}
		})
		wg.Go(func() {
			for i := range rounds {
				id := fmt.Sprintf("t%d", i%16)
				if s, ok := r.Source(id, "shop"); ok && s.Tenant != id {
					t.Errorf("Source(%s) returned a source of %s", id, s.Tenant)
				}
				r.Tenant(id)
				r.Tenants()
			}
		})
	}
	wg.Wait()
	for _, id := range r.Tenants() {
		if _, ok := r.Tenant(id); !ok {
			t.Errorf("Tenants lists %s but Tenant does not find it", id)
		}
	}
}
