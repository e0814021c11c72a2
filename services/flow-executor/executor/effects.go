package executor

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

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

// publish runs one bounded publish and remembers the first failure.
func (f *busEffects) publish(ctx context.Context, what, id string, do func(context.Context) (bus.Published, error)) error {
	pctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if _, err := do(pctx); err != nil {
		if f.busErr == nil {
			f.busErr = fmt.Errorf("publish %s %s: %w", what, id, err)
		}
		return err
	}
	return nil
}

func (f *busEffects) command(ctx context.Context, channel, id string, o *eventsv1.CommandOrigin, cmd proto.Message) error {
	return f.publish(ctx, channel+" command", id, func(ctx context.Context) (bus.Published, error) {
		return f.pub.PublishCommand(ctx, o.GetTenant(), channel, id, o.GetTraceparent(), cmd)
	})
}

func (f *busEffects) Email(ctx context.Context, c *eventsv1.EmailCommand) error {
	return f.command(ctx, bus.ChannelEmail, c.Id, c.Origin, c)
}

func (f *busEffects) SMS(ctx context.Context, c *eventsv1.SmsCommand) error {
	return f.command(ctx, bus.ChannelSMS, c.Id, c.Origin, c)
}

func (f *busEffects) Webhook(ctx context.Context, c *eventsv1.WebhookCommand) error {
	return f.command(ctx, bus.ChannelWebhook, c.Id, c.Origin, c)
}

func (f *busEffects) Publish(ctx context.Context, ev *eventsv1.Event) error {
	return f.publish(ctx, "event", ev.Id, func(ctx context.Context) (bus.Published, error) {
		return f.pub.PublishEvent(ctx, ev)
	})
}
