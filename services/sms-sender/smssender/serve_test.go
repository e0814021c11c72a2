package smssender

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

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
		Provider: provider, TwilioURL: url, StatusCallbackURL: "https://hooks.example.com/v1/webhooks/{tenant}/twilio",
		Lookup: func(n string) (string, bool) { v, ok := env[n]; return v, ok },
	}
}

// run starts the SMS sender and returns a runtime to publish and read with.
func run(t *testing.T, cfg Config) *service.Runtime {
	t.Helper()
	return sendertest.Run(t, "sms_sender_tenants", func(ctx context.Context, rt *service.Runtime) error { return Serve(ctx, rt, cfg) })
}

func publish(t *testing.T, rt *service.Runtime, cmd *eventsv1.SmsCommand) {
	t.Helper()
	sendertest.Publish(t, rt, bus.ChannelSMS, cmd)
}

func welcome() *eventsv1.SmsCommand {
	return &eventsv1.SmsCommand{
		Id:     "ev1:welcome:text",
		Origin: &eventsv1.CommandOrigin{Tenant: "acme", EventId: "ev1", Flow: "welcome", Node: "text"},
		To:     "+15005550006", From: "+15005550001", Body: "Hello Ann",
	}
}

// TestTwilioThroughTheBus: a command on the bus reaches the fake Twilio
// exactly once, with the deployment credentials and the status callback
// naming the command, and sms.sent carries the message SID.
func TestTwilioThroughTheBus(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	var reqs []string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		user, pass, _ := r.BasicAuth()
		mu.Lock()
		forms = append(forms, r.PostForm)
		reqs = append(reqs, r.Method+" "+r.URL.Path+" "+user+":"+pass)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM123","status":"queued"}`)
	}))
	defer fake.Close()
	rt := run(t, serviceConfig(ProviderAuto, map[string]string{EnvAccountSID: "AC123", EnvAuthToken: "tok"}, fake.URL))
	publish(t, rt, welcome())
	ev := sendertest.WaitEvent(t, rt, "sms.sent")
	if ev.Metadata[event.MetaProviderMessageID] != "SM123" || ev.Metadata[event.MetaCommandID] != "ev1:welcome:text" {
		t.Errorf("sms.sent metadata = %v", ev.Metadata)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(forms) != 1 {
		t.Fatalf("Twilio got %d requests, want 1", len(forms))
	}
	if reqs[0] != "POST /2010-04-01/Accounts/AC123/Messages.json AC123:tok" {
		t.Errorf("request %q", reqs[0])
	}
	want := "https://hooks.example.com/v1/webhooks/acme/twilio?" + event.TwilioCallbackCommandID + "=ev1%3Awelcome%3Atext"
	if got := forms[0].Get("StatusCallback"); got != want {
		t.Errorf("StatusCallback = %q, want %q", got, want)
	}
	if forms[0].Get("To") != "+15005550006" || forms[0].Get("Body") != "Hello Ann" {
		t.Errorf("form = %v", forms[0])
	}
}

// TestCaptureMode: with no credentials, auto captures: nothing is sent and
// the whole message is published as sms.captured.
func TestCaptureMode(t *testing.T) {
	rt := run(t, serviceConfig(ProviderAuto, nil, "http://127.0.0.1:1"))
	publish(t, rt, welcome())
	ev := sendertest.WaitEvent(t, rt, "sms.captured")
	var pl map[string]any
	if err := json.Unmarshal(ev.Payload, &pl); err != nil {
		t.Fatal(err)
	}
	msg, _ := pl["message"].(map[string]any)
	if pl["provider"] != sender.CaptureProvider || msg["body"] != "Hello Ann" {
		t.Errorf("sms.captured payload = %s", ev.Payload)
	}
}

func TestTwilioRequiresCredentials(t *testing.T) {
	srv := natstest.RunServer(t)
	rt := servicetest.Runtime(t, srv.URL(), "test")
	err := Serve(context.Background(), rt, serviceConfig(ProviderTwilio, map[string]string{EnvAccountSID: "AC1"}, "https://api.twilio.com"))
	if err == nil || !strings.Contains(err.Error(), EnvAuthToken) {
		t.Fatalf("Serve without a token: %v, want an error naming %s", err, EnvAuthToken)
	}
}

// TestMalformedCredentialsStopTheSender: a deployment account the Twilio
// API could never accept stops the sender at start, naming the variable
// and never the secret, instead of dead-lettering every message.
func TestMalformedCredentialsStopTheSender(t *testing.T) {
	srv := natstest.RunServer(t)
	rt := servicetest.Runtime(t, srv.URL(), "test")
	for name, env := range map[string]map[string]string{
		"token with symbols": {EnvAccountSID: "AC0123456789abcdef0123456789abcdef", EnvAuthToken: "not/a+token=="},
		"sid with a slash":   {EnvAccountSID: "AC01/../x", EnvAuthToken: "0123456789abcdef0123456789abcdef"},
		"half an API key":    {EnvAccountSID: "AC0123456789abcdef0123456789abcdef", EnvAPIKeySID: "SK0123456789abcdef"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := Serve(ctx, rt, serviceConfig(ProviderTwilio, env, "http://127.0.0.1:1"))
			if err == nil || !strings.Contains(err.Error(), EnvAccountSID) {
				t.Fatalf("Serve = %v, want an error naming %s", err, EnvAccountSID)
			}
			for _, v := range env {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("the error shows a credential: %v", err)
				}
			}
		})
	}
}
