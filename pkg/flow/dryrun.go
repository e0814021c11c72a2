package flow

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Effect kinds recorded by a Recorder.
const (
	EffectEmail   = "email"
	EffectSMS     = "sms"
	EffectWebhook = "webhook"
	EffectPublish = "publish"
)

// Effect is one side effect a run asked for: an *eventsv1.EmailCommand,
// *SmsCommand, *WebhookCommand, or the *eventsv1.Event of a publish node.
type Effect struct {
	Kind    string
	Message proto.Message
}

// Recorder is the Effects of a dry run: it keeps every effect in the order
// the run asked for it and sends nothing (admin-api's TestFlow and
// greenticctl's flow test use it). It is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	effects []Effect
}

var _ Effects = (*Recorder)(nil)

// Effects returns what was recorded so far.
func (r *Recorder) Effects() []Effect {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Effect(nil), r.effects...)
}

func (r *Recorder) add(kind string, m proto.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.effects = append(r.effects, Effect{Kind: kind, Message: m})
	return nil
}

func (r *Recorder) Email(_ context.Context, c *eventsv1.EmailCommand) error {
	return r.add(EffectEmail, c)
}

func (r *Recorder) SMS(_ context.Context, c *eventsv1.SmsCommand) error {
	return r.add(EffectSMS, c)
}

func (r *Recorder) Webhook(_ context.Context, c *eventsv1.WebhookCommand) error {
	return r.add(EffectWebhook, c)
}

func (r *Recorder) Publish(_ context.Context, e *eventsv1.Event) error {
	return r.add(EffectPublish, e)
}
