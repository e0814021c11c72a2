package sender

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Command is what a sender consumes: EmailCommand or SmsCommand.
type Command interface {
	proto.Message
	GetId() string
	GetOrigin() *eventsv1.CommandOrigin
	GetAccount() string
}

// Account is the provider account one send goes through, with its
// credentials. Credentials never appear in logs, errors or events.
type Account struct {
	// Name is empty for the deployment's account, else the tenant's
	// account name referenced by the command.
	Name string
	// Key identifies the account for rate limiting: "default", or
	// "{tenant}/{name}" for a tenant's own account.
	Key string
	// Credentials by field: SendGrid "api_key"; Twilio "account_sid" and
	// "auth_token", or "account_sid", "api_key_sid" and "api_key_secret".
	Credentials map[string]string
}

// Receipt is the provider's answer to an accepted message.
type Receipt struct {
	// ProviderID is the provider's id of the message (SendGrid
	// X-Message-Id, Twilio message SID); delivery events carry it.
	ProviderID string
	// Status is the provider's status of the message, if it gives one
	// ("queued", "accepted").
	Status string
}

// Provider sends one command through one account. Send returns a
// *ProviderError when the provider answered with a refusal or when no answer
// came (timeout, connection failure); any other error is treated as
// retryable. It must not retry by itself: the sender decides.
type Provider[C Command] interface {
	// Name is the provider in events and metrics: "sendgrid", "twilio",
	// "capture".
	Name() string
	Send(ctx context.Context, cmd C, acct Account) (Receipt, error)
}

// ProviderError is a failed send.
type ProviderError struct {
	// Status is the HTTP status the provider answered; 0 when no answer
	// came (timeout, refused connection) or the command was refused before
	// sending (Code "invalid_command").
	Status int
	// Code is the provider's error code, when it gives one (Twilio's
	// numeric code, SendGrid's field), or "timeout", "connection",
	// "invalid_command".
	Code string
	// Message is the provider's own message (never a credential).
	Message string
	// RetryAfter is the delay the provider asked for (Retry-After).
	RetryAfter time.Duration
	// Retryable is true for 429, 5xx, timeouts and connection failures;
	// other 4xx and invalid commands are permanent.
	Retryable bool
}

func (e *ProviderError) Error() string {
	var what string
	switch {
	case e.Status != 0:
		what = "provider answered " + strconv.Itoa(e.Status)
	case e.Code != "":
		what = e.Code
	default:
		what = "provider failure"
	}
	if e.Code != "" && e.Status != 0 {
		what += " (" + e.Code + ")"
	}
	if e.Message != "" {
		what += ": " + e.Message
	}
	return what
}

// Classify builds the ProviderError of an HTTP answer: 429 and 5xx are
// retryable, other 4xx permanent. retryAfter is the raw Retry-After header.
func Classify(status int, code, message, retryAfter string, now time.Time) *ProviderError {
	return &ProviderError{
		Status:     status,
		Code:       code,
		Message:    message,
		RetryAfter: ParseRetryAfter(retryAfter, now),
		Retryable:  status == 429 || status >= 500,
	}
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// Unparsable or past values give 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// InvalidCommand is the permanent error of a command no provider could send
// (no recipient, no content); field names the command field at fault.
func InvalidCommand(field, format string, args ...any) *ProviderError {
	return &ProviderError{Code: "invalid_command", Message: field + ": " + fmt.Sprintf(format, args...)}
}

// AsProviderError returns err's *ProviderError, or a retryable one wrapping
// an unclassified error.
func AsProviderError(err error) *ProviderError {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe
	}
	return &ProviderError{Code: "connection", Message: err.Error(), Retryable: true}
}

// ProviderClient is the providers' default HTTP client. It does not follow
// redirects: a redirected send is reported as the provider's answer, never
// sent twice nor sent elsewhere with the credentials. It keeps up to 256
// idle connections to the provider's host (Go's default transport keeps 2,
// so with more sends in flight most connections would close after their
// answer and the next send would pay a new TLS handshake), and bounds a
// call to 30 seconds.
var ProviderClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: providerTransport(256),
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func providerTransport(maxIdle int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(t.MaxIdleConns, maxIdle)
	t.MaxIdleConnsPerHost = maxIdle
	return t
}

// TransportError classifies an error of a provider call that got no answer:
// a timeout (the call's or the client's) and a failed connection are
// retryable provider errors; a call abandoned because ctx ended (shutdown)
// is ctx's error. provider names the provider in the messages.
func TransportError(ctx context.Context, provider string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return &ProviderError{Code: "timeout", Message: "no answer from " + provider + " in time", Retryable: true}
	case ctx.Err() != nil:
		return fmt.Errorf("%s: send abandoned: %w", provider, ctx.Err())
	}
	return &ProviderError{Code: "connection", Message: err.Error(), Retryable: true}
}
