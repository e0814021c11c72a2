package standalone

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greentic/events/pkg/event"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/services/email-sender/emailsender"
	"github.com/greentic/events/services/sms-sender/smssender"
)

// fakeProvider records the requests of a fake SendGrid or Twilio.
type fakeProvider struct {
	mu   sync.Mutex
	reqs []string
}

func (f *fakeProvider) server(t *testing.T, status int, header, body string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, r.URL.Path+" "+string(b))
		f.mu.Unlock()
		if k, v, ok := strings.Cut(header, ": "); ok {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeProvider) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

// TestSendersEndToEnd: signed webhooks run the example flow's email and
// sms nodes; the senders deliver each command to the fake SendGrid and
// Twilio exactly once and report email.sent and sms.sent.
func TestSendersEndToEnd(t *testing.T) {
	var sg, tw fakeProvider
	sgSrv := sg.server(t, http.StatusAccepted, "X-Message-Id: sg-e2e", "")
	twSrv := tw.server(t, http.StatusCreated, "Content-Type: application/json", `{"sid":"SMe2e","status":"queued"}`)
	env := map[string]string{emailsender.EnvAPIKey: "SG.e2e", smssender.EnvAccountSID: "ACe2e", smssender.EnvAuthToken: "e2etoken0123"}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	r, _ := startWith(t, t.TempDir(), func(c *Config) {
		if os.Getenv("GREENTIC_TEST_LOG") != "" {
			c.LogLevel = "info"
		}
		c.Email.Provider, c.Email.SendGridURL, c.Email.Lookup = emailsender.ProviderSendGrid, sgSrv.URL, lookup
		c.SMS.Provider, c.SMS.TwilioURL, c.SMS.Lookup = smssender.ProviderTwilio, twSrv.URL, lookup
		c.SMS.StatusCallbackURL = "https://hooks.example.com/v1/webhooks/{tenant}/twilio"
	})
	for _, body := range []string{
		`{"type":"order.created","id":"o-7","customer":{"email":"ann@example.com"}}`,
		`{"type":"order.shipped","id":"s-7","customer":{"phone":"+15005550009"},"tracking":"TR1"}`,
	} {
		if code, out := r.post(t, "/v1/webhooks/demo/generic", []byte(body), sign([]byte(body))); code != http.StatusAccepted {
			t.Fatalf("webhook: %d %v", code, out)
		}
	}
	ctx := context.Background()
	for _, tc := range []struct{ subject, providerID string }{
		{"greentic.events.dev.demo.email.sent", "sg-e2e"},
		{"greentic.events.dev.demo.sms.sent", "SMe2e"},
	} {
		natstest.Eventually(t, 20*time.Second, tc.subject, func() bool {
			m, err := r.stream.GetLastMsgForSubject(ctx, tc.subject)
			if err != nil {
				return false
			}
			ev, err := event.Unmarshal(m.Data)
			if err != nil || ev.Metadata[event.MetaProviderMessageID] != tc.providerID {
				t.Fatalf("%s: %v %v", tc.subject, ev, err)
			}
			return true
		})
	}
	// Give a duplicate every chance to show before counting.
	time.Sleep(300 * time.Millisecond)
	sgReqs, twReqs := sg.requests(), tw.requests()
	if len(sgReqs) != 1 || !strings.HasPrefix(sgReqs[0], "/v3/mail/send ") || !strings.Contains(sgReqs[0], "ann@example.com") || !strings.Contains(sgReqs[0], "Order o-7 confirmed") {
		t.Fatalf("SendGrid requests: %q", sgReqs)
	}
	if len(twReqs) != 1 || !strings.HasPrefix(twReqs[0], "/2010-04-01/Accounts/ACe2e/Messages.json ") {
		t.Fatalf("Twilio requests: %q", twReqs)
	}
	form, err := url.ParseQuery(strings.SplitN(twReqs[0], " ", 2)[1])
	if err != nil || form.Get("To") != "+15005550009" || !strings.Contains(form.Get("Body"), "TR1") ||
		!strings.HasPrefix(form.Get("StatusCallback"), "https://hooks.example.com/v1/webhooks/demo/twilio?greentic_command_id=") {
		t.Fatalf("Twilio form %v (%v)", form, err)
	}
}
