// Package emailsender sends EmailCommands through email providers.
package emailsender

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	sgmail "github.com/sendgrid/sendgrid-go/helpers/mail"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/sender"
)

// Limits of SendGrid's v3 mail send API.
const (
	maxRecipients     = 1000
	maxCategories     = 10
	maxCategoryLength = 255
	maxSendAhead      = 72 * time.Hour
)

const (
	// defaultBaseURL is SendGrid's API.
	defaultBaseURL = "https://api.sendgrid.com"
	// mailSendPath is the v3 mail send endpoint.
	mailSendPath = "/v3/mail/send"
	// maxRawMessage bounds the part of an answer's body used as the
	// message of an error when the body is not SendGrid's JSON error list.
	maxRawMessage = 300
	// maxMessage bounds the message made of SendGrid's error list.
	maxMessage = 1000
)

// SendGrid sends EmailCommands through the SendGrid v3 mail send API
// (POST /v3/mail/send) with the sendgrid-go SDK. Its zero value sends
// through SendGrid's real API; it is safe for concurrent use once
// configured.
type SendGrid struct {
	// BaseURL is the scheme and host (and optional path prefix) of the
	// API. Empty: SendGrid's global API, https://api.sendgrid.com. Tests
	// point it at a fake such as http://127.0.0.1:port.
	BaseURL string
	// HTTPClient sends the requests. Nil uses a client with a 30 second
	// timeout that does not follow redirects. Either way the deadline of
	// the context given to Send bounds each call.
	HTTPClient *http.Client
	// Now is the clock for send_at limits and Retry-After dates; nil uses
	// time.Now.
	Now func() time.Time
}

// Name returns "sendgrid".
func (s *SendGrid) Name() string { return "sendgrid" }

// Send sends the message of cmd through acct and returns its X-Message-Id.
//
// The command is validated first; a command SendGrid could never accept
// gives a permanent error made by sender.InvalidCommand, and an account
// without an API key a permanent error with Code "invalid_account". The
// message carries the command's custom args plus the command id and origin
// event id under event.SendGridArgCommandID and event.SendGridArgEventID, so
// that Event Webhook events can be matched to the command; these two are
// never taken from the command's custom args.
//
// Any 2xx answer is a Receipt with Status "accepted". Other answers are
// classified by sender.Classify, with the field of SendGrid's first error as
// the code and its error messages as the message; Retry-After, or else
// X-RateLimit-Reset, gives the delay asked for. No answer within the
// context's deadline or the client's timeout gives Code "timeout", a failed
// connection Code "connection", both retryable. Errors never contain the
// API key.
func (s *SendGrid) Send(ctx context.Context, cmd *eventsv1.EmailCommand, acct sender.Account) (sender.Receipt, error) {
	m, perr := s.message(cmd)
	if perr != nil {
		return sender.Receipt{}, perr
	}
	key, perr := apiKey(acct)
	if perr != nil {
		return sender.Receipt{}, perr
	}
	host, perr := s.host()
	if perr != nil {
		return sender.Receipt{}, perr
	}
	// json.Marshal rather than mail.GetRequestBody, which logs an encoding
	// error and sends an empty body.
	body, err := json.Marshal(m)
	if err != nil {
		return sender.Receipt{}, &sender.ProviderError{Code: "invalid_command", Message: "message could not be encoded: " + err.Error()}
	}

	req := sendgrid.GetRequest(key, mailSendPath, host)
	req.Method = rest.Post
	req.Body = body
	// A client of its own rather than sendgrid.MakeRequestWithContext,
	// which sends through the package-wide sendgrid.DefaultClient.
	c := &rest.Client{HTTPClient: sender.ClientOr(s.HTTPClient)}
	res, err := c.SendWithContext(ctx, req)
	if err := s.outcome(ctx, res, err); err != nil {
		return sender.Receipt{}, redact(err, key)
	}
	return sender.Receipt{ProviderID: http.Header(res.Headers).Get("X-Message-Id"), Status: "accepted"}, nil
}

// host returns the base URL requests are sent to, without a trailing slash:
// sendgrid.GetRequest appends the endpoint to it as it is.
func (s *SendGrid) host() (string, *sender.ProviderError) {
	if s.BaseURL == "" {
		return defaultBaseURL, nil
	}
	u, err := url.Parse(s.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", &sender.ProviderError{Code: "invalid_config", Message: "sendgrid base URL is not an absolute http or https URL"}
	}
	return strings.TrimRight(s.BaseURL, "/"), nil
}

// apiKey returns acct's SendGrid API key.
func apiKey(acct sender.Account) (string, *sender.ProviderError) {
	name := acct.Name
	if name == "" {
		name = "default"
	}
	invalid := func(msg string) *sender.ProviderError {
		return &sender.ProviderError{Code: "invalid_account", Message: fmt.Sprintf("sendgrid account %q: %s", name, msg)}
	}
	key := acct.Credentials["api_key"]
	if key == "" {
		return "", invalid("api_key is missing")
	}
	// The key is sent in the Authorization header.
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return "", invalid("api_key has characters other than printable ASCII")
		}
	}
	return key, nil
}

// message validates cmd and builds its mail send request body.
func (s *SendGrid) message(cmd *eventsv1.EmailCommand) (*sgmail.SGMailV3, *sender.ProviderError) {
	if cmd.GetId() == "" {
		return nil, sender.InvalidCommand("id", "is missing")
	}

	from := cmd.GetFrom()
	if from.GetEmail() == "" {
		return nil, sender.InvalidCommand("from", "is missing")
	}
	if !validAddress(from.GetEmail()) {
		return nil, sender.InvalidCommand("from", "%q is not a valid email address", from.GetEmail())
	}

	to, cc, bcc := cmd.GetTo(), cmd.GetCc(), cmd.GetBcc()
	if len(to) == 0 {
		return nil, sender.InvalidCommand("to", "has no recipient")
	}
	if n := len(to) + len(cc) + len(bcc); n > maxRecipients {
		return nil, sender.InvalidCommand("to", "to, cc and bcc have %d recipients; SendGrid accepts at most %d", n, maxRecipients)
	}
	// SendGrid refuses an address that appears twice among the recipients
	// of a personalization.
	seen := make(map[string]string, len(to)+len(cc)+len(bcc))
	for _, list := range []struct {
		field string
		addrs []*eventsv1.EmailAddress
	}{{"to", to}, {"cc", cc}, {"bcc", bcc}} {
		for i, a := range list.addrs {
			if !validAddress(a.GetEmail()) {
				return nil, sender.InvalidCommand(list.field, "entry %d (%q) is not a valid email address", i, a.GetEmail())
			}
			k := strings.ToLower(a.GetEmail())
			if prev, dup := seen[k]; dup {
				return nil, sender.InvalidCommand(list.field, "entry %d (%q) is already a recipient in %s", i, a.GetEmail(), prev)
			}
			seen[k] = list.field
		}
	}
	if rt := cmd.GetReplyTo(); rt != nil && !validAddress(rt.GetEmail()) {
		return nil, sender.InvalidCommand("reply_to", "%q is not a valid email address", rt.GetEmail())
	}

	text, html, templateID := cmd.GetText(), cmd.GetHtml(), cmd.GetTemplateId()
	if text == "" && html == "" && templateID == "" {
		return nil, sender.InvalidCommand("text", "neither text, html nor template_id is set")
	}
	if templateID == "" && cmd.GetSubject() == "" {
		return nil, sender.InvalidCommand("subject", "is missing (only a template may supply it)")
	}

	var data map[string]any
	if raw := cmd.GetDynamicTemplateData(); len(raw) > 0 {
		if templateID == "" {
			return nil, sender.InvalidCommand("dynamic_template_data", "is set without template_id")
		}
		var err error
		if data, err = templateData(raw); err != nil {
			return nil, sender.InvalidCommand("dynamic_template_data", "%v", err)
		}
	}

	atts := cmd.GetAttachments()
	for i, a := range atts {
		switch {
		case a.GetFilename() == "":
			return nil, sender.InvalidCommand("attachments", "entry %d has no filename", i)
		case len(a.GetContent()) == 0:
			return nil, sender.InvalidCommand("attachments", "entry %d (%q) has no content", i, a.GetFilename())
		}
		switch a.GetDisposition() {
		case "", "attachment":
		case "inline":
			if a.GetContentId() == "" {
				return nil, sender.InvalidCommand("attachments", "entry %d (%q) is inline but has no content_id", i, a.GetFilename())
			}
		default:
			return nil, sender.InvalidCommand("attachments", "entry %d (%q) has disposition %q; want attachment or inline", i, a.GetFilename(), a.GetDisposition())
		}
	}

	cats := cmd.GetCategories()
	if len(cats) > maxCategories {
		return nil, sender.InvalidCommand("categories", "has %d categories; SendGrid accepts at most %d", len(cats), maxCategories)
	}
	for i, c := range cats {
		if c == "" || len(c) > maxCategoryLength {
			return nil, sender.InvalidCommand("categories", "entry %d must have 1 to %d bytes", i, maxCategoryLength)
		}
	}

	sendAt := cmd.GetSendAt()
	switch {
	case sendAt < 0:
		return nil, sender.InvalidCommand("send_at", "is negative")
	case sendAt > 0:
		if limit := sender.NowOr(s.Now).Add(maxSendAhead); time.Unix(sendAt, 0).After(limit) {
			return nil, sender.InvalidCommand("send_at", "%s is more than 72 hours ahead; SendGrid schedules no further",
				time.Unix(sendAt, 0).UTC().Format(time.RFC3339))
		}
	}

	m := sgmail.NewV3Mail()
	m.SetFrom(sgmail.NewEmail(from.GetName(), from.GetEmail()))
	m.Subject = cmd.GetSubject()
	p := sgmail.NewPersonalization()
	p.AddTos(emails(to)...)
	p.AddCCs(emails(cc)...)
	p.AddBCCs(emails(bcc)...)
	for k, v := range data {
		p.SetDynamicTemplateData(k, v)
	}
	m.AddPersonalizations(p)
	if rt := cmd.GetReplyTo(); rt != nil {
		m.SetReplyTo(sgmail.NewEmail(rt.GetName(), rt.GetEmail()))
	}
	// SendGrid requires text/plain before text/html.
	if text != "" {
		m.AddContent(sgmail.NewContent("text/plain", text))
	}
	if html != "" {
		m.AddContent(sgmail.NewContent("text/html", html))
	}
	if templateID != "" {
		m.SetTemplateID(templateID)
	}
	for _, a := range atts {
		disposition := a.GetDisposition()
		if disposition == "" {
			disposition = "attachment"
		}
		m.AddAttachment(sgmail.NewAttachment().
			SetContent(base64.StdEncoding.EncodeToString(a.GetContent())).
			SetType(a.GetContentType()).
			SetFilename(a.GetFilename()).
			SetDisposition(disposition).
			SetContentID(a.GetContentId()))
	}
	if len(cats) > 0 {
		m.AddCategories(cats...)
	}
	for k, v := range cmd.GetCustomArgs() {
		if k != event.SendGridArgCommandID && k != event.SendGridArgEventID {
			m.SetCustomArg(k, v)
		}
	}
	m.SetCustomArg(event.SendGridArgCommandID, cmd.GetId())
	if id := cmd.GetOrigin().GetEventId(); id != "" {
		m.SetCustomArg(event.SendGridArgEventID, id)
	}
	if sendAt > 0 {
		m.SetSendAt(int(sendAt))
	}
	if cmd.GetSandbox() {
		m.SetMailSettings(sgmail.NewMailSettings().SetSandboxMode(sgmail.NewSetting(true)))
	}
	return m, nil
}

// validAddress reports whether s is a bare email address, without display
// name or angle brackets, that SendGrid's SDK parses.
func validAddress(s string) bool {
	if s == "" {
		return false
	}
	e, err := sgmail.ParseEmail(s)
	return err == nil && e.Name == "" && e.Address == s
}

func emails(list []*eventsv1.EmailAddress) []*sgmail.Email {
	out := make([]*sgmail.Email, len(list))
	for i, a := range list {
		out[i] = sgmail.NewEmail(a.GetName(), a.GetEmail())
	}
	return out
}

// templateData decodes raw, which must be a JSON object. Numbers are kept as
// written.
func templateData(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("has data after its JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("is not a JSON object")
	}
	return obj, nil
}

// outcome turns the SDK's answer into Send's error, or nil on success.
func (s *SendGrid) outcome(ctx context.Context, res *rest.Response, err error) error {
	if res != nil {
		// An answer came. err, if any, is a failure to read its body,
		// which matters only to the message of a refusal: a 2xx answer
		// means SendGrid accepted the message.
		if res.StatusCode >= 200 && res.StatusCode < 300 {
			return nil
		}
		h := http.Header(res.Headers)
		code, message := errorMessage(res.StatusCode, res.Body)
		return sender.Classify(res.StatusCode, code, message, s.retryAfter(h), sender.NowOr(s.Now))
	}
	if err == nil {
		return &sender.ProviderError{Message: "no answer and no error from the sendgrid client", Retryable: true}
	}
	return sender.TransportError(ctx, "sendgrid", err)
}

// retryAfter returns the Retry-After header of h or, when there is none,
// the delay until X-RateLimit-Reset (Unix seconds), which SendGrid sets on
// rate-limited answers, in whole seconds.
func (s *SendGrid) retryAfter(h http.Header) string {
	if v := h.Get("Retry-After"); v != "" {
		return v
	}
	reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return ""
	}
	d := time.Unix(reset, 0).Sub(sender.NowOr(s.Now))
	if d <= 0 {
		return ""
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// errorMessage reads SendGrid's error body,
//
//	{"errors": [{"message": "...", "field": "...", "help": "..."}]}
//
// returning the first field as the code and the errors as "field: message"
// joined by "; ". A body of another form gives its beginning as the message,
// and an empty body the status text.
func errorMessage(status int, body string) (code, message string) {
	var parsed struct {
		Errors []struct {
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &parsed) == nil && len(parsed.Errors) > 0 {
		var parts []string
		for _, e := range parsed.Errors {
			if code == "" {
				code = e.Field
			}
			switch {
			case e.Field != "" && e.Message != "":
				parts = append(parts, e.Field+": "+e.Message)
			case e.Message != "":
				parts = append(parts, e.Message)
			case e.Field != "":
				parts = append(parts, e.Field)
			}
		}
		if len(parts) > 0 {
			return code, truncate(strings.Join(parts, "; "), maxMessage)
		}
	}
	if raw := strings.Join(strings.Fields(strings.ToValidUTF8(body, "\uFFFD")), " "); raw != "" {
		return code, truncate(raw, maxRawMessage)
	}
	return code, http.StatusText(status)
}

// truncate cuts s to at most n bytes at a character boundary, marking the
// cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// redact removes key from err's message. SendGrid has no reason to repeat
// the key, but nothing may carry it into logs or events.
func redact(err error, key string) error {
	if key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	var pe *sender.ProviderError
	if errors.As(err, &pe) {
		c := *pe
		c.Message = strings.ReplaceAll(c.Message, key, "[redacted]")
		c.Code = strings.ReplaceAll(c.Code, key, "[redacted]")
		return &c
	}
	return errors.New(strings.ReplaceAll(err.Error(), key, "[redacted]"))
}
