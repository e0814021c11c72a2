// Package servicetest builds service runtimes on an in-process JetStream
// for tests: each Runtime has its own connection, as a separate replica would.
package servicetest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/service"
)

// Runtime connects a new runtime to url, ensures the topology of env and
// closes the connection at cleanup. Logs go to the test output when
// GREENTIC_TEST_LOG is set.
func Runtime(t testing.TB, url, env string) *service.Runtime {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	var w io.Writer = io.Discard
	if os.Getenv("GREENTIC_TEST_LOG") != "" {
		w = os.Stderr
	}
	log := service.NewLogger(w, slog.LevelDebug)
	rt, err := service.NewRuntime(bus.DefaultTopology(env), nc, log, service.NewRegistry(), service.NewReadiness())
	if err != nil {
		t.Fatal(err)
	}
	rt.ShutdownTimeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.EnsureTopology(ctx); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return rt
}

// Go runs fn in a goroutine until the test ends: at cleanup the context is
// cancelled and fn must return nil within 15s.
func Go(t testing.TB, fn func(ctx context.Context) error) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("service returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("service did not stop within 15s of cancellation")
		}
	}
	t.Cleanup(stop)
	return stop
}
