package emailsender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/sender"
	"github.com/greentic/events/pkg/sender/sendertest"
)

const (
	testAPIKey     = "SG.test-key-0123456789.abcdefghijklmnopqrstuvwxyz"
	testMessageID  = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
	testCommandID  = "evt-1:welcome:send"
	testTemplateID = "d-0123456789abcdef0123456789abcdef"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newFakeSendGrid starts a server standing in for api.sendgrid.com.
func newFakeSendGrid(t *testing.T, answer http.HandlerFunc) *sendertest.Fake {
	t.Helper()
	return sendertest.NewFake(t, "sendgrid", answer)
}

func accepted(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Message-Id", testMessageID)
	w.WriteHeader(http.StatusAccepted)
}

// sendGridError answers status with body and the given headers.
func sendGridError(status int, body string, header map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func newSendGrid(f *sendertest.Fake) *SendGrid {
	return &SendGrid{BaseURL: f.URL, Now: func() time.Time { return testNow }}
}

func account() sender.Account {
	return sender.Account{Name: "marketing", Key: "acme/marketing", Credentials: map[string]string{"api_key": testAPIKey}}
}

// fullCommand uses every field of EmailCommand.
func fullCommand() *eventsv1.EmailCommand {
	return &eventsv1.EmailCommand{
		Id:     testCommandID,
		Origin: &eventsv1.CommandOrigin{Tenant: "acme", EventId: "evt-1", EventType: "user.created", Flow: "welcome", Node: "send"},
		From:   &eventsv1.EmailAddress{Email: "noreply@acme.example", Name: "Acme"},
		To: []*eventsv1.EmailAddress{
			{Email: "ada@example.com", Name: "Ada Lovelace"},
			{Email: "bob@example.com"},
		},
		Cc:                  []*eventsv1.EmailAddress{{Email: "carol@example.com", Name: "Carol"}},
		Bcc:                 []*eventsv1.EmailAddress{{Email: "audit@acme.example"}},
		ReplyTo:             &eventsv1.EmailAddress{Email: "support@acme.example", Name: "Support"},
		Subject:             "Welcome, Ada",
		Text:                "Hello Ada",
		Html:                "<p>Hello Ada</p>",
		TemplateId:          testTemplateID,
		DynamicTemplateData: []byte(`{"name":"Ada","vip":true,"order":{"id":"o-7","total":12345678901234567890,"items":[1,2.5]}}`),
		Attachments: []*eventsv1.EmailAttachment{
			{Filename: "terms.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7 terms")},
			{Filename: "logo.png", ContentType: "image/png", Content: []byte("\x89PNG\r\n"), Disposition: "inline", ContentId: "logo"},
		},
		Categories: []string{"welcome", "onboarding"},
		CustomArgs: map[string]string{
			"campaign":                 "spring",
			event.SendGridArgCommandID: "spoofed",
			event.SendGridArgEventID:   "spoofed",
		},
		SendAt:    testNow.Add(time.Hour).Unix(),
		Sandbox:   true,
		Account:   "marketing",
		CreatedAt: testNow.UnixMilli(),
	}
}

// fullCommandBody is the request body of fullCommand.
const fullCommandBody = `{
  "from": {"email": "noreply@acme.example", "name": "Acme"},
  "subject": "Welcome, Ada",
  "personalizations": [{
    "to": [
      {"email": "ada@example.com", "name": "Ada Lovelace"},
      {"email": "bob@example.com"}
    ],
    "cc": [{"email": "carol@example.com", "name": "Carol"}],
    "bcc": [{"email": "audit@acme.example"}],
    "dynamic_template_data": {
      "name": "Ada",
      "vip": true,
      "order": {"id": "o-7", "total": 12345678901234567890, "items": [1, 2.5]}
    }
  }],
  "content": [
    {"type": "text/plain", "value": "Hello Ada"},
    {"type": "text/html", "value": "<p>Hello Ada</p>"}
  ],
  "attachments": [
    {"content": "JVBERi0xLjcgdGVybXM=", "type": "application/pdf", "filename": "terms.pdf", "disposition": "attachment"},
    {"content": "iVBORw0K", "type": "image/png", "filename": "logo.png", "disposition": "inline", "content_id": "logo"}
  ],
  "template_id": "d-0123456789abcdef0123456789abcdef",
  "categories": ["welcome", "onboarding"],
  "custom_args": {
    "campaign": "spring",
    "greentic_command_id": "evt-1:welcome:send",
    "greentic_event_id": "evt-1"
  },
  "send_at": 1772370000,
  "mail_settings": {"sandbox_mode": {"enable": true}},
  "reply_to": {"email": "support@acme.example", "name": "Support"}
}`

// templateCommand sends a dynamic template with no subject or content of
// its own.
func templateCommand() *eventsv1.EmailCommand {
	return &eventsv1.EmailCommand{
		Id:                  "evt-2:orders:confirm",
		Origin:              &eventsv1.CommandOrigin{Tenant: "acme", EventId: "evt-2", Flow: "orders", Node: "confirm"},
		From:                &eventsv1.EmailAddress{Email: "orders@acme.example"},
		To:                  []*eventsv1.EmailAddress{{Email: "ada@example.com", Name: "Ada"}},
		TemplateId:          testTemplateID,
		DynamicTemplateData: []byte(`{"order_id": "o-7", "lines": [{"sku": "A1", "qty": 2}]}`),
	}
}

const templateCommandBody = `{
  "from": {"email": "orders@acme.example"},
  "personalizations": [{
    "to": [{"email": "ada@example.com", "name": "Ada"}],
    "dynamic_template_data": {"order_id": "o-7", "lines": [{"sku": "A1", "qty": 2}]}
  }],
  "template_id": "d-0123456789abcdef0123456789abcdef",
  "custom_args": {"greentic_command_id": "evt-2:orders:confirm", "greentic_event_id": "evt-2"}
}`

// decodeJSON decodes b keeping numbers as written, so that a number that
// lost precision on the way compares unequal.
func decodeJSON(t *testing.T, what string, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", what, err, b)
	}
	return v
}

func checkRequest(t *testing.T, got sendertest.Request, wantBody string) {
	t.Helper()
	if got.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", got.Method)
	}
	if got.Path != "/v3/mail/send" {
		t.Errorf("path = %s, want /v3/mail/send", got.Path)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer "+testAPIKey {
		t.Errorf("Authorization = %q, want Bearer and the API key", a)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	gotBody := decodeJSON(t, "request body", got.Body)
	want := decodeJSON(t, "expected body", []byte(wantBody))
	if !reflect.DeepEqual(gotBody, want) {
		t.Errorf("request body:\n%s\nwant:\n%s", got.Body, wantBody)
	}
}

func asProviderError(t *testing.T, err error) *sender.ProviderError {
	t.Helper()
	var pe *sender.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *sender.ProviderError", err, err)
	}
	return pe
}

// checkNoKey fails if err mentions the API key.
func checkNoKey(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), testAPIKey) {
		t.Errorf("error %q contains the API key", err)
	}
}

func TestSendGridName(t *testing.T) {
	if got := (&SendGrid{}).Name(); got != "sendgrid" {
		t.Errorf("Name() = %q, want sendgrid", got)
	}
}

func TestSendGridSendFullCommand(t *testing.T) {
	f := newFakeSendGrid(t, accepted)
	cmd := fullCommand()
	got, err := newSendGrid(f).Send(context.Background(), cmd, account())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if want := (sender.Receipt{ProviderID: testMessageID, Status: "accepted"}); got != want {
		t.Errorf("receipt = %+v, want %+v", got, want)
	}
	checkRequest(t, f.Only(t), fullCommandBody)
	if cmd.CustomArgs[event.SendGridArgCommandID] != "spoofed" {
		t.Error("Send modified the command's custom args")
	}
}

func TestSendGridSendTemplateCommand(t *testing.T) {
	f := newFakeSendGrid(t, accepted)
	got, err := newSendGrid(f).Send(context.Background(), templateCommand(), account())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got.ProviderID != testMessageID || got.Status != "accepted" {
		t.Errorf("receipt = %+v, want X-Message-Id %s, accepted", got, testMessageID)
	}
	checkRequest(t, f.Only(t), templateCommandBody)
}

func TestSendGridSendContentOrder(t *testing.T) {
	for _, tc := range []struct {
		name, text, html, want string
	}{
		{"text only", "Hi", "", `[{"type": "text/plain", "value": "Hi"}]`},
		{"html only", "", "<b>Hi</b>", `[{"type": "text/html", "value": "<b>Hi</b>"}]`},
		{"both", "Hi", "<b>Hi</b>", `[{"type": "text/plain", "value": "Hi"}, {"type": "text/html", "value": "<b>Hi</b>"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSendGrid(t, accepted)
			cmd := &eventsv1.EmailCommand{
				Id:      testCommandID,
				From:    &eventsv1.EmailAddress{Email: "noreply@acme.example"},
				To:      []*eventsv1.EmailAddress{{Email: "ada@example.com"}},
				Subject: "Hi",
				Text:    tc.text,
				Html:    tc.html,
			}
			if _, err := newSendGrid(f).Send(context.Background(), cmd, account()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			var body struct {
				Content    json.RawMessage   `json:"content"`
				CustomArgs map[string]string `json:"custom_args"`
			}
			if err := json.Unmarshal(f.Only(t).Body, &body); err != nil {
				t.Fatal(err)
			}
			if got, want := decodeJSON(t, "content", body.Content), decodeJSON(t, "want", []byte(tc.want)); !reflect.DeepEqual(got, want) {
				t.Errorf("content = %s, want %s", body.Content, tc.want)
			}
			// No origin: the command id alone.
			if want := map[string]string{event.SendGridArgCommandID: testCommandID}; !reflect.DeepEqual(body.CustomArgs, want) {
				t.Errorf("custom_args = %v, want %v", body.CustomArgs, want)
			}
		})
	}
}

func TestSendGridSendOtherSuccess(t *testing.T) {
	f := newFakeSendGrid(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Message-Id", "m-200")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"ok":true}`)
	})
	got, err := newSendGrid(f).Send(context.Background(), templateCommand(), account())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if want := (sender.Receipt{ProviderID: "m-200", Status: "accepted"}); got != want {
		t.Errorf("receipt = %+v, want %+v", got, want)
	}
}

func TestSendGridSendBaseURL(t *testing.T) {
	f := newFakeSendGrid(t, accepted)
	sg := newSendGrid(f)
	sg.BaseURL = f.URL + "/proxy/"
	if _, err := sg.Send(context.Background(), templateCommand(), account()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if p := f.Only(t).Path; p != "/proxy/v3/mail/send" {
		t.Errorf("path = %s, want /proxy/v3/mail/send", p)
	}

	for _, base := range []string{"api.sendgrid.com", "ftp://api.sendgrid.com", "http://", "https://api.sendgrid.com?x=1"} {
		sg := &SendGrid{BaseURL: base}
		_, err := sg.Send(context.Background(), templateCommand(), account())
		if pe := asProviderError(t, err); pe.Code != "invalid_config" || pe.Retryable {
			t.Errorf("BaseURL %q: error = %+v, want permanent Code invalid_config", base, *pe)
		}
	}
}

func TestSendGridSendProviderErrors(t *testing.T) {
	longBody := "<html><body>" + strings.Repeat("upstream failure ", 100) + "</body></html>"
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		want   sender.ProviderError
	}{
		{
			name: "400 with error body",
			answer: sendGridError(400, `{"errors":[
				{"message":"Does not contain a valid address.","field":"personalizations.0.to.0.email","help":"http://sndgr.com/1"},
				{"message":"The subject is required.","field":"subject","help":null}]}`, nil),
			want: sender.ProviderError{
				Status:  400,
				Code:    "personalizations.0.to.0.email",
				Message: "personalizations.0.to.0.email: Does not contain a valid address.; subject: The subject is required.",
			},
		},
		{
			name:   "401",
			answer: sendGridError(401, `{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked","help":null}]}`, nil),
			want:   sender.ProviderError{Status: 401, Message: "The provided authorization grant is invalid, expired, or revoked"},
		},
		{
			name:   "403",
			answer: sendGridError(403, `{"errors":[{"field":"from","message":"The from address does not match a verified Sender Identity."}]}`, nil),
			want:   sender.ProviderError{Status: 403, Code: "from", Message: "from: The from address does not match a verified Sender Identity."},
		},
		{
			name:   "429 with Retry-After",
			answer: sendGridError(429, `{"errors":[{"field":null,"message":"too many requests"}]}`, map[string]string{"Retry-After": "7"}),
			want:   sender.ProviderError{Status: 429, Message: "too many requests", RetryAfter: 7 * time.Second, Retryable: true},
		},
		{
			name: "429 with X-RateLimit-Reset",
			answer: sendGridError(429, `{"errors":[{"field":null,"message":"too many requests"}]}`,
				map[string]string{"X-RateLimit-Reset": strconv.FormatInt(testNow.Add(12*time.Second).Unix(), 10)}),
			want: sender.ProviderError{Status: 429, Message: "too many requests", RetryAfter: 12 * time.Second, Retryable: true},
		},
		{
			name:   "503 with Retry-After date",
			answer: sendGridError(503, "", map[string]string{"Retry-After": testNow.Add(90 * time.Second).Format(http.TimeFormat)}),
			want:   sender.ProviderError{Status: 503, Message: "Service Unavailable", RetryAfter: 90 * time.Second, Retryable: true},
		},
		{
			name:   "500",
			answer: sendGridError(500, `{"errors":[{"field":null,"message":"internal error"}]}`, nil),
			want:   sender.ProviderError{Status: 500, Message: "internal error", Retryable: true},
		},
		{
			name:   "502 without a SendGrid body",
			answer: sendGridError(502, "<html>\n  Bad   Gateway\n</html>", nil),
			want:   sender.ProviderError{Status: 502, Message: "<html> Bad Gateway </html>", Retryable: true},
		},
		{
			name:   "502 with a long body",
			answer: sendGridError(502, longBody, nil),
			want:   sender.ProviderError{Status: 502, Message: longBody[:300] + "…", Retryable: true},
		},
		{
			name: "redirect",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			},
			want: sender.ProviderError{Status: 307, Message: "Temporary Redirect"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSendGrid(t, tc.answer)
			got, err := newSendGrid(f).Send(context.Background(), fullCommand(), account())
			if err == nil {
				t.Fatalf("Send = %+v, want an error", got)
			}
			checkNoKey(t, err)
			if pe := asProviderError(t, err); *pe != tc.want {
				t.Errorf("error = %+v\nwant %+v", *pe, tc.want)
			}
			if n := len(f.Requests()); n != 1 {
				t.Errorf("fake sendgrid got %d requests, want 1 (Send must not retry)", n)
			}
		})
	}
}

func TestSendGridSendErrorsNeverCarryTheKey(t *testing.T) {
	// A fake that repeats the Authorization header in its error.
	f := newFakeSendGrid(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"errors":[{"field":%q,"message":%q}]}`, r.Header.Get("Authorization"), "bad key "+r.Header.Get("Authorization"))
	})
	_, err := newSendGrid(f).Send(context.Background(), fullCommand(), account())
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	checkNoKey(t, err)
	pe := asProviderError(t, err)
	if want := "bad key Bearer [redacted]"; !strings.Contains(pe.Message, want) {
		t.Errorf("message = %q, want it to contain %q", pe.Message, want)
	}
	if strings.Contains(pe.Code, testAPIKey) {
		t.Errorf("code %q contains the API key", pe.Code)
	}

	// A raw body repeating the key.
	f = newFakeSendGrid(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "proxy saw "+r.Header.Get("Authorization"))
	})
	_, err = newSendGrid(f).Send(context.Background(), fullCommand(), account())
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	checkNoKey(t, err)
}

func TestSendGridSendInvalidAccount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		acct     sender.Account
		wantName string
	}{
		{"default without key", sender.Account{Key: "default"}, `"default"`},
		{"named with empty key", sender.Account{Name: "marketing", Key: "acme/marketing", Credentials: map[string]string{"api_key": ""}}, `"marketing"`},
		{"key with a newline", sender.Account{Credentials: map[string]string{"api_key": testAPIKey + "\nX-Evil: 1"}}, `"default"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSendGrid(t, accepted)
			_, err := newSendGrid(f).Send(context.Background(), fullCommand(), tc.acct)
			checkNoKey(t, err)
			pe := asProviderError(t, err)
			if pe.Code != "invalid_account" || pe.Retryable || pe.Status != 0 {
				t.Errorf("error = %+v, want permanent Code invalid_account", *pe)
			}
			if !strings.Contains(pe.Message, tc.wantName) {
				t.Errorf("message %q does not name the account %s", pe.Message, tc.wantName)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("fake sendgrid got %d requests, want none", n)
			}
		})
	}
}

func TestSendGridSendInvalidCommand(t *testing.T) {
	addrs := func(n int, prefix string) []*eventsv1.EmailAddress {
		out := make([]*eventsv1.EmailAddress, n)
		for i := range out {
			out[i] = &eventsv1.EmailAddress{Email: fmt.Sprintf("%s%d@example.com", prefix, i)}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		change func(*eventsv1.EmailCommand)
		field  string
	}{
		{"no id", func(c *eventsv1.EmailCommand) { c.Id = "" }, "id"},
		{"no from", func(c *eventsv1.EmailCommand) { c.From = nil }, "from"},
		{"from without email", func(c *eventsv1.EmailCommand) { c.From = &eventsv1.EmailAddress{Name: "Acme"} }, "from"},
		{"from not an address", func(c *eventsv1.EmailCommand) { c.From.Email = "noreply" }, "from"},
		{"from with display name", func(c *eventsv1.EmailCommand) { c.From.Email = "Acme <noreply@acme.example>" }, "from"},
		{"no to", func(c *eventsv1.EmailCommand) { c.To = nil }, "to"},
		{"to not an address", func(c *eventsv1.EmailCommand) { c.To[1].Email = "bob@" }, "to"},
		{"to empty address", func(c *eventsv1.EmailCommand) { c.To[1].Email = "" }, "to"},
		{"cc not an address", func(c *eventsv1.EmailCommand) { c.Cc[0].Email = "carol at example.com" }, "cc"},
		{"bcc not an address", func(c *eventsv1.EmailCommand) { c.Bcc[0].Email = "@acme.example" }, "bcc"},
		{"reply_to not an address", func(c *eventsv1.EmailCommand) { c.ReplyTo.Email = "support" }, "reply_to"},
		{"duplicate recipient", func(c *eventsv1.EmailCommand) { c.Bcc[0].Email = "ADA@example.com" }, "bcc"},
		{"1001 recipients", func(c *eventsv1.EmailCommand) {
			c.To, c.Cc, c.Bcc = addrs(500, "to"), addrs(400, "cc"), addrs(101, "bcc")
		}, "to"},
		{"no content", func(c *eventsv1.EmailCommand) { c.Text, c.Html, c.TemplateId, c.DynamicTemplateData = "", "", "", nil }, "text"},
		{"no subject without template", func(c *eventsv1.EmailCommand) { c.Subject, c.TemplateId, c.DynamicTemplateData = "", "", nil }, "subject"},
		{"template data not JSON", func(c *eventsv1.EmailCommand) { c.DynamicTemplateData = []byte(`{"name":`) }, "dynamic_template_data"},
		{"template data an array", func(c *eventsv1.EmailCommand) { c.DynamicTemplateData = []byte(`[1,2]`) }, "dynamic_template_data"},
		{"template data null", func(c *eventsv1.EmailCommand) { c.DynamicTemplateData = []byte(`null`) }, "dynamic_template_data"},
		{"template data a string", func(c *eventsv1.EmailCommand) { c.DynamicTemplateData = []byte(`"x"`) }, "dynamic_template_data"},
		{"template data followed by more", func(c *eventsv1.EmailCommand) { c.DynamicTemplateData = []byte(`{"a":1}}`) }, "dynamic_template_data"},
		{"template data without template", func(c *eventsv1.EmailCommand) { c.TemplateId = "" }, "dynamic_template_data"},
		{"attachment without filename", func(c *eventsv1.EmailCommand) { c.Attachments[1].Filename = "" }, "attachments"},
		{"attachment without content", func(c *eventsv1.EmailCommand) { c.Attachments[0].Content = nil }, "attachments"},
		{"attachment with unknown disposition", func(c *eventsv1.EmailCommand) { c.Attachments[0].Disposition = "embedded" }, "attachments"},
		{"inline attachment without content_id", func(c *eventsv1.EmailCommand) { c.Attachments[1].ContentId = "" }, "attachments"},
		{"11 categories", func(c *eventsv1.EmailCommand) { c.Categories = strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",") }, "categories"},
		{"empty category", func(c *eventsv1.EmailCommand) { c.Categories = []string{"welcome", ""} }, "categories"},
		{"send_at over 72h ahead", func(c *eventsv1.EmailCommand) { c.SendAt = testNow.Add(72*time.Hour + time.Second).Unix() }, "send_at"},
		{"send_at negative", func(c *eventsv1.EmailCommand) { c.SendAt = -1 }, "send_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSendGrid(t, accepted)
			cmd := fullCommand()
			tc.change(cmd)
			got, err := newSendGrid(f).Send(context.Background(), cmd, account())
			if err == nil {
				t.Fatalf("Send = %+v, want an error", got)
			}
			checkNoKey(t, err)
			pe := asProviderError(t, err)
			if pe.Code != "invalid_command" || pe.Retryable || pe.Status != 0 {
				t.Errorf("error = %+v, want permanent Code invalid_command", *pe)
			}
			if !strings.HasPrefix(pe.Message, tc.field+": ") {
				t.Errorf("message %q does not name the field %s", pe.Message, tc.field)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("fake sendgrid got %d requests, want none", n)
			}
		})
	}
}

func TestSendGridSendLimitsAccepted(t *testing.T) {
	f := newFakeSendGrid(t, accepted)
	cmd := fullCommand()
	cmd.To = make([]*eventsv1.EmailAddress, 1000-len(cmd.Cc)-len(cmd.Bcc))
	for i := range cmd.To {
		cmd.To[i] = &eventsv1.EmailAddress{Email: fmt.Sprintf("to%d@example.com", i)}
	}
	cmd.SendAt = testNow.Add(72 * time.Hour).Unix()
	if _, err := newSendGrid(f).Send(context.Background(), cmd, account()); err != nil {
		t.Fatalf("Send with 1000 recipients and send_at 72h ahead: %v", err)
	}
	f.Only(t)
}

// slowSendGrid answers only after the client gave up (or after a while).
func slowSendGrid(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
		accepted(w, r)
	}
}

func TestSendGridSendTimeout(t *testing.T) {
	f := newFakeSendGrid(t, slowSendGrid)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newSendGrid(f).Send(ctx, fullCommand(), account())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %v, want it bounded by the 100ms deadline", elapsed)
	}
	checkNoKey(t, err)
	pe := asProviderError(t, err)
	if pe.Code != "timeout" || !pe.Retryable || pe.Status != 0 {
		t.Errorf("error = %+v, want retryable Code timeout", *pe)
	}
}

func TestSendGridSendClientTimeout(t *testing.T) {
	f := newFakeSendGrid(t, slowSendGrid)
	sg := newSendGrid(f)
	sg.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := sg.Send(context.Background(), fullCommand(), account())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %v, want it bounded by the client's 100ms timeout", elapsed)
	}
	checkNoKey(t, err)
	pe := asProviderError(t, err)
	if pe.Code != "timeout" || !pe.Retryable {
		t.Errorf("error = %+v, want retryable Code timeout", *pe)
	}
}

func TestSendGridSendCanceled(t *testing.T) {
	f := newFakeSendGrid(t, slowSendGrid)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := newSendGrid(f).Send(ctx, fullCommand(), account())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestSendGridSendConnectionFailure(t *testing.T) {
	f := newFakeSendGrid(t, accepted)
	sg := newSendGrid(f)
	f.Close()
	_, err := sg.Send(context.Background(), fullCommand(), account())
	checkNoKey(t, err)
	pe := asProviderError(t, err)
	if pe.Code != "connection" || !pe.Retryable || pe.Status != 0 {
		t.Errorf("error = %+v, want retryable Code connection", *pe)
	}
}
