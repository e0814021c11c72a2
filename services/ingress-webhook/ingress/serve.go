package ingress

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// Name is the service name in logs, metrics and the durable names.
const Name = "ingress-webhook"

// Serve runs the ingress on rt until ctx ends: it keeps the tenant registry
// in step with the KV buckets, becomes ready once it is loaded, and serves
// the webhook routes.
func Serve(ctx context.Context, rt *service.Runtime, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := rt.Log.With("component", Name)
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		return err
	}
	reg := tenant.NewRegistry()
	synced := make(chan struct{})
	rt.Ready.Add("ingress_registry", func(context.Context) error {
		select {
		case <-synced:
			return nil
		default:
			return errors.New("tenant registry not loaded yet")
		}
	})
	kv, err := rt.Topology.KeyValue(ctx, rt.JS, bus.BucketDeliveries)
	if err != nil {
		return err
	}
	stream, err := rt.JS.Stream(ctx, rt.Topology.EventsStream())
	if err != nil {
		return fmt.Errorf("open stream %s: %w", rt.Topology.EventsStream(), err)
	}
	h, err := NewHandler(cfg, Deps{
		Registry: reg, Publisher: rt.Publisher, Deliveries: KVDeliveries{KV: kv},
		Stored: StreamEvents{Stream: stream}, Log: log, Metrics: rt.Registry,
	})
	if err != nil {
		return err
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen on %s (%s): %w", cfg.HTTPAddr, service.EnvName("http-addr"), err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return store.WatchRegistry(gctx, reg, log, func() { close(synced) })
	})
	g.Go(func() error {
		select {
		case <-synced:
		case <-gctx.Done():
			_ = ln.Close()
			return nil
		}
		log.Info("ingress listening", "addr", ln.Addr().String())
		return service.Serve(gctx, ln, h, rt.ShutdownTimeout, log)
	})
	return g.Wait()
}
