package ingress

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/greentic/events/pkg/tenant"
)

// limiters holds one token bucket per tenant. A tenant's own rate_limit
// replaces the default; a changed limit takes effect on the next request.
// Only tenants in the registry get here, so the map is bounded by them.
type limiters struct {
	def tenant.RateLimit
	m   sync.Map // tenant id -> *tenantLimiter
}

type tenantLimiter struct {
	cfg tenant.RateLimit
	lim *rate.Limiter
}

func newLimiters(def tenant.RateLimit) *limiters {
	return &limiters{def: def}
}

// allow takes a token for the tenant, or says how long to wait for one.
// A zero limit (neither the tenant nor the default set one) never waits.
func (l *limiters) allow(t tenant.Tenant, now time.Time) (ok bool, retryAfter time.Duration) {
	cfg := t.RateLimit
	if cfg.PerSecond == 0 {
		cfg = l.def
	}
	if cfg.PerSecond <= 0 || cfg.Burst <= 0 {
		return true, 0
	}
	v, _ := l.m.Load(t.ID)
	tl, _ := v.(*tenantLimiter)
	if tl == nil || tl.cfg != cfg {
		tl = &tenantLimiter{cfg: cfg, lim: rate.NewLimiter(rate.Limit(cfg.PerSecond), cfg.Burst)}
		l.m.Store(t.ID, tl)
	}
	if tl.lim.AllowN(now, 1) {
		return true, 0
	}
	// The wait for the next token, for Retry-After.
	wait := time.Duration(math.Ceil(float64(time.Second) / cfg.PerSecond))
	return false, wait
}
