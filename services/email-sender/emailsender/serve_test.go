package emailsender

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/sender"
	"github.com/greentic/events/pkg/sender/sendertest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
)

func serviceConfig(provider string, env map[string]string, url string) Config {
	return Config{
		Config:   sendertest.Config(),
		Provider: provider, SendGridURL: url, DefaultFrom: "noreply@example.com",
		Lookup: func(n string) (string, bool) { v, ok := env[n]; return v, ok },
	}
}

// run starts the email sender and returns a runtime to publish and read with.
func run(t *testing.T, cfg Config) *service.Runtime {
	t.Helper()
	return sendertest.Run(t, "email_sender_tenants", func(ctx context.Context, rt *service.Runtime) error { return Serve(ctx, rt, cfg) })
}

func publish(t *testing.T, rt *service.Runtime, cmd *eventsv1.EmailCommand) {
	t.Helper()
	sendertest.Publish(t, rt, bus.ChannelEmail, cmd)
}

func welcome() *eventsv1.EmailCommand {
	return &eventsv1.EmailCommand{
		Id:      "ev1:welcome:mail",
		Origin:  &eventsv1.CommandOrigin{Tenant: "acme", EventId: "ev1", Flow: "welcome", Node: "mail"},
		To:      []*eventsv1.EmailAddress{{Email: "ann@example.com"}},
		Subject: "Welcome", Text: "Hello Ann",
	}
}

// TestSendGridThroughTheBus: a command on the bus reaches the fake
// SendGrid exactly once, with the deployment key and default sender, and
// email.sent carries SendGrid's message id.
func TestSendGridThroughTheBus(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	var auth []string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		auth = append(auth, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("X-Message-Id", "sg-123")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer fake.Close()
	rt := run(t, serviceConfig(ProviderAuto, map[string]string{EnvAPIKey: "SG.test-key"}, fake.URL))
	publish(t, rt, welcome())
	ev := sendertest.WaitEvent(t, rt, "email.sent")
	if ev.Metadata[event.MetaProviderMessageID] != "sg-123" || ev.Metadata[event.MetaCommandID] != "ev1:welcome:mail" {
		t.Errorf("email.sent metadata = %v", ev.Metadata)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("SendGrid got %d requests, want 1", len(bodies))
	}
	if auth[0] != "POST /v3/mail/send Bearer SG.test-key" {
		t.Errorf("request %q", auth[0])
	}
	if from, _ := bodies[0]["from"].(map[string]any); from["email"] != "noreply@example.com" {
		t.Errorf("from = %v, want the deployment default", bodies[0]["from"])
	}
	if args, _ := bodies[0]["custom_args"].(map[string]any); args[event.SendGridArgCommandID] != "ev1:welcome:mail" {
		t.Errorf("custom_args = %v", bodies[0]["custom_args"])
	}
}

// TestCaptureMode: with no API key, auto captures: nothing is sent and the
// whole message is published as email.captured.
func TestCaptureMode(t *testing.T) {
	rt := run(t, serviceConfig(ProviderAuto, nil, "http://127.0.0.1:1"))
	publish(t, rt, welcome())
	ev := sendertest.WaitEvent(t, rt, "email.captured")
	var pl map[string]any
	if err := json.Unmarshal(ev.Payload, &pl); err != nil {
		t.Fatal(err)
	}
	msg, _ := pl["message"].(map[string]any)
	if pl["provider"] != sender.CaptureProvider || msg["subject"] != "Welcome" || !strings.Contains(string(ev.Payload), "Hello Ann") {
		t.Errorf("email.captured payload = %s", ev.Payload)
	}
}

func TestSendGridRequiresKey(t *testing.T) {
	srv := natstest.RunServer(t)
	rt := servicetest.Runtime(t, srv.URL(), "test")
	err := Serve(context.Background(), rt, serviceConfig(ProviderSendGrid, nil, "https://api.sendgrid.com"))
	if err == nil || !strings.Contains(err.Error(), EnvAPIKey) {
		t.Fatalf("Serve without a key: %v, want an error naming %s", err, EnvAPIKey)
	}
}
