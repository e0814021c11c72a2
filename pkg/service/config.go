package service

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/greentic/events/pkg/bus"
)

// Common is the configuration every service shares.
type Common struct {
	NATSURL         string
	NATSCreds       string
	Env             string
	OpsAddr         string
	LogLevel        string
	ShutdownTimeout time.Duration

	StreamReplicas  int
	EventsMaxAge    time.Duration
	OutboundMaxAge  time.Duration
	DLQMaxAge       time.Duration
	DuplicateWindow time.Duration
	DeliveryWindow  time.Duration
}

// Register defines the common flags; opsAddr is the service's default ops address.
func (c *Common) Register(f *Flags, opsAddr string) {
	d := bus.DefaultTopology("dev")
	f.String(&c.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated")
	f.Alias("nats-url", "NATS_URL")
	f.String(&c.NATSCreds, "nats-creds", "", "path to a NATS credentials file")
	f.String(&c.Env, "env", "dev", "environment name; selects subjects, streams and buckets")
	f.String(&c.OpsAddr, "ops-addr", opsAddr, "listen address of /metrics, /healthz and /readyz")
	f.String(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.Duration(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long shutdown may take before work in progress is abandoned")
	f.Int(&c.StreamReplicas, "stream-replicas", d.Replicas, "JetStream stream and bucket replicas (1 in dev, 3 in prod)")
	f.Duration(&c.EventsMaxAge, "events-max-age", d.EventsMaxAge, "how long events and results are kept")
	f.Duration(&c.OutboundMaxAge, "outbound-max-age", d.OutboundMaxAge, "how long outbound commands are kept")
	f.Duration(&c.DLQMaxAge, "dlq-max-age", d.DLQMaxAge, "how long dead letters are kept")
	f.Duration(&c.DuplicateWindow, "duplicate-window", d.DuplicateWindow, "Nats-Msg-Id de-duplication window")
	f.Duration(&c.DeliveryWindow, "delivery-window", d.DeliveryWindow, "how long the ingress remembers provider delivery ids, so a redelivery makes no second event")
}

// Topology is the bus topology these settings describe.
func (c Common) Topology() bus.Topology {
	return bus.Topology{
		Env:             c.Env,
		Replicas:        c.StreamReplicas,
		EventsMaxAge:    c.EventsMaxAge,
		OutboundMaxAge:  c.OutboundMaxAge,
		DLQMaxAge:       c.DLQMaxAge,
		DuplicateWindow: c.DuplicateWindow,
		DeliveryWindow:  c.DeliveryWindow,
	}
}

// Validate fails on the first unusable setting, naming its environment variable.
func (c Common) Validate() error {
	if strings.TrimSpace(c.NATSURL) == "" {
		return fmt.Errorf("%s must not be empty", EnvName("nats-url"))
	}
	if err := bus.ValidateEnv(c.Env); err != nil {
		return fmt.Errorf("%s: %w", EnvName("env"), err)
	}
	if err := ValidateListenAddr("ops-addr", c.OpsAddr); err != nil {
		return err
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("%s: %w", EnvName("log-level"), err)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("%s must be positive, got %s", EnvName("shutdown-timeout"), c.ShutdownTimeout)
	}
	if err := c.Topology().Validate(); err != nil {
		return fmt.Errorf("bus topology: %w", err)
	}
	return nil
}

// ValidateListenAddr checks a host:port listen address, naming the flag.
func ValidateListenAddr(flagName, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: invalid listen address %q: %v", EnvName(flagName), addr, err)
	}
	return nil
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown log level %q (use debug, info, warn or error)", s)
	}
	return l, nil
}
