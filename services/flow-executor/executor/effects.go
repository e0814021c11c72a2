package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// busEffects publishes a run's side effects: sender commands on
// greentic.outbound.{env}.{tenant}.{channel} and events on
// greentic.events.{env}.{tenant}.{type}, each with the Nats-Msg-Id
// {tenant}:{event id}:{flow}:{node}. A rerun of the same event (after a
// crash or a retry) publishes the same ids, which the streams drop.
type busEffects struct {
	pub     publisher
	timeout time.Duration
	// busErr is the first publish that failed: the run's event is then
	// retried instead of getting an error result.
	busErr error
}

func (f *busEffects) command(ctx context.Context, tenant, channel, id, traceparent string, publish func(context.Context) (bus.Published, error)) error {
	pctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if _, err := publish(pctx); err != nil {
		if f.busErr == nil {
			f.busErr = fmt.Errorf("publish %s command %s: %w", channel, id, err)
		}
		return err
	}
	return nil
}

func (f *busEffects) Email(ctx context.Context, c *eventsv1.EmailCommand) error {
	return f.command(ctx, c.Origin.GetTenant(), bus.ChannelEmail, c.Id, c.Origin.GetTraceparent(), func(ctx context.Context) (bus.Published, error) {
		return f.pub.PublishCommand(ctx, c.Origin.GetTenant(), bus.ChannelEmail, c.Id, c.Origin.GetTraceparent(), c)
	})
}

func (f *busEffects) SMS(ctx context.Context, c *eventsv1.SmsCommand) error {
	return f.command(ctx, c.Origin.GetTenant(), bus.ChannelSMS, c.Id, c.Origin.GetTraceparent(), func(ctx context.Context) (bus.Published, error) {
		return f.pub.PublishCommand(ctx, c.Origin.GetTenant(), bus.ChannelSMS, c.Id, c.Origin.GetTraceparent(), c)
	})
}

func (f *busEffects) Webhook(ctx context.Context, c *eventsv1.WebhookCommand) error {
	return f.command(ctx, c.Origin.GetTenant(), bus.ChannelWebhook, c.Id, c.Origin.GetTraceparent(), func(ctx context.Context) (bus.Published, error) {
		return f.pub.PublishCommand(ctx, c.Origin.GetTenant(), bus.ChannelWebhook, c.Id, c.Origin.GetTraceparent(), c)
	})
}

func (f *busEffects) Publish(ctx context.Context, ev *eventsv1.Event) error {
	return f.command(ctx, ev.Tenant, "event", ev.Id, ev.Traceparent, func(ctx context.Context) (bus.Published, error) {
		return f.pub.PublishEvent(ctx, ev)
	})
}
