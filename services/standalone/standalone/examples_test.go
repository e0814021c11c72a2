package standalone

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/greentic/events/pkg/bundle"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/services/ingress-webhook/webhooksend"
)

// TestExampleSources sends the example payload of every source of the
// example bundle's demo tenant, signed as examples/README.md shows, to a
// running standalone: each is accepted, stored with its provider's event
// type, and a resend of the same delivery is a duplicate.
func TestExampleSources(t *testing.T) {
	r, stop := start(t, t.TempDir())
	defer stop()
	const examples = "../../../examples"
	b, err := bundle.Load(filepath.Join(examples, "bundle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(examples, "keys", "sendgrid-demo-private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := webhooksend.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"generic":           {"order.created"},
		"github":            {"github.issues.opened"},
		"stripe":            {"stripe.payment_intent.succeeded"},
		"twilio":            {"sms.delivered"},
		"sendgrid":          {"email.delivered", "email.opened"},
		"standard-webhooks": {"invoice.paid"},
		"bearer":            {"ticket.created"},
		"cloudevents":       {"com.example.order.created"},
	}
	var sources []tenant.Source
	for _, tn := range b.Tenants {
		if tn.ID == "demo" {
			sources = tn.Sources
		}
	}
	seen := map[string]bool{}
	for _, src := range sources {
		t.Run(src.Name, func(t *testing.T) {
			seen[src.Name] = true
			types, ok := want[src.Name]
			if !ok {
				t.Fatalf("source %s of the example bundle has no expectation here", src.Name)
			}
			ext := ".json"
			if src.Scheme == tenant.SchemeTwilio {
				ext = ".form"
			}
			body, err := os.ReadFile(filepath.Join(examples, "payloads", src.Name+ext))
			if src.Name == "generic" {
				body, err = []byte(`{"type":"order.created","id":"example-1"}`), nil
			}
			if err != nil {
				t.Fatalf("example payload: %v", err)
			}
			body = bytes.TrimSpace(body)
			send := func() (int, []byte) {
				req, err := webhooksend.Build(webhooksend.Request{
					BaseURL: "http://" + r.ep.Ingress, Source: src, Body: body, Now: time.Now(),
					DeliveryID: webhooksend.DeliveryIDFor(body), SendGridKey: key,
				})
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, raw
			}
			code, raw := send()
			if code != http.StatusAccepted {
				t.Fatalf("answer %d %s, want 202", code, raw)
			}
			for _, typ := range types {
				subject := "greentic.events.dev.demo." + typ
				if n := r.count(t, subject); n != 1 {
					t.Errorf("%d events on %s, want 1 (answer %s)", n, subject, raw)
				}
			}
			// The same delivery again: 2xx, marked duplicate, nothing new.
			code, raw = send()
			var single Accepted
			var batch struct{ Events []Accepted }
			dup := false
			if json.Unmarshal(raw, &batch) == nil && len(batch.Events) > 0 {
				dup = true
				for _, a := range batch.Events {
					dup = dup && a.Duplicate
				}
			} else if json.Unmarshal(raw, &single) == nil {
				dup = single.Duplicate
			}
			if code != http.StatusAccepted || !dup {
				t.Fatalf("resend answered %d %s, want 202 marked duplicate", code, raw)
			}
			for _, typ := range types {
				if n := r.count(t, "greentic.events.dev.demo."+typ); n != 1 {
					t.Errorf("%d events of %s after a resend, want 1", n, typ)
				}
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the example bundle lacks source %s", name)
		}
	}
}

// Accepted mirrors the ingress's answer for one event.
type Accepted struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Duplicate bool   `json:"duplicate"`
}
