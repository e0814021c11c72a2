package smssender

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/sender"
	"github.com/greentic/events/pkg/sender/sendertest"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "tok0123456789abcdef0123456789abcd"
	testKeySID     = "SK0123456789abcdef0123456789abcdef"
	testKeySecret  = "sec0123456789abcdef0123456789abcd"
	testMessageSID = "SM0123456789abcdef0123456789abcdef"
	testServiceSID = "MG0123456789abcdef0123456789abcdef"
	testCommandID  = "evt-1:orders:notify"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newFakeTwilio starts a server standing in for api.twilio.com; every
// request body must be a form.
func newFakeTwilio(t *testing.T, answer http.HandlerFunc) *sendertest.Fake {
	t.Helper()
	return sendertest.NewFake(t, "twilio", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := url.ParseQuery(string(body)); err != nil {
			t.Errorf("fake twilio: body is not a form: %v", err)
		}
		answer(w, r)
	})
}

func created(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid":%q,"account_sid":%q,"status":"queued","to":"+15558675310"}`, testMessageSID, testAccountSID)
}

func twilioError(status, code int, message string, header map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, message, code, status)
	}
}

func newTwilio(f *sendertest.Fake) *Twilio {
	return &Twilio{
		BaseURL:           f.URL,
		StatusCallbackURL: "https://hooks.example.com/v1/webhooks/{tenant}/twilio",
		Now:               func() time.Time { return testNow },
	}
}

func tokenAccount() sender.Account {
	return sender.Account{Key: "default", Credentials: map[string]string{
		"account_sid": testAccountSID,
		"auth_token":  testAuthToken,
	}}
}

func keyAccount() sender.Account {
	return sender.Account{Name: "marketing", Key: "acme/marketing", Credentials: map[string]string{
		"account_sid":    testAccountSID,
		"api_key_sid":    testKeySID,
		"api_key_secret": testKeySecret,
	}}
}

func validCommand() *eventsv1.SmsCommand {
	return &eventsv1.SmsCommand{
		Id:        testCommandID,
		Origin:    &eventsv1.CommandOrigin{Tenant: "acme", EventId: "evt-1", Flow: "orders", Node: "notify"},
		To:        "+15558675310",
		From:      "+15017122661",
		Body:      "Your order has shipped.",
		MediaUrls: []string{"https://cdn.example.com/a.png", "https://cdn.example.com/b.png?size=2"},
	}
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// callback is the deployment's status callback of validCommand.
var callback = "https://hooks.example.com/v1/webhooks/acme/twilio?" + event.TwilioCallbackCommandID + "=" + url.QueryEscape(testCommandID)

func asProviderError(t *testing.T, err error) *sender.ProviderError {
	t.Helper()
	var pe *sender.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *sender.ProviderError", err, err)
	}
	return pe
}

func TestTwilioName(t *testing.T) {
	if got := (&Twilio{}).Name(); got != "twilio" {
		t.Errorf("Name() = %q, want twilio", got)
	}
}

func TestTwilioSendSuccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		acct sender.Account
		auth string
	}{
		{"auth token", tokenAccount(), basicAuth(testAccountSID, testAuthToken)},
		{"api key", keyAccount(), basicAuth(testKeySID, testKeySecret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTwilio(t, created)
			got, err := newTwilio(f).Send(context.Background(), validCommand(), tc.acct)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if want := (sender.Receipt{ProviderID: testMessageSID, Status: "queued"}); got != want {
				t.Errorf("receipt = %+v, want %+v", got, want)
			}
			r := f.Only(t)
			if r.Method != http.MethodPost {
				t.Errorf("method = %s, want POST", r.Method)
			}
			if want := "/2010-04-01/Accounts/" + testAccountSID + "/Messages.json"; r.Path != want {
				t.Errorf("path = %s, want %s", r.Path, want)
			}
			if got := r.Header.Get("Authorization"); got != tc.auth {
				t.Errorf("Authorization = %q, want %q", got, tc.auth)
			}
			if got := r.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q, want application/x-www-form-urlencoded", got)
			}
			want := url.Values{
				"To":             {"+15558675310"},
				"From":           {"+15017122661"},
				"Body":           {"Your order has shipped."},
				"MediaUrl":       {"https://cdn.example.com/a.png", "https://cdn.example.com/b.png?size=2"},
				"StatusCallback": {callback},
			}
			if !reflect.DeepEqual(r.Form(), want) {
				t.Errorf("form = %v\nwant %v", r.Form(), want)
			}
		})
	}
}

func TestTwilioSendMessagingService(t *testing.T) {
	f := newFakeTwilio(t, created)
	tw := newTwilio(f)
	tw.StatusCallbackURL = ""
	cmd := validCommand()
	cmd.From, cmd.MessagingServiceSid, cmd.MediaUrls = "", testServiceSID, nil
	if _, err := tw.Send(context.Background(), cmd, tokenAccount()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := url.Values{
		"To":                  {"+15558675310"},
		"MessagingServiceSid": {testServiceSID},
		"Body":                {"Your order has shipped."},
	}
	if got := f.Only(t).Form(); !reflect.DeepEqual(got, want) {
		t.Errorf("form = %v\nwant %v", got, want)
	}
}

func TestTwilioSendSenders(t *testing.T) {
	for _, from := range []string{"+447700900123", "Greentic", "Shop 24", "A"} {
		t.Run(from, func(t *testing.T) {
			f := newFakeTwilio(t, created)
			cmd := validCommand()
			cmd.From = from
			if _, err := newTwilio(f).Send(context.Background(), cmd, tokenAccount()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := f.Only(t).Form().Get("From"); got != from {
				t.Errorf("From = %q, want %q", got, from)
			}
		})
	}
}

func TestTwilioSendMediaOnly(t *testing.T) {
	f := newFakeTwilio(t, created)
	cmd := validCommand()
	cmd.Body = ""
	if _, err := newTwilio(f).Send(context.Background(), cmd, tokenAccount()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	form := f.Only(t).Form()
	if _, ok := form["Body"]; ok {
		t.Errorf("form has Body %q, want none", form.Get("Body"))
	}
	if got := len(form["MediaUrl"]); got != 2 {
		t.Errorf("form has %d MediaUrl, want 2", got)
	}
}

func TestTwilioSendBodyLimitCountsCharacters(t *testing.T) {
	f := newFakeTwilio(t, created)
	cmd := validCommand()
	cmd.Body = strings.Repeat("é", maxBodyChars) // 3200 bytes
	if _, err := newTwilio(f).Send(context.Background(), cmd, tokenAccount()); err != nil {
		t.Fatalf("Send of %d characters: %v", maxBodyChars, err)
	}
	if got := f.Only(t).Form().Get("Body"); got != cmd.Body {
		t.Errorf("Body has %d bytes, want %d", len(got), len(cmd.Body))
	}
}

func TestTwilioSendStatusCallback(t *testing.T) {
	id := event.TwilioCallbackCommandID + "=" + url.QueryEscape(testCommandID)
	for _, tc := range []struct {
		name     string
		config   string // Twilio.StatusCallbackURL
		tenant   string
		callback string // SmsCommand.StatusCallback
		want     string // "" for none
	}{
		{
			name:   "deployment",
			config: "https://hooks.example.com/v1/webhooks/{tenant}/twilio",
			tenant: "acme",
			want:   "https://hooks.example.com/v1/webhooks/acme/twilio?" + id,
		},
		{
			name:   "tenant is path-escaped",
			config: "https://hooks.example.com/v1/webhooks/{tenant}/twilio",
			tenant: "acme/eu west",
			want:   "https://hooks.example.com/v1/webhooks/acme%2Feu%20west/twilio?" + id,
		},
		{
			name:   "deployment query is kept",
			config: "https://hooks.example.com/v1/webhooks/{tenant}/twilio?region=eu&b=2",
			tenant: "acme",
			want:   "https://hooks.example.com/v1/webhooks/acme/twilio?region=eu&b=2&" + id,
		},
		{
			name:     "command's own",
			config:   "https://hooks.example.com/v1/webhooks/{tenant}/twilio",
			tenant:   "acme",
			callback: "https://status.example.org/sms?token=x%20y&z=1",
			want:     "https://status.example.org/sms?token=x%20y&z=1&" + id,
		},
		{
			name:     "command's own replaces a stale id",
			tenant:   "acme",
			callback: "https://status.example.org/sms?" + event.TwilioCallbackCommandID + "=old&z=1",
			want:     "https://status.example.org/sms?z=1&" + id,
		},
		{
			name:   "none",
			tenant: "acme",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTwilio(t, created)
			tw := newTwilio(f)
			tw.StatusCallbackURL = tc.config
			cmd := validCommand()
			cmd.Origin.Tenant = tc.tenant
			cmd.StatusCallback = tc.callback
			if _, err := tw.Send(context.Background(), cmd, tokenAccount()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got, ok := f.Only(t).Form()["StatusCallback"]
			switch {
			case tc.want == "" && ok:
				t.Errorf("StatusCallback = %q, want none", got)
			case tc.want != "" && !reflect.DeepEqual(got, []string{tc.want}):
				t.Errorf("StatusCallback = %q, want %q", got, tc.want)
			}
			if tc.want != "" {
				u, _ := url.Parse(tc.want)
				if got := u.Query().Get(event.TwilioCallbackCommandID); got != testCommandID {
					t.Errorf("callback names command %q, want %q", got, testCommandID)
				}
			}
		})
	}
}

func TestTwilioSendProviderErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		want   sender.ProviderError
	}{
		{
			name:   "400",
			answer: twilioError(400, 21211, "The 'To' number +15558675310 is not a valid phone number.", nil),
			want:   sender.ProviderError{Status: 400, Code: "21211", Message: "The 'To' number +15558675310 is not a valid phone number."},
		},
		{
			name:   "401",
			answer: twilioError(401, 20003, "Authenticate", nil),
			want:   sender.ProviderError{Status: 401, Code: "20003", Message: "Authenticate"},
		},
		{
			name:   "429 with Retry-After",
			answer: twilioError(429, 20429, "Too Many Requests", map[string]string{"Retry-After": "7"}),
			want:   sender.ProviderError{Status: 429, Code: "20429", Message: "Too Many Requests", RetryAfter: 7 * time.Second, Retryable: true},
		},
		{
			name:   "503 with Retry-After date",
			answer: twilioError(503, 20503, "Service Unavailable", map[string]string{"Retry-After": testNow.Add(90 * time.Second).Format(http.TimeFormat)}),
			want:   sender.ProviderError{Status: 503, Code: "20503", Message: "Service Unavailable", RetryAfter: 90 * time.Second, Retryable: true},
		},
		{
			name:   "500",
			answer: twilioError(500, 20500, "Internal Server Error", nil),
			want:   sender.ProviderError{Status: 500, Code: "20500", Message: "Internal Server Error", Retryable: true},
		},
		{
			name: "502 without a Twilio body",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				io.WriteString(w, "<html>Bad Gateway</html>")
			},
			want: sender.ProviderError{Status: 502, Message: "Bad Gateway", Retryable: true},
		},
		{
			name: "redirect",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			want: sender.ProviderError{Status: 302, Message: "Found"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTwilio(t, tc.answer)
			got, err := newTwilio(f).Send(context.Background(), validCommand(), tokenAccount())
			if err == nil {
				t.Fatalf("Send = %+v, want an error", got)
			}
			if pe := asProviderError(t, err); *pe != tc.want {
				t.Errorf("error = %+v\nwant %+v", *pe, tc.want)
			}
			if n := len(f.Requests()); n != 1 {
				t.Errorf("fake twilio got %d requests, want 1 (Send must not retry)", n)
			}
		})
	}
}

func TestTwilioSendAnswerWithoutSid(t *testing.T) {
	f := newFakeTwilio(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"status":"queued"}`)
	})
	_, err := newTwilio(f).Send(context.Background(), validCommand(), tokenAccount())
	if pe := asProviderError(t, err); pe.Status != 201 || pe.Retryable {
		t.Errorf("error = %+v, want a permanent error with status 201", *pe)
	}
}

// slowTwilio answers only after the client gave up (or after a while).
func slowTwilio(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
		created(w, r)
	}
}

func TestTwilioSendTimeout(t *testing.T) {
	f := newFakeTwilio(t, slowTwilio)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newTwilio(f).Send(ctx, validCommand(), tokenAccount())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %v, want it bounded by the 100ms deadline", elapsed)
	}
	pe := asProviderError(t, err)
	if pe.Code != "timeout" || !pe.Retryable || pe.Status != 0 {
		t.Errorf("error = %+v, want retryable Code timeout", *pe)
	}
}

func TestTwilioSendClientTimeout(t *testing.T) {
	f := newFakeTwilio(t, slowTwilio)
	tw := newTwilio(f)
	tw.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := tw.Send(context.Background(), validCommand(), tokenAccount())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %v, want it bounded by the client's 100ms timeout", elapsed)
	}
	pe := asProviderError(t, err)
	if pe.Code != "timeout" || !pe.Retryable {
		t.Errorf("error = %+v, want retryable Code timeout", *pe)
	}
}

func TestTwilioSendCanceled(t *testing.T) {
	f := newFakeTwilio(t, slowTwilio)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := newTwilio(f).Send(ctx, validCommand(), tokenAccount())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestTwilioSendConnectionFailure(t *testing.T) {
	f := newFakeTwilio(t, created)
	tw := newTwilio(f)
	f.Close()
	_, err := tw.Send(context.Background(), validCommand(), tokenAccount())
	pe := asProviderError(t, err)
	if pe.Code != "connection" || !pe.Retryable || pe.Status != 0 {
		t.Errorf("error = %+v, want retryable Code connection", *pe)
	}
}

func TestTwilioSendInvalidCommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		field string
		edit  func(*eventsv1.SmsCommand)
	}{
		{"no id", "id", func(c *eventsv1.SmsCommand) { c.Id = "" }},
		{"no to", "to", func(c *eventsv1.SmsCommand) { c.To = "" }},
		{"to without plus", "to", func(c *eventsv1.SmsCommand) { c.To = "15558675310" }},
		{"to with leading zero", "to", func(c *eventsv1.SmsCommand) { c.To = "+05558675310" }},
		{"to too long", "to", func(c *eventsv1.SmsCommand) { c.To = "+1234567890123456" }},
		{"to with spaces", "to", func(c *eventsv1.SmsCommand) { c.To = "+1 555 867 5310" }},
		{"no sender", "from", func(c *eventsv1.SmsCommand) { c.From, c.MessagingServiceSid = "", "" }},
		{"from with punctuation", "from", func(c *eventsv1.SmsCommand) { c.From = "Shop-24!" }},
		{"from too long", "from", func(c *eventsv1.SmsCommand) { c.From = "GreenticShop" }},
		{"from digits only", "from", func(c *eventsv1.SmsCommand) { c.From = "12345" }},
		{"from blank", "from", func(c *eventsv1.SmsCommand) { c.From = "   " }},
		{"messaging service short", "messaging_service_sid", func(c *eventsv1.SmsCommand) { c.MessagingServiceSid = "MG123" }},
		{"messaging service upper hex", "messaging_service_sid", func(c *eventsv1.SmsCommand) {
			c.MessagingServiceSid = "MG0123456789ABCDEF0123456789ABCDEF"
		}},
		{"no content", "body", func(c *eventsv1.SmsCommand) { c.Body, c.MediaUrls = "", nil }},
		{"body too long", "body", func(c *eventsv1.SmsCommand) { c.Body = strings.Repeat("é", maxBodyChars+1) }},
		{"too many media", "media_urls", func(c *eventsv1.SmsCommand) {
			c.MediaUrls = nil
			for i := range maxMediaURLs + 1 {
				c.MediaUrls = append(c.MediaUrls, fmt.Sprintf("https://cdn.example.com/%d.png", i))
			}
		}},
		{"media relative", "media_urls", func(c *eventsv1.SmsCommand) { c.MediaUrls = []string{"/a.png"} }},
		{"media ftp", "media_urls", func(c *eventsv1.SmsCommand) { c.MediaUrls = []string{"ftp://cdn.example.com/a.png"} }},
		{"media without host", "media_urls", func(c *eventsv1.SmsCommand) { c.MediaUrls = []string{"https:///a.png"} }},
		{"status callback relative", "status_callback", func(c *eventsv1.SmsCommand) { c.StatusCallback = "/status" }},
		{"status callback mailto", "status_callback", func(c *eventsv1.SmsCommand) { c.StatusCallback = "mailto:ops@example.com" }},
		{"status callback unparsable", "status_callback", func(c *eventsv1.SmsCommand) { c.StatusCallback = "https://exa mple.com/%zz" }},
		{"no tenant for the deployment callback", "origin", func(c *eventsv1.SmsCommand) { c.Origin = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTwilio(t, created)
			cmd := validCommand()
			tc.edit(cmd)
			_, err := newTwilio(f).Send(context.Background(), cmd, tokenAccount())
			if err == nil {
				t.Fatal("Send succeeded, want an invalid command")
			}
			pe := asProviderError(t, err)
			if pe.Code != "invalid_command" || pe.Retryable || pe.Status != 0 {
				t.Errorf("error = %+v, want permanent Code invalid_command", *pe)
			}
			if !strings.HasPrefix(pe.Message, tc.field+": ") {
				t.Errorf("message = %q, want it to name field %q", pe.Message, tc.field)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("fake twilio got %d requests, want none", n)
			}
		})
	}
}

func TestTwilioSendInvalidAccount(t *testing.T) {
	for _, tc := range []struct {
		name  string
		acct  sender.Account
		named string
	}{
		{"no credentials", sender.Account{Key: "default"}, `"default"`},
		{"no account sid", sender.Account{Credentials: map[string]string{"auth_token": testAuthToken}}, `"default"`},
		{"no secret", sender.Account{Name: "alerts", Credentials: map[string]string{"account_sid": testAccountSID}}, `"alerts"`},
		{"key without secret", sender.Account{Name: "alerts", Credentials: map[string]string{
			"account_sid": testAccountSID, "api_key_sid": testKeySID, "auth_token": testAuthToken,
		}}, `"alerts"`},
		{"secret without key", sender.Account{Name: "alerts", Credentials: map[string]string{
			"account_sid": testAccountSID, "api_key_secret": testKeySecret,
		}}, `"alerts"`},
		{"token with symbols", sender.Account{Credentials: map[string]string{
			"account_sid": testAccountSID, "auth_token": testAuthToken + "/+=",
		}}, `"default"`},
		{"account sid with a path", sender.Account{Credentials: map[string]string{
			"account_sid": "AC1/../x", "auth_token": testAuthToken,
		}}, `"default"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTwilio(t, created)
			_, err := newTwilio(f).Send(context.Background(), validCommand(), tc.acct)
			if err == nil {
				t.Fatal("Send succeeded, want an invalid account")
			}
			pe := asProviderError(t, err)
			if pe.Code != "invalid_account" || pe.Retryable {
				t.Errorf("error = %+v, want permanent Code invalid_account", *pe)
			}
			if !strings.Contains(pe.Message, tc.named) {
				t.Errorf("message = %q, want it to name account %s", pe.Message, tc.named)
			}
			for _, secret := range []string{testAuthToken, testKeySecret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("fake twilio got %d requests, want none", n)
			}
		})
	}
}

func TestTwilioSendErrorsHaveNoSecrets(t *testing.T) {
	// echo repeats the request's credentials, as a misbehaving proxy might.
	echo := func(status int, jsonBody bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			user, pass, _ := r.BasicAuth()
			if jsonBody {
				twilioError(status, 20003, "bad credentials "+user+":"+pass, nil)(w, r)
				return
			}
			w.WriteHeader(status)
			io.WriteString(w, "credentials "+user+":"+pass)
		}
	}
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		closed bool
	}{
		{name: "twilio error", answer: echo(401, true)},
		{name: "plain error", answer: echo(500, false)},
		{name: "unreadable success", answer: echo(201, false)},
		{name: "connection", answer: created, closed: true},
	} {
		for _, acct := range []sender.Account{tokenAccount(), keyAccount()} {
			t.Run(tc.name+"/"+acct.Key, func(t *testing.T) {
				f := newFakeTwilio(t, tc.answer)
				tw := newTwilio(f)
				if tc.closed {
					f.Close()
				}
				_, err := tw.Send(context.Background(), validCommand(), acct)
				if err == nil {
					t.Fatal("Send succeeded, want an error")
				}
				for _, secret := range []string{testAuthToken, testKeySecret} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q contains a secret", err)
					}
				}
			})
		}
	}
}

func TestTwilioSendBaseURLPath(t *testing.T) {
	f := newFakeTwilio(t, created)
	tw := newTwilio(f)
	tw.BaseURL = f.URL + "/twilio/"
	if _, err := tw.Send(context.Background(), validCommand(), tokenAccount()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got, want := f.Only(t).Path, "/twilio/2010-04-01/Accounts/"+testAccountSID+"/Messages.json"; got != want {
		t.Errorf("path = %s, want %s", got, want)
	}
}
