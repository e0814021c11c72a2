package sender

import (
	"context"
	"fmt"
	"time"

	"github.com/greentic/events/pkg/service"
)

// Policies for a command whose outcome is unknown.
const (
	UnknownDeadLetter = "dead_letter"
	UnknownSend       = "send"
)

// Config of one sender. Flags carry the channel as prefix (email-, sms-):
// standalone registers both senders side by side.
type Config struct {
	// Concurrency bounds the sends in flight on this replica;
	// TenantConcurrency those of one tenant.
	Concurrency       int
	TenantConcurrency int
	// SendTimeout bounds one call to the provider.
	SendTimeout time.Duration
	// MaxAttempts is the number of sends tried before a command whose
	// failures were all retryable is dead-lettered.
	MaxAttempts int
	// Backoff is the delay before retry n: BackoffBase doubling up to
	// BackoffMax, or the provider's Retry-After when that is longer
	// (bounded by MaxRetryAfter).
	BackoffBase, BackoffMax, MaxRetryAfter time.Duration
	// TenantRate and AccountRate are the token buckets of each tenant and
	// each provider account, per replica.
	TenantRate, AccountRate RateLimit
	// UnknownOutcome decides about a command whose send may or may not have
	// reached the provider: UnknownDeadLetter or UnknownSend.
	UnknownOutcome string
	// AckWait of the commands consumer.
	AckWait time.Duration

	// Faults injects crashes in tests; nil in production.
	Faults *Faults
	// leaseGrace is added to SendTimeout for the lease (tests shorten it).
	leaseGrace time.Duration
}

// Faults are points at which a test stops a sender as if it had crashed:
// each hook runs at its point and, when it returns true, the handler
// returns without recording, publishing or acknowledging anything more.
type Faults struct {
	// AfterAnswer runs after the provider answered, before the answer is
	// recorded.
	AfterAnswer func(ctx context.Context, id string) bool
	// AfterRecord runs after the answer is recorded, before the outcome
	// event and the ack.
	AfterRecord func(ctx context.Context, id string) bool
}

// RegisterFlags defines the sender's flags with prefix (email, sms).
func (c *Config) RegisterFlags(f *service.Flags, prefix string) {
	p := prefix + "-"
	f.Int(&c.Concurrency, p+"concurrency", 32, "sends in flight at once on this replica")
	f.Int(&c.TenantConcurrency, p+"tenant-concurrency", 8, "sends in flight at once for one tenant on this replica")
	f.Duration(&c.SendTimeout, p+"send-timeout", 15*time.Second, "upper bound of one call to the provider")
	f.Int(&c.MaxAttempts, p+"max-attempts", 8, "sends tried before a command failing with 429, 5xx or timeouts is dead-lettered")
	f.Duration(&c.BackoffBase, p+"backoff", time.Second, "delay before the first retry; doubles on each retry")
	f.Duration(&c.BackoffMax, p+"max-backoff", 5*time.Minute, "longest delay between two retries")
	f.Duration(&c.MaxRetryAfter, p+"max-retry-after", 30*time.Minute, "longest Retry-After of the provider honoured")
	f.Float64(&c.TenantRate.PerSecond, p+"tenant-rate", 10, "sends per second one tenant may make on this replica (0: unlimited)")
	f.Int(&c.TenantRate.Burst, p+"tenant-burst", 20, "sends one tenant may make at once")
	f.Float64(&c.AccountRate.PerSecond, p+"account-rate", 100, "sends per second through one provider account on this replica (0: unlimited)")
	f.Int(&c.AccountRate.Burst, p+"account-burst", 100, "sends through one provider account at once")
	f.String(&c.UnknownOutcome, p+"unknown-outcome", UnknownDeadLetter, "a command whose send may have reached the provider before a crash: dead_letter (as outcome_unknown) or send (again)")
	f.Duration(&c.AckWait, p+"ack-wait", 30*time.Second, "how long a command may go unacknowledged before it is redelivered")
}

// Validate names the first unusable setting; prefix is the flags' prefix.
func (c Config) Validate(prefix string) error {
	env := func(n string) string { return service.EnvName(prefix + "-" + n) }
	switch {
	case c.Concurrency < 1 || c.Concurrency > 10000:
		return fmt.Errorf("%s must be between 1 and 10000, got %d", env("concurrency"), c.Concurrency)
	case c.TenantConcurrency < 1 || c.TenantConcurrency > c.Concurrency:
		return fmt.Errorf("%s must be between 1 and %s (%d), got %d", env("tenant-concurrency"), env("concurrency"), c.Concurrency, c.TenantConcurrency)
	case c.SendTimeout < 100*time.Millisecond || c.SendTimeout > 5*time.Minute:
		return fmt.Errorf("%s must be between 100ms and 5m, got %s", env("send-timeout"), c.SendTimeout)
	case c.MaxAttempts < 1 || c.MaxAttempts > 100:
		return fmt.Errorf("%s must be between 1 and 100, got %d", env("max-attempts"), c.MaxAttempts)
	case c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("%s must be positive and at most %s, got %s and %s", env("backoff"), env("max-backoff"), c.BackoffBase, c.BackoffMax)
	case c.MaxRetryAfter < 0:
		return fmt.Errorf("%s must not be negative, got %s", env("max-retry-after"), c.MaxRetryAfter)
	case c.TenantRate.PerSecond < 0 || c.TenantRate.PerSecond > 0 && c.TenantRate.Burst < 1:
		return fmt.Errorf("%s must not be negative and %s at least 1", env("tenant-rate"), env("tenant-burst"))
	case c.AccountRate.PerSecond < 0 || c.AccountRate.PerSecond > 0 && c.AccountRate.Burst < 1:
		return fmt.Errorf("%s must not be negative and %s at least 1", env("account-rate"), env("account-burst"))
	case c.UnknownOutcome != UnknownDeadLetter && c.UnknownOutcome != UnknownSend:
		return fmt.Errorf("%s must be %s or %s, got %q", env("unknown-outcome"), UnknownDeadLetter, UnknownSend, c.UnknownOutcome)
	case c.AckWait < time.Second:
		return fmt.Errorf("%s must be at least 1s, got %s", env("ack-wait"), c.AckWait)
	}
	return nil
}

// backoff is the delay before the retry following attempt n (1-based),
// or the provider's Retry-After when that is longer.
func (c Config) backoff(n int, retryAfter time.Duration) time.Duration {
	d := c.BackoffBase
	for i := 1; i < n && d < c.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.BackoffMax)
	if retryAfter > d {
		d = min(retryAfter, max(c.MaxRetryAfter, d))
	}
	return d
}

// lease is how long after its start a send attempt may still be running
// on some replica; a sending record older than that was abandoned.
func (c Config) lease() time.Duration {
	if c.leaseGrace > 0 {
		return c.SendTimeout + c.leaseGrace
	}
	return c.SendTimeout + 5*time.Second
}
