// Command greentic-watch prints the events and flow results of an
// environment as JSON lines, as they are stored on the bus.
//
//	go run ./services/standalone/cmd/greentic-watch -nats-url nats://127.0.0.1:4222 -env dev
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "greentic-watch:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var url, env, tenantID string
	var all bool
	f := service.NewFlags("greentic-watch")
	f.String(&url, "nats-url", "nats://127.0.0.1:4222", "NATS server URL")
	f.String(&env, "env", "dev", "environment")
	f.String(&tenantID, "tenant", "", "only this tenant")
	f.Bool(&all, "all", false, "print the stored history first, not only new messages")
	if err := service.ParseArgs(f, args, os.Stdout); err != nil {
		return err
	}
	topo := bus.DefaultTopology(env)
	if err := topo.Validate(); err != nil {
		return err
	}
	filter := bus.EventFilter(env)
	if tenantID != "" {
		if err := bus.ValidateTenant(tenantID); err != nil {
			return err
		}
		filter = bus.TenantEventFilter(env, tenantID)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	policy := jetstream.DeliverNewPolicy
	if all {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, topo.EventsStream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: policy,
	})
	if err != nil {
		return fmt.Errorf("watch %s: %w", topo.EventsStream(), err)
	}
	enc := json.NewEncoder(os.Stdout)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		s, err := bus.ParseSubject(m.Subject())
		if err != nil {
			return
		}
		if s.Kind == bus.KindResult {
			r := &eventsv1.FlowResult{}
			if proto.Unmarshal(m.Data(), r) != nil {
				return
			}
			if b, err := event.ResultJSON(r); err == nil {
				_ = enc.Encode(map[string]json.RawMessage{"result": b})
			}
			return
		}
		if ev, err := event.Unmarshal(m.Data()); err == nil {
			_ = enc.Encode(map[string]any{"event": event.View(ev)})
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	<-ctx.Done()
	return nil
}
