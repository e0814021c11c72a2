package sender

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: PerSecond sends on average, Burst at once.
// A zero PerSecond is no limit.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// limiters keeps one token bucket per tenant and one per account. Buckets
// are per sender replica: with n replicas sharing an account, give each
// 1/n of the provider's limit.
type limiters struct {
	tenant, account RateLimit
	mu              sync.Mutex
	buckets         map[string]*rate.Limiter
}

func newLimiters(tenant, account RateLimit) *limiters {
	return &limiters{tenant: tenant, account: account, buckets: map[string]*rate.Limiter{}}
}

func (l *limiters) bucket(key string, rl RateLimit) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		burst := rl.Burst
		if burst < 1 {
			burst = 1
		}
		b = rate.NewLimiter(rate.Limit(rl.PerSecond), burst)
		l.buckets[key] = b
	}
	return b
}

// wait blocks until both the tenant's and the account's bucket allow one
// send, and returns how long that took. The tenant's bucket is taken
// first, so a tenant over its own limit does not hold account tokens.
func (l *limiters) wait(ctx context.Context, tenantID, accountKey string) (time.Duration, error) {
	start := time.Now()
	if l.tenant.PerSecond > 0 {
		if err := l.bucket("t/"+tenantID, l.tenant).Wait(ctx); err != nil {
			return time.Since(start), err
		}
	}
	if l.account.PerSecond > 0 {
		if err := l.bucket("a/"+accountKey, l.account).Wait(ctx); err != nil {
			return time.Since(start), err
		}
	}
	return time.Since(start), nil
}
