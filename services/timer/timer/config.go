// Package timer is the timer service: it fires the timer triggers of every
// tenant's flows and the tenants' ad-hoc schedules, publishing one event
// per tick to greentic.events.{env}.{tenant}.{type}.
package timer

import (
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/greentic/events/pkg/service"
)

// Name is the service name in logs and metrics.
const Name = "timer"

// Config of the timer. Its flags carry a timer- prefix: standalone
// registers them next to the ingress's, which has its own -publish-timeout.
type Config struct {
	// MaxCatchUp bounds the missed ticks of one schedule that the fire_all
	// policy fires at once; older ones are counted and logged as missed.
	MaxCatchUp int
	// PublishTimeout bounds one publish of a tick.
	PublishTimeout time.Duration
	// MisfireThreshold is how late a tick may be fired and still count as
	// on time. Ticks later than that (the timer was down, the bus was
	// unavailable) are missed and handled by the schedule's policy.
	MisfireThreshold time.Duration
	// StateFlushInterval is how often the last fired tick of each schedule
	// is written to the timers bucket; 0 writes it after every publish.
	StateFlushInterval time.Duration

	// clock, when set, replaces the real clock (tests).
	clock clockwork.Clock
}

// RegisterFlags defines the timer flags.
func (c *Config) RegisterFlags(f *service.Flags) {
	f.Int(&c.MaxCatchUp, "timer-max-catch-up", 100, "most missed ticks of one schedule fired at once by the fire_all policy")
	f.Duration(&c.PublishTimeout, "timer-publish-timeout", 5*time.Second, "upper bound of publishing one tick")
	f.Duration(&c.MisfireThreshold, "timer-misfire-threshold", 10*time.Second, "a tick fired later than this after its time is missed and follows the schedule's missed policy")
	f.Duration(&c.StateFlushInterval, "timer-state-flush-interval", time.Second, "how often the last fired tick of each schedule is saved (0: after every publish)")
}

// Validate names the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.MaxCatchUp < 1 || c.MaxCatchUp > 10000:
		return fmt.Errorf("%s must be between 1 and 10000, got %d", service.EnvName("timer-max-catch-up"), c.MaxCatchUp)
	case c.PublishTimeout <= 0 || c.PublishTimeout > time.Minute:
		return fmt.Errorf("%s must be positive and at most 1m, got %s", service.EnvName("timer-publish-timeout"), c.PublishTimeout)
	case c.MisfireThreshold < time.Second || c.MisfireThreshold > time.Hour:
		return fmt.Errorf("%s must be between 1s and 1h, got %s", service.EnvName("timer-misfire-threshold"), c.MisfireThreshold)
	case c.MisfireThreshold < c.PublishTimeout:
		// A slow publish delays the schedule's next fire by up to the
		// publish timeout; that alone must not turn ticks into missed ones.
		return fmt.Errorf("%s (%s) must not be shorter than %s (%s)", service.EnvName("timer-misfire-threshold"), c.MisfireThreshold, service.EnvName("timer-publish-timeout"), c.PublishTimeout)
	case c.StateFlushInterval < 0 || c.StateFlushInterval > 10*time.Second:
		return fmt.Errorf("%s must be between 0 and 10s, got %s", service.EnvName("timer-state-flush-interval"), c.StateFlushInterval)
	}
	return nil
}
