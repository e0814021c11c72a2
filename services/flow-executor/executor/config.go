// Package executor is the flow-executor service: it consumes events, runs
// the tenant's flows whose triggers match, and publishes each flow's result
// to greentic.events.{env}.{tenant}.{type}.result.
package executor

import (
	"fmt"
	"time"

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

	// beforeRun, when set, is called after an event is received and before
	// its flows run (tests use it to stop a replica at that point).
	beforeRun func()
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
	}
	return nil
}
