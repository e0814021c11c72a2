// Package ingress is the ingress-webhook service: it receives webhooks from
// external services, verifies them, normalizes them into Events and answers
// 2xx only once JetStream has stored the event.
package ingress

import (
	"fmt"
	"net"
	"time"

	"github.com/greentic/events/pkg/service"
)

// Config of the ingress.
type Config struct {
	HTTPAddr string
	// Listener, when set, is used instead of listening on HTTPAddr (tests).
	Listener net.Listener
	// PublishTimeout bounds the wait for JetStream to store an event; past
	// it the sender gets 503 with Retry-After and may send again.
	PublishTimeout time.Duration
	// MaxBodyBytes caps every request body, whatever its source allows.
	MaxBodyBytes int64
	// RetryAfter is the Retry-After given with 503 answers.
	RetryAfter time.Duration
	// TenantRate and TenantBurst are the default per-tenant token bucket of
	// each replica, for tenants that set no rate_limit; 0 means unlimited.
	TenantRate  float64
	TenantBurst int
	// MaxEventsPerRequest bounds the events of one batch request.
	MaxEventsPerRequest int
}

// RegisterFlags defines the ingress flags.
func (c *Config) RegisterFlags(f *service.Flags) {
	f.String(&c.HTTPAddr, "http-addr", ":8080", "listen address of the webhook HTTP server")
	f.Duration(&c.PublishTimeout, "publish-timeout", 5*time.Second, "how long to wait for JetStream to store an event before answering 503")
	f.Int64(&c.MaxBodyBytes, "max-body-bytes", 4<<20, "upper bound of any request body, in bytes")
	f.Duration(&c.RetryAfter, "retry-after", 5*time.Second, "Retry-After sent with 503 answers")
	f.Float64(&c.TenantRate, "tenant-rate", 500, "default requests per second per tenant on each replica (0: unlimited); a tenant's rate_limit overrides it")
	f.Int(&c.TenantBurst, "tenant-burst", 1000, "default burst per tenant on each replica")
	f.Int(&c.MaxEventsPerRequest, "max-events-per-request", 1000, "most events one batch request (SendGrid, CloudEvents batch) may carry")
}

// Validate names the first unusable setting.
func (c Config) Validate() error {
	if c.Listener == nil {
		if err := service.ValidateListenAddr("http-addr", c.HTTPAddr); err != nil {
			return err
		}
	}
	if c.PublishTimeout <= 0 {
		return fmt.Errorf("%s must be positive, got %s", service.EnvName("publish-timeout"), c.PublishTimeout)
	}
	if c.MaxBodyBytes < 1 {
		return fmt.Errorf("%s must be positive, got %d", service.EnvName("max-body-bytes"), c.MaxBodyBytes)
	}
	if c.RetryAfter < time.Second {
		return fmt.Errorf("%s must be at least 1s, got %s", service.EnvName("retry-after"), c.RetryAfter)
	}
	if c.TenantRate < 0 || c.TenantBurst < 0 || (c.TenantRate > 0 && c.TenantBurst == 0) {
		return fmt.Errorf("%s and %s must not be negative, and a rate needs a burst of at least 1 (got %g and %d)",
			service.EnvName("tenant-rate"), service.EnvName("tenant-burst"), c.TenantRate, c.TenantBurst)
	}
	if c.MaxEventsPerRequest < 1 {
		return fmt.Errorf("%s must be positive, got %d", service.EnvName("max-events-per-request"), c.MaxEventsPerRequest)
	}
	return nil
}
