// Package tenant holds the configuration of tenants and their webhook
// sources, and an in-memory Registry of it that services read on their hot
// path. It knows nothing of NATS: package tenantkv keeps a Registry in step
// with the JetStream KV buckets.
package tenant

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/greentic/events/pkg/bus"
)

// Tenant is one customer of the platform.
type Tenant struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name,omitempty"`
	// Suspended tenants keep their configuration but receive nothing.
	Suspended bool `json:"suspended,omitempty"`
}

// Validate checks the tenant id.
func (t Tenant) Validate() error { return bus.ValidateTenant(t.ID) }

// Verification schemes of a webhook source.
const (
	SchemeHMACSHA256 = "hmac-sha256"
	SchemeNone       = "none"
)

// Signature says where and how a source's HMAC signature is carried.
type Signature struct {
	Header   string `json:"header,omitempty"`   // e.g. X-Greentic-Signature
	Encoding string `json:"encoding,omitempty"` // hex (default) or base64
	Prefix   string `json:"prefix,omitempty"`   // e.g. "sha256="
}

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

// DefaultMaxBodyBytes is the body limit of a source that sets none.
const DefaultMaxBodyBytes = 1 << 20

// Source is an inbound webhook source of a tenant.
type Source struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	Scheme string `json:"scheme"`
	// Secrets are all accepted at once, so a secret can be rotated.
	Secrets   []string  `json:"secrets,omitempty"`
	Signature Signature `json:"signature,omitempty"`
	EventType ValueFrom `json:"event_type"`
	EventID   ValueFrom `json:"event_id,omitempty"`
	// MaxBodyBytes limits the request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	Disabled     bool  `json:"disabled,omitempty"`
}

// BodyLimit is the effective body limit.
func (s Source) BodyLimit() int64 {
	if s.MaxBodyBytes > 0 {
		return s.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

// Validate checks a source, naming the offending field.
func (s Source) Validate() error {
	if err := bus.ValidateTenant(s.Tenant); err != nil {
		return err
	}
	if err := bus.ValidateName("source", s.Name); err != nil {
		return err
	}
	switch s.Scheme {
	case SchemeHMACSHA256:
		if len(s.Secrets) == 0 {
			return errors.New("secrets: at least one secret is required for scheme hmac-sha256")
		}
		for i, sec := range s.Secrets {
			if len(sec) < 8 {
				return fmt.Errorf("secrets[%d]: must be at least 8 characters", i)
			}
		}
		if s.Signature.Header == "" {
			return errors.New("signature.header: required for scheme hmac-sha256")
		}
		switch s.Signature.Encoding {
		case "", "hex", "base64":
		default:
			return fmt.Errorf("signature.encoding: %q is not hex or base64", s.Signature.Encoding)
		}
	case SchemeNone:
	case "":
		return errors.New("scheme: required")
	default:
		return fmt.Errorf("scheme: %q is not supported (supported: hmac-sha256, none)", s.Scheme)
	}
	if s.EventType.IsZero() {
		return errors.New("event_type: say where the event type comes from (field, header or value)")
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
	if s.MaxBodyBytes < 0 {
		return fmt.Errorf("max_body_bytes: must not be negative, got %d", s.MaxBodyBytes)
	}
	return nil
}

// SourceKey is the KV key of a source: {tenant}.{source}.
func SourceKey(tenant, source string) string { return tenant + "." + source }

// FlowKey is the KV key of a flow: {tenant}.{flow}.
func FlowKey(tenant, flow string) string { return tenant + "." + flow }

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
