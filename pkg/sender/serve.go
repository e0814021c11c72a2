package sender

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// Serve runs a sender for ch on rt until ctx ends: it loads the tenants
// (their accounts and suspension), then consumes
// greentic.outbound.{env}.*.{channel} with the durable
// greentic-{env}-{channel}-sender. accounts.Tenants is filled in by Serve.
func Serve[C Command](ctx context.Context, rt *service.Runtime, ch Channel[C], p Provider[C], accounts Accounts, cfg Config) error {
	if err := cfg.Validate(ch.Name); err != nil {
		return err
	}
	log := rt.Log.With("component", ch.Name+"-sender", "provider", p.Name())
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		return err
	}
	kv, err := rt.Topology.KeyValue(ctx, rt.JS, bus.BucketSends)
	if err != nil {
		return err
	}
	m, err := newMetrics(rt.Registry)
	if err != nil {
		return err
	}
	reg := tenant.NewRegistry()
	accounts.Tenants = reg
	s := &Sender[C]{
		ch: ch, provider: p, accounts: &accounts, tenants: reg, cfg: cfg,
		states: states{kv: kv}, pub: rt.Publisher, limits: newLimiters(cfg.TenantRate, cfg.AccountRate),
		log: log, metrics: m, now: time.Now,
	}
	consumer, err := bus.NewConsumer(rt.JS, rt.Topology, bus.ConsumerConfig{
		Stream:         rt.Topology.OutboundStream(),
		Durable:        rt.Topology.Durable(ch.Name + "-sender"),
		FilterSubjects: []string{bus.OutboundFilter(rt.Topology.Env, ch.Name)},
		Stage:          ch.Name,
		Concurrency:    cfg.Concurrency,
		Key:            bus.TenantKey,
		KeyConcurrency: cfg.TenantConcurrency,
		AckWait:        cfg.AckWait,
		// Sends are counted in the record; deliveries also come back while
		// another replica's attempt holds the lease, or after a bus error.
		MaxAttempts:  cfg.MaxAttempts + 20,
		Backoff:      []time.Duration{cfg.BackoffBase},
		DrainTimeout: rt.ShutdownTimeout,
		Logger:       log,
		Registerer:   rt.Registry,
	})
	if err != nil {
		return err
	}
	synced := make(chan struct{})
	rt.Ready.Add(ch.Name+"_sender_tenants", func(context.Context) error {
		select {
		case <-synced:
			return nil
		default:
			return errors.New("tenants not loaded yet")
		}
	})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return store.WatchRegistry(gctx, reg, log, func() { close(synced) })
	})
	g.Go(func() error {
		select {
		case <-synced:
		case <-gctx.Done():
			return nil
		}
		log.Info(ch.Name+" sender consuming", "durable", rt.Topology.Durable(ch.Name+"-sender"))
		return consumer.Run(gctx, s.handle)
	})
	return g.Wait()
}
