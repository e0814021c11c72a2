// Package smssender sends SmsCommands through SMS providers.
package smssender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	twclient "github.com/twilio/twilio-go/client"
	twapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/sender"
)

// Limits of Twilio's Messages API.
const (
	maxBodyChars = 1600
	maxMediaURLs = 10
)

var (
	e164Pattern       = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	alphaSenderID     = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	messagingService  = regexp.MustCompile(`^MG[0-9a-f]{32}$`)
	credentialPattern = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// Twilio sends SmsCommands through Twilio's Messages API
// (POST /2010-04-01/Accounts/{AccountSid}/Messages.json) with the
// twilio-go SDK. Its zero value sends through Twilio's real API; it is safe
// for concurrent use once configured.
type Twilio struct {
	// BaseURL replaces the scheme and host (and prefixes the path) of
	// Twilio's API, https://api.twilio.com. Empty: Twilio's real API.
	// Tests point it at a fake such as http://127.0.0.1:port.
	BaseURL string
	// HTTPClient sends the requests. Nil uses a client with a 30 second
	// timeout that does not follow redirects. Either way the deadline of
	// the context given to Send bounds each call.
	HTTPClient *http.Client
	// StatusCallbackURL is the deployment's ingress source for Twilio
	// status callbacks, with "{tenant}" replaced by the command's tenant,
	// e.g. "https://hooks.example.com/v1/webhooks/{tenant}/twilio". It is
	// used for commands without a status callback of their own. Empty: no
	// callback unless the command sets one.
	StatusCallbackURL string
	// Now is the clock for Retry-After dates; nil uses time.Now.
	Now func() time.Time
}

// Name returns "twilio".
func (t *Twilio) Name() string { return "twilio" }

// credentials are the basic-auth credentials of one account and the account
// the messages are created under.
type credentials struct {
	accountSID string
	username   string
	password   string
}

// Send creates the message of cmd in acct and returns its SID and status.
//
// The command is validated first; a command Twilio could never accept gives
// a permanent error made by sender.InvalidCommand, and an account without
// usable credentials a permanent error with Code "invalid_account". The
// status callback (the command's own, else StatusCallbackURL for the
// command's tenant) carries the command id in the query parameter
// event.TwilioCallbackCommandID, so that delivery receipts can be matched to
// the command. Twilio's refusals are classified by sender.Classify with
// Twilio's numeric error code; no answer within the context's deadline or the
// client's timeout gives Code "timeout", a failed connection Code
// "connection", both retryable. Errors never contain the account's secrets.
func (t *Twilio) Send(ctx context.Context, cmd *eventsv1.SmsCommand, acct sender.Account) (sender.Receipt, error) {
	params, perr := t.params(cmd)
	if perr != nil {
		return sender.Receipt{}, perr
	}
	creds, perr := accountCredentials(acct)
	if perr != nil {
		return sender.Receipt{}, perr
	}
	params.SetPathAccountSid(creds.accountSID)

	tr, err := t.transport(ctx)
	if err != nil {
		return sender.Receipt{}, err
	}
	defer tr.close()
	hc := *sender.ClientOr(t.HTTPClient)
	hc.Transport = tr
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(creds.username, creds.password),
		HTTPClient:  &hc,
	}
	c.SetAccountSid(creds.accountSID)
	// A RequestHandler of its own, not NewRequestHandler: the edge and
	// region are not taken from TWILIO_EDGE and TWILIO_REGION behind the
	// deployment's back.
	api := twapi.NewApiService(&twclient.RequestHandler{Client: c})

	msg, err := api.CreateMessage(params)
	if err := t.outcome(ctx, tr, err); err != nil {
		return sender.Receipt{}, redact(err, acct.Credentials["auth_token"], acct.Credentials["api_key_secret"])
	}
	var r sender.Receipt
	if msg.Sid != nil {
		r.ProviderID = *msg.Sid
	}
	if msg.Status != nil {
		r.Status = *msg.Status
	}
	if r.ProviderID == "" {
		return sender.Receipt{}, &sender.ProviderError{Status: tr.status, Message: "answer carries no message sid"}
	}
	return r, nil
}

// accountCredentials reads acct's Twilio credentials: an account SID and
// either its auth token or an API key SID and secret.
func accountCredentials(acct sender.Account) (credentials, *sender.ProviderError) {
	name := acct.Name
	if name == "" {
		name = "default"
	}
	invalid := func(format string, args ...any) *sender.ProviderError {
		return &sender.ProviderError{
			Code:    "invalid_account",
			Message: fmt.Sprintf("twilio account %q: ", name) + fmt.Sprintf(format, args...),
		}
	}
	cr := acct.Credentials
	c := credentials{accountSID: cr["account_sid"]}
	keySID, keySecret := cr["api_key_sid"], cr["api_key_secret"]
	switch {
	case c.accountSID == "":
		return credentials{}, invalid("account_sid is missing")
	case keySID != "" || keySecret != "":
		if keySID == "" || keySecret == "" {
			return credentials{}, invalid("api_key_sid and api_key_secret must be set together")
		}
		c.username, c.password = keySID, keySecret
	case cr["auth_token"] != "":
		c.username, c.password = c.accountSID, cr["auth_token"]
	default:
		return credentials{}, invalid("auth_token, or api_key_sid and api_key_secret, is missing")
	}
	// twilio-go refuses credentials with other characters, and the account
	// SID is a path segment.
	for _, f := range []struct{ field, value string }{
		{"account_sid", c.accountSID},
		{"api_key_sid", keySID},
		{"auth_token", cr["auth_token"]},
		{"api_key_secret", keySecret},
	} {
		if f.value != "" && !credentialPattern.MatchString(f.value) {
			return credentials{}, invalid("%s has characters other than letters and digits", f.field)
		}
	}
	return c, nil
}

// params validates cmd and builds the request of its message.
func (t *Twilio) params(cmd *eventsv1.SmsCommand) (*twapi.CreateMessageParams, *sender.ProviderError) {
	if cmd.GetId() == "" {
		return nil, sender.InvalidCommand("id", "is missing")
	}
	if !e164Pattern.MatchString(cmd.GetTo()) {
		return nil, sender.InvalidCommand("to", "is not an E.164 number (+ and up to 15 digits)")
	}
	from, mss := cmd.GetFrom(), cmd.GetMessagingServiceSid()
	if from == "" && mss == "" {
		return nil, sender.InvalidCommand("from", "neither from nor messaging_service_sid is set")
	}
	if from != "" && !e164Pattern.MatchString(from) && !isAlphanumericSenderID(from) {
		return nil, sender.InvalidCommand("from", "%q is neither an E.164 number nor an alphanumeric sender id (1 to 11 letters, digits or spaces, at least one letter)", from)
	}
	if mss != "" && !messagingService.MatchString(mss) {
		return nil, sender.InvalidCommand("messaging_service_sid", "%q is not a messaging service SID (MG and 32 hex digits)", mss)
	}
	body, media := cmd.GetBody(), cmd.GetMediaUrls()
	if body == "" && len(media) == 0 {
		return nil, sender.InvalidCommand("body", "neither body nor media_urls is set")
	}
	if n := utf8.RuneCountInString(body); n > maxBodyChars {
		return nil, sender.InvalidCommand("body", "has %d characters; Twilio accepts at most %d", n, maxBodyChars)
	}
	if len(media) > maxMediaURLs {
		return nil, sender.InvalidCommand("media_urls", "has %d URLs; Twilio accepts at most %d", len(media), maxMediaURLs)
	}
	for i, m := range media {
		if !isHTTPURL(m) {
			return nil, sender.InvalidCommand("media_urls", "entry %d is not an absolute http or https URL", i)
		}
	}
	callback, perr := t.statusCallback(cmd)
	if perr != nil {
		return nil, perr
	}

	p := &twapi.CreateMessageParams{}
	p.SetTo(cmd.GetTo())
	if from != "" {
		p.SetFrom(from)
	}
	if mss != "" {
		p.SetMessagingServiceSid(mss)
	}
	if body != "" {
		p.SetBody(body)
	}
	if len(media) > 0 {
		p.SetMediaUrl(media)
	}
	if callback != "" {
		p.SetStatusCallback(callback)
	}
	return p, nil
}

// statusCallback returns the status callback URL of cmd with the command id
// added, or "" when there is none.
func (t *Twilio) statusCallback(cmd *eventsv1.SmsCommand) (string, *sender.ProviderError) {
	raw := cmd.GetStatusCallback()
	if raw != "" {
		if !isHTTPURL(raw) {
			return "", sender.InvalidCommand("status_callback", "is not an absolute http or https URL")
		}
	} else {
		if t.StatusCallbackURL == "" {
			return "", nil
		}
		raw = t.StatusCallbackURL
		if strings.Contains(raw, "{tenant}") {
			tenant := cmd.GetOrigin().GetTenant()
			if tenant == "" {
				return "", sender.InvalidCommand("origin", "has no tenant for the status callback URL")
			}
			raw = strings.ReplaceAll(raw, "{tenant}", url.PathEscape(tenant))
		}
		if !isHTTPURL(raw) {
			return "", &sender.ProviderError{Code: "invalid_config", Message: "twilio status callback URL is not an absolute http or https URL"}
		}
	}
	return withCommandID(raw, cmd.GetId()), nil
}

// withCommandID returns raw with its event.TwilioCallbackCommandID query
// parameter set to id. The other parameters are kept as they are, in order.
func withCommandID(raw, id string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw // callers pass URLs that parse
	}
	var kept []string
	if u.RawQuery != "" {
		for pair := range strings.SplitSeq(u.RawQuery, "&") {
			key, _, _ := strings.Cut(pair, "=")
			if k, err := url.QueryUnescape(key); err == nil && k == event.TwilioCallbackCommandID {
				continue
			}
			kept = append(kept, pair)
		}
	}
	kept = append(kept, url.QueryEscape(event.TwilioCallbackCommandID)+"="+url.QueryEscape(id))
	u.RawQuery = strings.Join(kept, "&")
	return u.String()
}

// isAlphanumericSenderID reports whether s is an alphanumeric sender id: 1 to
// 11 ASCII letters, digits or spaces, at least one a letter.
func isAlphanumericSenderID(s string) bool {
	return alphaSenderID.MatchString(s) && strings.IndexFunc(s, unicode.IsLetter) >= 0
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// outcome turns the SDK's answer into Send's error, or nil on success.
func (t *Twilio) outcome(ctx context.Context, tr *transport, err error) error {
	now := sender.NowOr(t.Now)
	if tr.status != 0 {
		// An answer came. twilio-go keeps neither the HTTP status of an
		// error whose body it cannot decode nor any header: tr has both.
		var re *twclient.TwilioRestError
		switch {
		case tr.status < 200 || tr.status >= 300:
			code, message := "", http.StatusText(tr.status)
			if errors.As(err, &re) {
				message = re.Message
				if re.Code != 0 {
					code = strconv.Itoa(re.Code)
				}
			}
			return sender.Classify(tr.status, code, message, tr.retryAfter, now)
		case err != nil:
			// Accepted, but the answer could not be read: the message may
			// well be on its way, so sending it again could duplicate it.
			return &sender.ProviderError{Status: tr.status, Message: "answer could not be read: " + err.Error()}
		}
		return nil
	}
	if err == nil {
		return nil
	}
	var re *twclient.TwilioRestError
	if errors.As(err, &re) {
		return sender.Classify(re.Status, strconv.Itoa(re.Code), re.Message, "", now)
	}
	return sender.TransportError(ctx, "twilio", err)
}

// redact removes the secrets from err's message. Twilio and the SDK have no
// reason to repeat a credential, but nothing may carry one into logs or
// events.
func redact(err error, secrets ...string) error {
	msg := err.Error()
	found := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			found = true
		}
	}
	if !found {
		return err
	}
	clean := func(m string) string {
		for _, s := range secrets {
			if s != "" {
				m = strings.ReplaceAll(m, s, "[redacted]")
			}
		}
		return m
	}
	var pe *sender.ProviderError
	if errors.As(err, &pe) {
		c := *pe
		c.Message = clean(c.Message)
		return &c
	}
	return errors.New(clean(msg))
}

// transport carries one Send's requests: it binds them to Send's context
// (twilio-go sends with context.Background), points them at Twilio.BaseURL,
// and records the answer's status and Retry-After header, which twilio-go
// drops.
type transport struct {
	ctx  context.Context
	next http.RoundTripper
	base *url.URL // nil: requests go where twilio-go sends them

	res        *http.Response // the last answer
	status     int
	retryAfter string
}

// transport returns the transport of one Send under ctx.
func (t *Twilio) transport(ctx context.Context) (*transport, error) {
	next := sender.ClientOr(t.HTTPClient).Transport
	if next == nil {
		next = http.DefaultTransport
	}
	tr := &transport{ctx: ctx, next: next}
	if t.BaseURL != "" {
		u, err := url.Parse(t.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, &sender.ProviderError{Code: "invalid_config", Message: "twilio base URL is not an absolute http or https URL"}
		}
		tr.base = u
	}
	return tr, nil
}

// RoundTrip sends req under the context of both req (the HTTP client's
// timeout) and Send.
func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	stop := context.AfterFunc(tr.ctx, func() { cancel(context.Cause(tr.ctx)) })
	release := func() {
		stop()
		cancel(nil)
	}
	r := req.Clone(ctx)
	if tr.base != nil {
		r.URL.Scheme = tr.base.Scheme
		r.URL.Host = tr.base.Host
		if p := strings.TrimSuffix(tr.base.Path, "/"); p != "" {
			r.URL.Path = p + r.URL.Path
			r.URL.RawPath = ""
		}
		r.Host = ""
	}
	res, err := tr.next.RoundTrip(r)
	if err != nil {
		release()
		return nil, err
	}
	tr.res = res
	tr.status = res.StatusCode
	tr.retryAfter = res.Header.Get("Retry-After")
	res.Body = &releaseBody{ReadCloser: res.Body, release: release}
	return res, nil
}

// close closes the last answer's body, which twilio-go leaves open when it
// reports an error, and so releases its connection and context.
func (tr *transport) close() {
	if tr.res != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(tr.res.Body, 64<<10))
		_ = tr.res.Body.Close()
	}
}

// releaseBody releases a request's context once its answer is read.
type releaseBody struct {
	io.ReadCloser
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
