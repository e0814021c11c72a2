// Package tenant holds the configuration of tenants and their webhook
// sources, and an in-memory Registry of it that services read on their hot
// path. It knows nothing of NATS: package tenantkv keeps a Registry in step
// with the JetStream KV buckets.
package tenant

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/signature"
)

// Tenant is one customer of the platform.
type Tenant struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name,omitempty"`
	// Suspended tenants keep their configuration but receive nothing.
	Suspended bool `json:"suspended,omitempty"`
	// RateLimit caps the tenant's webhook intake on each ingress replica;
	// zero uses the ingress default.
	RateLimit RateLimit `json:"rate_limit,omitzero"`
	// Accounts are the tenant's own provider accounts by name, used by the
	// email and sms nodes that name one (account: marketing); the others go
	// through the deployment's accounts. No credential is stored here:
	// SecretRef names the secret the senders read them from.
	Accounts map[string]Account `json:"accounts,omitempty"`
}

// Providers of tenant accounts.
const (
	ProviderSendGrid = "sendgrid"
	ProviderTwilio   = "twilio"
)

// Account is a tenant's own provider account.
type Account struct {
	// Provider is sendgrid or twilio.
	Provider string `json:"provider"`
	// SecretRef names the secret holding the credentials: the senders read
	// GREENTIC_SECRET_{REF}_{FIELD} from their environment (REF upper-cased,
	// '-' as '_'), e.g. GREENTIC_SECRET_ACME_SENDGRID_API_KEY.
	SecretRef string `json:"secret_ref"`
}

const maxSecretRef = 64

func (a Account) validate(name string) error {
	if err := bus.ValidateName("accounts", name); err != nil {
		return err
	}
	if a.Provider != ProviderSendGrid && a.Provider != ProviderTwilio {
		return fmt.Errorf("accounts.%s.provider: must be %s or %s, got %q", name, ProviderSendGrid, ProviderTwilio, a.Provider)
	}
	if a.SecretRef == "" || len(a.SecretRef) > maxSecretRef {
		return fmt.Errorf("accounts.%s.secret_ref: required, at most %d characters", name, maxSecretRef)
	}
	for _, c := range a.SecretRef {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("accounts.%s.secret_ref: only letters, digits, '-' and '_' are allowed, got %q", name, a.SecretRef)
		}
	}
	return nil
}

// MaxRate bounds a rate limit's per_second and burst.
const MaxRate = 1_000_000

// RateLimit is a token bucket: PerSecond requests on average, Burst at once.
type RateLimit struct {
	PerSecond float64 `json:"per_second,omitempty"`
	Burst     int     `json:"burst,omitempty"`
}

// Validate checks the tenant id and its limits.
func (t Tenant) Validate() error {
	if err := bus.ValidateTenant(t.ID); err != nil {
		return err
	}
	if t.RateLimit.PerSecond < 0 || t.RateLimit.Burst < 0 {
		return fmt.Errorf("rate_limit: per_second and burst must not be negative, got %g and %d", t.RateLimit.PerSecond, t.RateLimit.Burst)
	}
	if t.RateLimit.PerSecond > MaxRate || t.RateLimit.Burst > MaxRate {
		return fmt.Errorf("rate_limit: per_second and burst must be at most %d, got %g and %d", MaxRate, t.RateLimit.PerSecond, t.RateLimit.Burst)
	}
	if (t.RateLimit.PerSecond == 0) != (t.RateLimit.Burst == 0) {
		return errors.New("rate_limit: set both per_second and burst, or neither")
	}
	for _, name := range slices.Sorted(maps.Keys(t.Accounts)) {
		if err := t.Accounts[name].validate(name); err != nil {
			return err
		}
	}
	return nil
}

// Verification schemes of a webhook source. Each is checked exactly as the
// provider documents it (see package signature).
const (
	SchemeHMACSHA256       = "hmac-sha256"
	SchemeStandardWebhooks = "standard-webhooks"
	SchemeGitHub           = "github"
	SchemeStripe           = "stripe"
	SchemeTwilio           = "twilio"
	SchemeSendGrid         = "sendgrid"
	SchemeBearer           = "bearer"
	SchemeNone             = "none"
)

// CloudEventsSource is the name of the source whose scheme and secrets
// authenticate a tenant's CloudEvents route; only schemes that sign the
// request generically may be used for it.
const CloudEventsSource = "cloudevents"

var cloudEventsSchemes = []string{SchemeHMACSHA256, SchemeStandardWebhooks, SchemeBearer, SchemeNone}

// Schemes lists every verification scheme.
var Schemes = []string{SchemeHMACSHA256, SchemeStandardWebhooks, SchemeGitHub, SchemeStripe, SchemeTwilio, SchemeSendGrid, SchemeBearer, SchemeNone}

// HasConvention reports whether a scheme's provider says where the event type
// and delivery id are, so a source of it may leave event_type unset.
func HasConvention(scheme string) bool {
	switch scheme {
	case SchemeStandardWebhooks, SchemeGitHub, SchemeStripe, SchemeTwilio, SchemeSendGrid:
		return true
	}
	return false
}

// timestamped reports whether a scheme signs a timestamp that Tolerance bounds.
func timestamped(scheme string) bool {
	switch scheme {
	case SchemeStandardWebhooks, SchemeStripe, SchemeSendGrid:
		return true
	}
	return false
}

// Signature says where and how a source's HMAC signature is carried
// (scheme hmac-sha256 only).
type Signature struct {
	Header   string `json:"header,omitempty"`   // e.g. X-Greentic-Signature
	Encoding string `json:"encoding,omitempty"` // hex (default) or base64
	Prefix   string `json:"prefix,omitempty"`   // e.g. "sha256="
}

// IsZero reports whether nothing is configured.
func (s Signature) IsZero() bool { return s == Signature{} }

// ValueFrom says where a value of an incoming request is taken from: a
// top-level JSON field of the body, a header, or a fixed value.
type ValueFrom struct {
	Field  string `json:"field,omitempty"`
	Header string `json:"header,omitempty"`
	Value  string `json:"value,omitempty"`
}

// IsZero reports whether nothing is configured.
func (v ValueFrom) IsZero() bool { return v.Field == "" && v.Header == "" && v.Value == "" }

func (v ValueFrom) validate(name string) error {
	n := 0
	for _, s := range []string{v.Field, v.Header, v.Value} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%s: set only one of field, header or value", name)
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("5m") in
// JSON and YAML.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string such as "300s" or "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"5m\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit such as \"300s\" or \"5m\"", s)
	}
	*d = Duration(v)
	return nil
}

// Limits of a source's configuration.
const (
	// DefaultMaxBodyBytes is the body limit of a source that sets none.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultTolerance is how far a signed timestamp may be from now.
	DefaultTolerance = 5 * time.Minute
	// MaxTolerance bounds Tolerance: a replay older than the tolerance is
	// refused by its timestamp, so it must stay well inside the delivery
	// window in which delivery ids are remembered.
	MaxTolerance = time.Hour
	// MaxSecrets bounds the secrets (retiring ones included) and the
	// public keys of a source: each is tried on every request.
	MaxSecrets = 8
)

// Source is an inbound webhook source of a tenant.
type Source struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	Scheme string `json:"scheme"`
	// Secrets are all accepted at once, so a secret can be rotated: shared
	// HMAC secrets (hmac-sha256, github), whsec_ secrets (standard-webhooks,
	// stripe), auth tokens (twilio) or tokens (bearer). The first is the
	// newest: senders sign with it.
	Secrets []string `json:"secrets,omitempty"`
	// RetiringSecrets are replaced secrets still accepted until their
	// deadline, so senders can move to the new secret without a gap.
	RetiringSecrets []RetiringSecret `json:"retiring_secrets,omitempty"`
	// PublicKeys are SendGrid's Event Webhook verification keys (base64 DER).
	PublicKeys []string `json:"public_keys,omitempty"`
	// Signature locates a generic HMAC signature (hmac-sha256 only).
	Signature Signature `json:"signature,omitzero"`
	// Tolerance bounds the age of signed timestamps (standard-webhooks,
	// stripe, sendgrid); 0 means DefaultTolerance.
	Tolerance Duration `json:"tolerance,omitempty"`
	// URL is the public URL the provider calls (twilio signs it). Empty means
	// the URL as received, corrected by X-Forwarded-Proto and -Host.
	URL string `json:"url,omitempty"`
	// EventType and EventID say where the type and the delivery id come
	// from; providers with a convention may leave them unset.
	EventType ValueFrom `json:"event_type,omitzero"`
	EventID   ValueFrom `json:"event_id,omitzero"`
	// MaxBodyBytes limits the request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	Disabled     bool  `json:"disabled,omitempty"`
}

// RetiringSecret is a replaced secret of a source, accepted until Until.
type RetiringSecret struct {
	Secret string    `json:"secret"`
	Until  time.Time `json:"until"`
}

// AcceptedSecrets returns the secrets a request may be signed with at now:
// Secrets, then the retiring secrets whose deadline has not passed.
func (s Source) AcceptedSecrets(now time.Time) []string {
	if len(s.RetiringSecrets) == 0 {
		return s.Secrets
	}
	out := make([]string, 0, len(s.Secrets)+len(s.RetiringSecrets))
	out = append(out, s.Secrets...)
	for _, r := range s.RetiringSecrets {
		if now.Before(r.Until) {
			out = append(out, r.Secret)
		}
	}
	return out
}

// DropExpiredSecrets removes the retiring secrets no longer accepted at now.
func (s *Source) DropExpiredSecrets(now time.Time) {
	s.RetiringSecrets = slices.DeleteFunc(slices.Clone(s.RetiringSecrets), func(r RetiringSecret) bool { return !now.Before(r.Until) })
	if len(s.RetiringSecrets) == 0 {
		s.RetiringSecrets = nil
	}
}

// BodyLimit is the effective body limit.
func (s Source) BodyLimit() int64 {
	if s.MaxBodyBytes > 0 {
		return s.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

// EffectiveTolerance is the effective timestamp tolerance.
func (s Source) EffectiveTolerance() time.Duration {
	if s.Tolerance > 0 {
		return time.Duration(s.Tolerance)
	}
	return DefaultTolerance
}

// Validate checks a source, naming the offending field. Errors never
// contain a secret.
func (s Source) Validate() error {
	if err := bus.ValidateTenant(s.Tenant); err != nil {
		return err
	}
	if err := bus.ValidateName("source", s.Name); err != nil {
		return err
	}
	if err := s.validateCredentials(); err != nil {
		return err
	}
	if !s.Signature.IsZero() && s.Scheme != SchemeHMACSHA256 {
		return fmt.Errorf("signature: only scheme hmac-sha256 uses it (scheme is %s)", s.Scheme)
	}
	if s.Tolerance != 0 {
		if !timestamped(s.Scheme) {
			return fmt.Errorf("tolerance: scheme %s signs no timestamp", s.Scheme)
		}
		if s.Tolerance < Duration(time.Second) || s.Tolerance > Duration(MaxTolerance) {
			return fmt.Errorf("tolerance: must be between 1s and %s, got %s", MaxTolerance, time.Duration(s.Tolerance))
		}
	}
	if s.URL != "" {
		if s.Scheme != SchemeTwilio {
			return fmt.Errorf("url: only scheme twilio uses it (scheme is %s)", s.Scheme)
		}
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("url: %q is not an absolute http(s) URL", s.URL)
		}
	}
	if s.Name == CloudEventsSource {
		if !slices.Contains(cloudEventsSchemes, s.Scheme) {
			return fmt.Errorf("scheme: source %q authenticates CloudEvents and must use one of %s", CloudEventsSource, strings.Join(cloudEventsSchemes, ", "))
		}
		if !s.EventType.IsZero() || !s.EventID.IsZero() {
			return fmt.Errorf("event_type, event_id: source %q takes them from the CloudEvents' type and id", CloudEventsSource)
		}
		return s.validateLimits()
	}
	if err := s.validateLimits(); err != nil {
		return err
	}
	if s.EventType.IsZero() && !HasConvention(s.Scheme) {
		return fmt.Errorf("event_type: say where the event type comes from (field, header or value); scheme %s has no convention", s.Scheme)
	}
	if err := s.EventType.validate("event_type"); err != nil {
		return err
	}
	if s.EventType.Value != "" {
		if err := bus.ValidateEventType(s.EventType.Value); err != nil {
			return fmt.Errorf("event_type.value: %w", err)
		}
	}
	if err := s.EventID.validate("event_id"); err != nil {
		return err
	}
	if s.EventID.Value != "" {
		return errors.New("event_id.value: a fixed id would make every request after the first a duplicate; use field or header")
	}
	return nil
}

func (s Source) validateLimits() error {
	if s.MaxBodyBytes < 0 {
		return fmt.Errorf("max_body_bytes: must not be negative, got %d", s.MaxBodyBytes)
	}
	return nil
}

func (s Source) validateCredentials() error {
	if s.Scheme == "" {
		return errors.New("scheme: required (one of " + strings.Join(Schemes, ", ") + ")")
	}
	if !slices.Contains(Schemes, s.Scheme) {
		return fmt.Errorf("scheme: %q is not supported (supported: %s)", s.Scheme, strings.Join(Schemes, ", "))
	}
	if len(s.PublicKeys) > 0 && s.Scheme != SchemeSendGrid {
		return fmt.Errorf("public_keys: only scheme sendgrid uses them (scheme is %s)", s.Scheme)
	}
	switch s.Scheme {
	case SchemeNone:
		if len(s.Secrets) > 0 || len(s.RetiringSecrets) > 0 {
			return errors.New("secrets: scheme none verifies nothing; remove the secrets or choose a scheme")
		}
		return nil
	case SchemeSendGrid:
		if len(s.Secrets) > 0 || len(s.RetiringSecrets) > 0 {
			return errors.New("secrets: scheme sendgrid verifies with public_keys, not secrets")
		}
		if len(s.PublicKeys) == 0 || len(s.PublicKeys) > MaxSecrets {
			return fmt.Errorf("public_keys: between 1 and %d verification keys are required for scheme sendgrid", MaxSecrets)
		}
		for i, k := range s.PublicKeys {
			if _, err := signature.ParseSendGridPublicKey(k); err != nil {
				return fmt.Errorf("public_keys[%d]: %w", i, err)
			}
		}
		return nil
	}
	if len(s.Secrets) == 0 || len(s.Secrets) > MaxSecrets {
		return fmt.Errorf("secrets: between 1 and %d secrets are required for scheme %s", MaxSecrets, s.Scheme)
	}
	// Retiring secrets count until they are dropped: each is tried on
	// every request.
	if n := len(s.Secrets) + len(s.RetiringSecrets); n > MaxSecrets {
		return fmt.Errorf("secrets: at most %d secrets, retiring ones included, got %d", MaxSecrets, n)
	}
	for i, sec := range s.Secrets {
		if err := s.validateSecret(sec); err != nil {
			return fmt.Errorf("secrets[%d]: %w", i, err)
		}
	}
	for i, r := range s.RetiringSecrets {
		if err := s.validateSecret(r.Secret); err != nil {
			return fmt.Errorf("retiring_secrets[%d]: %w", i, err)
		}
		if r.Until.IsZero() {
			return fmt.Errorf("retiring_secrets[%d].until: required", i)
		}
	}
	if s.Scheme == SchemeHMACSHA256 {
		if s.Signature.Header == "" {
			return errors.New("signature.header: required for scheme hmac-sha256")
		}
		switch s.Signature.Encoding {
		case "", "hex", "base64":
		default:
			return fmt.Errorf("signature.encoding: %q is not hex or base64", s.Signature.Encoding)
		}
	}
	return nil
}

// validateSecret checks one secret of the source's scheme. Errors never
// contain the secret.
func (s Source) validateSecret(sec string) error {
	minLen := 8
	if s.Scheme == SchemeBearer {
		minLen = 16
	}
	switch {
	case len(sec) < minLen:
		return fmt.Errorf("must be at least %d characters", minLen)
	case s.Scheme == SchemeStandardWebhooks:
		return signature.ValidStandardWebhooksSecret(sec)
	case s.Scheme == SchemeStripe && !strings.HasPrefix(sec, "whsec_"):
		return errors.New("a Stripe signing secret starts with whsec_")
	}
	return nil
}

// Key is the KV key of an item of a tenant (a source, flow or schedule) in
// its bucket: {tenant}.{name}.
func Key(tenant, name string) string { return tenant + "." + name }

// SourceKey is the KV key of a source: {tenant}.{source}.
func SourceKey(tenant, source string) string { return Key(tenant, source) }

// FlowKey is the KV key of a flow: {tenant}.{flow}.
func FlowKey(tenant, flow string) string { return Key(tenant, flow) }

// SplitKey splits a {tenant}.{name} key.
func SplitKey(key string) (tenant, name string, ok bool) {
	tenant, name, ok = strings.Cut(key, ".")
	return tenant, name, ok && tenant != "" && name != ""
}

// Registry is a concurrency-safe snapshot of tenants and sources.
type Registry struct {
	mu      sync.RWMutex
	tenants map[string]Tenant
	sources map[string]Source
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{tenants: map[string]Tenant{}, sources: map[string]Source{}}
}

// PutTenant adds or replaces a tenant.
func (r *Registry) PutTenant(t Tenant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tenants[t.ID] = t
}

// DeleteTenant removes a tenant (its sources stay until deleted themselves,
// but are unreachable while the tenant is missing).
func (r *Registry) DeleteTenant(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tenants, id)
}

// PutSource adds or replaces a source.
func (r *Registry) PutSource(s Source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sources[SourceKey(s.Tenant, s.Name)] = s
}

// DeleteSource removes a source.
func (r *Registry) DeleteSource(tenant, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sources, SourceKey(tenant, name))
}

// Tenant returns a tenant by id.
func (r *Registry) Tenant(id string) (Tenant, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.tenants[id]
	return t, ok
}

// Source returns a source of an existing tenant.
func (r *Registry) Source(tenant, name string) (Source, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.tenants[tenant]; !ok {
		return Source{}, false
	}
	s, ok := r.sources[SourceKey(tenant, name)]
	return s, ok
}

// Tenants lists the tenant ids in order.
func (r *Registry) Tenants() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.tenants))
	for id := range r.tenants {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
