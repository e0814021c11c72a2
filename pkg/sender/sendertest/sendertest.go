// Package sendertest runs a sender against an in-process JetStream and
// fakes its provider's HTTP API, for the email and SMS senders' tests.
package sendertest

import (
	"context"
	"testing"
	"time"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/sender"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// Env is the environment of the runtimes; Tenant is the one tenant
// registered on the bus.
const (
	Env    = "test"
	Tenant = "acme"
)

// Config is a sender configuration with short delays, so retries and
// redeliveries happen within a test.
func Config() sender.Config {
	return sender.Config{
		Concurrency: 4, TenantConcurrency: 2, SendTimeout: 2 * time.Second, MaxAttempts: 3,
		BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second, MaxRetryAfter: 5 * time.Second,
		UnknownOutcome: sender.UnknownDeadLetter, AckWait: 5 * time.Second,
	}
}

// Bus starts a JetStream server with Tenant registered and returns it with
// a runtime to publish and read with.
func Bus(t testing.TB) (*natstest.Server, *service.Runtime) {
	t.Helper()
	srv := natstest.RunServer(t)
	rt := servicetest.Runtime(t, srv.URL(), Env)
	store, err := tenantkv.Open(context.Background(), rt.JS, rt.Topology)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutTenant(context.Background(), tenant.Tenant{ID: Tenant}); err != nil {
		t.Fatal(err)
	}
	return srv, rt
}

// Run starts a bus and serve on a runtime of its own, stopped at cleanup,
// waits until the sender is ready (its readiness check named ready
// included), and returns a runtime to publish and read with.
func Run(t testing.TB, ready string, serve func(context.Context, *service.Runtime) error) *service.Runtime {
	t.Helper()
	srv, rt := Bus(t)
	srt := servicetest.Runtime(t, srv.URL(), Env)
	servicetest.Go(t, func(ctx context.Context) error { return serve(ctx, srt) })
	WaitReady(t, srt, ready)
	return rt
}

// WaitReady waits until rt has the readiness check named ready and every
// check passes.
func WaitReady(t testing.TB, rt *service.Runtime, ready string) {
	t.Helper()
	natstest.Eventually(t, 10*time.Second, "sender ready", func() bool {
		return rt.Ready.Has(ready) && len(rt.Ready.Check(context.Background())) == 0
	})
}

// Publish publishes cmd for Tenant on channel.
func Publish(t testing.TB, rt *service.Runtime, channel string, cmd sender.Command) {
	t.Helper()
	if _, err := rt.Publisher.PublishCommand(context.Background(), Tenant, channel, cmd.GetId(), "", cmd); err != nil {
		t.Fatal(err)
	}
}

// WaitEvent waits for an event of eventType for Tenant and returns the
// last one.
func WaitEvent(t testing.TB, rt *service.Runtime, eventType string) *eventsv1.Event {
	t.Helper()
	subject, err := bus.EventSubject(rt.Topology.Env, Tenant, eventType)
	if err != nil {
		t.Fatal(err)
	}
	var found *eventsv1.Event
	natstest.Eventually(t, 15*time.Second, eventType, func() bool {
		stream, err := rt.JS.Stream(context.Background(), rt.Topology.EventsStream())
		if err != nil {
			t.Fatal(err)
		}
		m, err := stream.GetLastMsgForSubject(context.Background(), subject)
		if err != nil {
			return false
		}
		found, err = event.Unmarshal(m.Data)
		return err == nil
	})
	return found
}
