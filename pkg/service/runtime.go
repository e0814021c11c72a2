package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/greentic/events/pkg/bus"
)

// Runtime is what a service body gets: the bus, its topology, a logger, a
// metrics registry and the readiness checks. In standalone mode several
// services share one Runtime's connection and registry.
type Runtime struct {
	Topology  bus.Topology
	Conn      *nats.Conn
	JS        jetstream.JetStream
	Publisher *bus.Publisher
	Log       *slog.Logger
	Registry  *prometheus.Registry
	Ready     *Readiness

	ShutdownTimeout time.Duration
	topologyReady   atomic.Bool
}

// NewRuntime builds a runtime on an existing connection and registers the
// "nats" and "topology" readiness checks.
func NewRuntime(topo bus.Topology, nc *nats.Conn, log *slog.Logger, reg *prometheus.Registry, ready *Readiness) (*Runtime, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	rt := &Runtime{
		Topology: topo, Conn: nc, JS: js, Publisher: bus.NewPublisher(js, topo),
		Log: log, Registry: reg, Ready: ready, ShutdownTimeout: 20 * time.Second,
	}
	ready.Add("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (status %s)", nc.Status())
		}
		return nil
	})
	ready.Add("topology", func(context.Context) error {
		if !rt.topologyReady.Load() {
			return errors.New("streams and buckets not ensured yet")
		}
		return nil
	})
	return rt, nil
}

// EnsureTopology creates the streams and buckets, retrying with backoff
// while the bus is unavailable, until it succeeds or ctx ends.
func (rt *Runtime) EnsureTopology(ctx context.Context) error {
	delay := 200 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := rt.Topology.Ensure(cctx, rt.JS)
		cancel()
		if err == nil {
			rt.topologyReady.Store(true)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rt.Log.Warn("bus topology not ready, retrying", "err", err, "delay", delay.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// Connect opens a NATS connection that keeps reconnecting forever and logs
// its state changes. It does not fail when the server is not up yet: the
// readiness check reports it instead.
func Connect(c Common, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	nc, err := nats.Connect(c.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	return nc, nil
}

// Body is the part of a service that runs on a Runtime until ctx ends.
type Body func(ctx context.Context, rt *Runtime) error

// Run is the whole life of a service in microservices mode: logger, bus
// connection, ops server, topology, then body, until ctx is cancelled
// (SIGTERM); then everything stops in order and the connection is drained.
func Run(ctx context.Context, name string, c Common, stdout io.Writer, body Body) error {
	if err := c.Validate(); err != nil {
		return err
	}
	level, _ := ParseLevel(c.LogLevel)
	log := NewLogger(stdout, level).With("service", name, "env", c.Env)
	nc, err := Connect(c, name, log)
	if err != nil {
		return err
	}
	defer drain(nc, c.ShutdownTimeout)
	reg := NewRegistry()
	rt, err := NewRuntime(c.Topology(), nc, log, reg, NewReadiness())
	if err != nil {
		return err
	}
	rt.ShutdownTimeout = c.ShutdownTimeout
	ln, err := net.Listen("tcp", c.OpsAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (%s): %w", c.OpsAddr, EnvName("ops-addr"), err)
	}
	log.Info("service starting", "ops_addr", ln.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return Serve(gctx, ln, OpsHandler(reg, rt.Ready), c.ShutdownTimeout, log) })
	g.Go(func() error {
		if err := rt.EnsureTopology(gctx); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		err := body(gctx, rt)
		if gctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil // the body stopped because it was asked to
		}
		return err
	})
	err = g.Wait()
	log.Info("service stopped", "err", errString(err))
	return err
}

func drain(nc *nats.Conn, timeout time.Duration) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(timeout):
		nc.Close()
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
