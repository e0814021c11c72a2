//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// orderRef finds the order id the e2e flow writes into every email text and
// SMS body ("order=<id>").
var orderRef = regexp.MustCompile(`order=([A-Za-z0-9_-]+)`)

// fakeProvider counts the messages a fake SendGrid or Twilio accepted, per
// order id, and remembers what it refused.
type fakeProvider struct {
	name string

	mu      sync.Mutex
	byOrder map[string]int
	total   int
	refused []string
}

func newFakeProvider(name string) *fakeProvider {
	return &fakeProvider{name: name, byOrder: map[string]int{}}
}

func (f *fakeProvider) accept(order string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total++
	f.byOrder[order]++
	return f.total
}

func (f *fakeProvider) refuse(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.refused = append(f.refused, msg)
	f.mu.Unlock()
	http.Error(w, msg, status)
}

// counts returns the messages accepted per order id, their total and the
// refused requests.
func (f *fakeProvider) counts() (map[string]int, int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]int, len(f.byOrder))
	for k, v := range f.byOrder {
		m[k] = v
	}
	return m, f.total, append([]string(nil), f.refused...)
}

// fakeSendGrid answers POST /v3/mail/send like SendGrid: 202 with an
// X-Message-Id, for requests with the expected API key.
func fakeSendGrid(t *testing.T, apiKey string) (*fakeProvider, *httptest.Server) {
	f := newFakeProvider("SendGrid")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" {
			f.refuse(w, http.StatusNotFound, "%s %s", r.Method, r.URL.Path)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+apiKey {
			f.refuse(w, http.StatusUnauthorized, "authorization %q", got)
			return
		}
		var mail struct {
			Content []struct{ Value string } `json:"content"`
		}
		if err := json.NewDecoder(r.Body).Decode(&mail); err != nil || len(mail.Content) == 0 {
			f.refuse(w, http.StatusBadRequest, "body: %v", err)
			return
		}
		m := orderRef.FindStringSubmatch(mail.Content[0].Value)
		if m == nil {
			f.refuse(w, http.StatusBadRequest, "no order in %q", mail.Content[0].Value)
			return
		}
		n := f.accept(m[1])
		w.Header().Set("X-Message-Id", fmt.Sprintf("sg-%d", n))
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// fakeTwilio answers POST /2010-04-01/Accounts/{sid}/Messages.json like
// Twilio: 201 with the message's JSON, for requests with the expected
// account and auth token.
func fakeTwilio(t *testing.T, accountSID, authToken string) (*fakeProvider, *httptest.Server) {
	f := newFakeProvider("Twilio")
	path := "/2010-04-01/Accounts/" + accountSID + "/Messages.json"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != path {
			f.refuse(w, http.StatusNotFound, "%s %s", r.Method, r.URL.Path)
			return
		}
		if user, pass, ok := r.BasicAuth(); !ok || user != accountSID || pass != authToken {
			f.refuse(w, http.StatusUnauthorized, "basic auth of %q", user)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			f.refuse(w, http.StatusBadRequest, "body: %v", err)
			return
		}
		form, err := url.ParseQuery(string(b))
		if err != nil {
			f.refuse(w, http.StatusBadRequest, "form: %v", err)
			return
		}
		m := orderRef.FindStringSubmatch(form.Get("Body"))
		if m == nil {
			f.refuse(w, http.StatusBadRequest, "no order in %q", form.Get("Body"))
			return
		}
		n := f.accept(m[1])
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"sid": fmt.Sprintf("SM%032d", n), "status": "queued", "to": form.Get("To"),
			"body": strings.TrimSpace(form.Get("Body")),
		})
	}))
	t.Cleanup(srv.Close)
	return f, srv
}
