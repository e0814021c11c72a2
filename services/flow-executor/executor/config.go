// Package executor is the flow-executor service: it consumes events, runs
// the tenant's flows whose triggers match, and publishes each flow's result
// to greentic.events.{env}.{tenant}.{type}.result.
package executor

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/safehttp"
	"github.com/greentic/events/pkg/service"
)

// Name is the service name in logs, metrics and the durable consumer name.
const Name = "flow-executor"

// Config of the executor.
type Config struct {
	// Concurrency bounds the events one replica processes at once.
	Concurrency int
	// AckWait is how long the bus waits before giving an unacknowledged
	// event to another replica (a crashed one never acks).
	AckWait time.Duration
	// MaxAttempts is how often a failing event is tried before it is dead-lettered.
	MaxAttempts int
	// RunTimeout bounds one flow run.
	RunTimeout time.Duration
	// TenantConcurrency bounds the events of one tenant processed at once
	// by one replica, so one tenant's backlog or slow flows leave room for
	// the others.
	TenantConcurrency int
	// MaxParked bounds the events one replica holds, fetched but waiting
	// for their tenant to drop below TenantConcurrency.
	MaxParked int
	// MaxResultHops bounds chains of flows triggered by results: a result
	// of a result of ... (the number of trailing ".result" tokens).
	MaxResultHops int

	// HTTPAllowPrivate lets http nodes reach private and loopback
	// addresses; HTTPAllowCIDRs lists extra allowed ranges (comma
	// separated); HTTPTimeout bounds one request.
	HTTPAllowPrivate bool
	HTTPAllowCIDRs   string
	HTTPTimeout      time.Duration

	// beforeRun, when set, is called after an event is received and before
	// its flows run (tests use it to stop a replica at that point).
	beforeRun func()
	// backoff, when set, replaces the bus's retry delays (tests).
	backoff []time.Duration
	// afterRun, when set, is called after the flows ran (their effects are
	// published) and before the results are: tests use it to crash there.
	afterRun func()
}

// RegisterFlags defines the executor flags.
func (c *Config) RegisterFlags(f *service.Flags) {
	f.Int(&c.Concurrency, "concurrency", 32, "events processed at once by one replica")
	f.Duration(&c.AckWait, "ack-wait", 30*time.Second, "time before an unacknowledged event is redelivered")
	f.Int(&c.MaxAttempts, "max-attempts", 5, "deliveries of a failing event before it is dead-lettered")
	f.Duration(&c.RunTimeout, "run-timeout", 10*time.Second, "upper bound of one flow run")
	f.Int(&c.TenantConcurrency, "tenant-concurrency", 8, "events of one tenant processed at once by one replica")
	f.Int(&c.MaxParked, "max-parked", 10000, "events one replica holds while their tenant is at its concurrency cap")
	f.Int(&c.MaxResultHops, "max-result-hops", 4, "longest chain of flows triggered by flow results")
	f.Bool(&c.HTTPAllowPrivate, "http-allow-private", false, "let http nodes reach private and loopback addresses")
	f.String(&c.HTTPAllowCIDRs, "http-allow-cidrs", "", "comma-separated address ranges http nodes may reach although blocked by default")
	f.Duration(&c.HTTPTimeout, "http-timeout", 10*time.Second, "upper bound of one request of an http node")
}

// httpPolicy is the SSRF policy of http nodes.
func (c Config) httpPolicy() (safehttp.Policy, error) {
	var cidrs []netip.Prefix
	if c.HTTPAllowCIDRs != "" {
		var err error
		if cidrs, err = safehttp.ParseCIDRs(c.HTTPAllowCIDRs); err != nil {
			return safehttp.Policy{}, fmt.Errorf("%s: %w", service.EnvName("http-allow-cidrs"), err)
		}
	}
	return safehttp.Policy{AllowPrivate: c.HTTPAllowPrivate, AllowCIDRs: cidrs, Timeout: c.HTTPTimeout}, nil
}

// Validate names the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("%s must be at least 1, got %d", service.EnvName("concurrency"), c.Concurrency)
	case c.AckWait < time.Second:
		return fmt.Errorf("%s must be at least 1s, got %s", service.EnvName("ack-wait"), c.AckWait)
	case c.MaxAttempts < 1:
		return fmt.Errorf("%s must be at least 1, got %d", service.EnvName("max-attempts"), c.MaxAttempts)
	case c.RunTimeout <= 0:
		return fmt.Errorf("%s must be positive, got %s", service.EnvName("run-timeout"), c.RunTimeout)
	case c.RunTimeout >= c.AckWait:
		return fmt.Errorf("%s (%s) must be shorter than %s (%s)", service.EnvName("run-timeout"), c.RunTimeout, service.EnvName("ack-wait"), c.AckWait)
	case c.TenantConcurrency < 1 || c.TenantConcurrency > c.Concurrency:
		return fmt.Errorf("%s must be between 1 and %s (%d), got %d", service.EnvName("tenant-concurrency"), service.EnvName("concurrency"), c.Concurrency, c.TenantConcurrency)
	case c.MaxParked < 1:
		return fmt.Errorf("%s must be at least 1, got %d", service.EnvName("max-parked"), c.MaxParked)
	case c.MaxResultHops < 0 || c.MaxResultHops > 16:
		return fmt.Errorf("%s must be between 0 and 16, got %d", service.EnvName("max-result-hops"), c.MaxResultHops)
	case c.HTTPTimeout <= 0:
		return fmt.Errorf("%s must be positive, got %s", service.EnvName("http-timeout"), c.HTTPTimeout)
	}
	_, err := c.httpPolicy()
	return err
}

// retrySpan is the longest time between the first and the last attempt of
// one event: every attempt may run for AckWait (a crashed replica's event
// comes back after it), and attempts are spaced by the bus backoff.
func (c Config) retrySpan() time.Duration {
	backoff := c.backoff
	if len(backoff) == 0 {
		backoff = bus.DefaultBackoff
	}
	span := time.Duration(c.MaxAttempts) * c.AckWait
	for i := 1; i < c.MaxAttempts; i++ {
		span += backoff[min(i, len(backoff))-1]
	}
	return span
}
