// Package bus owns the JetStream topology of Greentic Events: the subject
// scheme, the streams and KV buckets, the publisher and the consumer loop.
// Every subject, stream, consumer and bucket name used by a service is built
// here, never by string concatenation elsewhere.
package bus

import (
	"fmt"
	"strings"
)

// Subject prefixes of the three subject families.
const (
	eventsRoot   = "greentic.events"
	outboundRoot = "greentic.outbound"
	dlqRoot      = "greentic.dlq"

	// ResultSuffix is the last token of a flow result subject. An event type
	// may therefore not end in this token.
	ResultSuffix = "result"
)

// Outbound channels of the senders.
const (
	ChannelEmail   = "email"
	ChannelSMS     = "sms"
	ChannelWebhook = "webhook"
)

// StageFlow is the flow-executor's stage in dead letters and consumer
// metrics; the senders' stages are their channels.
const StageFlow = "flow"

// DeadLetterStages are the stages that write dead letters.
var DeadLetterStages = []string{StageFlow, ChannelEmail, ChannelSMS, ChannelWebhook}

const (
	maxTenantLen = 64
	maxEnvLen    = 32
	maxTypeLen   = 200
	maxTokenLen  = 64
)

// TokenError reports a subject token (env, tenant, event type, stage...) that
// cannot be used. Tokens are rejected, never rewritten.
type TokenError struct {
	Field  string // "tenant", "event_type", ...
	Value  string
	Reason string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// validToken checks one dot-free token: 1..max characters of [A-Za-z0-9_-].
func validToken(field, whole, tok string, max int) error {
	if tok == "" {
		return &TokenError{field, whole, "empty token"}
	}
	if len(tok) > max {
		return &TokenError{field, whole, fmt.Sprintf("longer than %d characters", max)}
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !tokenChar(c) {
			switch c {
			case '*', '>':
				return &TokenError{field, whole, fmt.Sprintf("wildcard %q is not allowed", c)}
			case ' ', '\t', '\n', '\r':
				return &TokenError{field, whole, "whitespace is not allowed"}
			case '.':
				return &TokenError{field, whole, "dots are not allowed"}
			default:
				return &TokenError{field, whole, fmt.Sprintf("character %q is not allowed (use letters, digits, '_' and '-')", c)}
			}
		}
	}
	return nil
}

// ValidateTenant checks a tenant id: one token of [A-Za-z0-9_-], at most 64 characters.
func ValidateTenant(tenant string) error { return validToken("tenant", tenant, tenant, maxTenantLen) }

// ValidateEnv checks an environment name (dev, staging, prod, ...).
// Only lower-case letters, digits and '-' are allowed, so that the stream
// names derived from it (upper-cased, '-' as '_') cannot collide.
func ValidateEnv(env string) error {
	if err := validToken("env", env, env, maxEnvLen); err != nil {
		return err
	}
	for i := 0; i < len(env); i++ {
		if c := env[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return &TokenError{"env", env, "use lower-case letters, digits and '-'"}
		}
	}
	return nil
}

// ValidateName checks a single-token name such as a source, flow, stage or node id.
func ValidateName(field, name string) error { return validToken(field, name, name, maxTokenLen) }

// ValidateEventType checks an event type: dot-separated tokens of
// [A-Za-z0-9_-] (entity.action, may hold more dots), not ending in "result".
func ValidateEventType(t string) error {
	if t == "" {
		return &TokenError{"event_type", t, "must not be empty"}
	}
	if len(t) > maxTypeLen {
		return &TokenError{"event_type", t, fmt.Sprintf("longer than %d characters", maxTypeLen)}
	}
	toks := strings.Split(t, ".")
	for _, tok := range toks {
		if tok == "" {
			return &TokenError{"event_type", t, "empty token (leading, trailing or double dot)"}
		}
		if err := validToken("event_type", t, tok, maxTypeLen); err != nil {
			return err
		}
	}
	if toks[len(toks)-1] == ResultSuffix {
		return &TokenError{"event_type", t, fmt.Sprintf("the last token %q is reserved for flow results", ResultSuffix)}
	}
	return nil
}

// EventSubject is greentic.events.{env}.{tenant}.{type}.
func EventSubject(env, tenant, eventType string) (string, error) {
	if err := validateEnvTenant(env, tenant); err != nil {
		return "", err
	}
	if err := ValidateEventType(eventType); err != nil {
		return "", err
	}
	return eventsRoot + "." + env + "." + tenant + "." + eventType, nil
}

// ResultSubject is greentic.events.{env}.{tenant}.{type}.result. The type
// may itself be a result's ("order.created.result", when a flow ran on a
// result): what precedes its trailing result tokens must be a valid type.
func ResultSubject(env, tenant, eventType string) (string, error) {
	base, hops := SplitResultType(eventType)
	s, err := EventSubject(env, tenant, base)
	if err != nil {
		return "", err
	}
	return s + strings.Repeat("."+ResultSuffix, hops+1), nil
}

// SplitResultType splits the type of a result event into the original
// event type and the number of trailing result tokens (the hops):
// "order.created.result.result" is ("order.created", 2).
func SplitResultType(t string) (base string, hops int) {
	for {
		rest, ok := strings.CutSuffix(t, "."+ResultSuffix)
		if !ok || rest == "" {
			return t, hops
		}
		t = rest
		hops++
	}
}

// OutboundSubject is greentic.outbound.{env}.{tenant}.{channel}.
func OutboundSubject(env, tenant, channel string) (string, error) {
	if err := validateEnvTenant(env, tenant); err != nil {
		return "", err
	}
	switch channel {
	case ChannelEmail, ChannelSMS, ChannelWebhook:
	default:
		return "", &TokenError{"channel", channel, "must be email, sms or webhook"}
	}
	return outboundRoot + "." + env + "." + tenant + "." + channel, nil
}

// DLQSubject is greentic.dlq.{env}.{tenant}.{stage}.
func DLQSubject(env, tenant, stage string) (string, error) {
	if err := validateEnvTenant(env, tenant); err != nil {
		return "", err
	}
	if err := ValidateName("stage", stage); err != nil {
		return "", err
	}
	return dlqRoot + "." + env + "." + tenant + "." + stage, nil
}

// EventFilter matches every event and result of an environment; TenantEventFilter those of one tenant.
func EventFilter(env string) string { return eventsRoot + "." + env + ".>" }

// TenantEventFilter matches every event and result of one tenant.
func TenantEventFilter(env, tenant string) string {
	return eventsRoot + "." + env + "." + tenant + ".>"
}

// OutboundFilter matches the commands of one channel for every tenant.
func OutboundFilter(env, channel string) string { return outboundRoot + "." + env + ".*." + channel }

// DLQFilter matches every dead letter of an environment.
func DLQFilter(env string) string { return dlqRoot + "." + env + ".>" }

// TenantDLQFilter matches every dead letter of one tenant.
func TenantDLQFilter(env, tenant string) string { return dlqRoot + "." + env + "." + tenant + ".>" }

// DLQSelectFilter matches the dead letters of an environment of one tenant,
// of one stage, or both; an empty tenant or stage matches every one.
func DLQSelectFilter(env, tenant, stage string) (string, error) {
	if err := ValidateEnv(env); err != nil {
		return "", err
	}
	t, s := "*", "*"
	if tenant != "" {
		if err := ValidateTenant(tenant); err != nil {
			return "", err
		}
		t = tenant
	}
	if stage != "" {
		if err := ValidateName("stage", stage); err != nil {
			return "", err
		}
		s = stage
	}
	return dlqRoot + "." + env + "." + t + "." + s, nil
}

func validateEnvTenant(env, tenant string) error {
	if err := ValidateEnv(env); err != nil {
		return err
	}
	return ValidateTenant(tenant)
}

// Kind is the family a subject belongs to.
type Kind int

// Subject families.
const (
	KindUnknown Kind = iota
	KindEvent
	KindResult
	KindOutbound
	KindDLQ
)

// Subject is a parsed bus subject.
type Subject struct {
	Kind   Kind
	Env    string
	Tenant string
	// Type is the event type for events and results, the channel for
	// outbound commands and the stage for dead letters.
	Type string
}

// ParseSubject splits a subject built by this package back into its parts.
func ParseSubject(s string) (Subject, error) {
	toks := strings.Split(s, ".")
	if len(toks) < 5 || toks[0] != "greentic" {
		return Subject{}, fmt.Errorf("subject %q is not a greentic subject", s)
	}
	out := Subject{Env: toks[2], Tenant: toks[3], Type: strings.Join(toks[4:], ".")}
	switch toks[1] {
	case "events":
		out.Kind = KindEvent
		if toks[len(toks)-1] == ResultSuffix && len(toks) > 5 {
			out.Kind = KindResult
			out.Type = strings.Join(toks[4:len(toks)-1], ".")
		}
	case "outbound":
		out.Kind = KindOutbound
	case "dlq":
		out.Kind = KindDLQ
	default:
		return Subject{}, fmt.Errorf("subject %q is not a greentic subject", s)
	}
	if err := validateEnvTenant(out.Env, out.Tenant); err != nil {
		return Subject{}, fmt.Errorf("subject %q: %w", s, err)
	}
	return out, nil
}
