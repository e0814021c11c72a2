package flow

import (
	"context"
	"errors"
	"strings"
	"testing"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// recorder is an Effects that keeps what a run asked for.
type recorder struct {
	emails   []*eventsv1.EmailCommand
	sms      []*eventsv1.SmsCommand
	webhooks []*eventsv1.WebhookCommand
	events   []*eventsv1.Event
	fail     error
}

func (r *recorder) Email(_ context.Context, c *eventsv1.EmailCommand) error {
	r.emails = append(r.emails, c)
	return r.fail
}
func (r *recorder) SMS(_ context.Context, c *eventsv1.SmsCommand) error {
	r.sms = append(r.sms, c)
	return r.fail
}
func (r *recorder) Webhook(_ context.Context, c *eventsv1.WebhookCommand) error {
	r.webhooks = append(r.webhooks, c)
	return r.fail
}
func (r *recorder) Publish(_ context.Context, e *eventsv1.Event) error {
	r.events = append(r.events, e)
	return r.fail
}

const effectsFlow = `name: welcome
version: "1"
nodes:
  - id: mail
    type: email
    config:
      to: "{{ event.payload.customer.name + ' <' + event.payload.customer.email + '>' }}"
      bcc: [audit@example.com]
      from: Shop <shop@example.com>
      subject: "Order {{ event.payload.id }} confirmed"
      text: "Hello {{ event.payload.customer.name }}"
      template_data: { order: "{{ event.payload.id }}", total: "{{ event.payload.total }}" }
      categories: [orders]
      custom_args: { order_id: "{{ event.payload.id }}" }
    next: text
  - id: text
    type: sms
    config:
      to: "{{ event.payload.customer.phone }}"
      messaging_service_sid: MG0123
      body: "Order {{ event.payload.id }} confirmed"
    next: notify
  - id: notify
    type: webhook
    config:
      url: https://hooks.example.com/orders
      headers: { X-Order: "{{ event.payload.id }}" }
      body: { id: "{{ event.payload.id }}", total: "{{ event.payload.total }}" }
      timeout: 5s
    next: emit
  - id: emit
    type: publish
    config:
      event_type: order.confirmed
      payload: { id: "{{ event.payload.id }}" }
triggers:
  - type: event
    event_type: order.created
    target: mail
`

func TestEffectNodes(t *testing.T) {
	p := mustCompile(t, effectsFlow, DefaultLimits())
	ev := event("order.created", `{"id":"o-7","total":42.5,"customer":{"name":"Ada","email":"ada@example.com","phone":"+15551234567"}}`)
	ev.Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	fx := &recorder{}
	res := p.Run(context.Background(), Input{Event: ev, Effects: fx}, "mail")
	if res.Status != StatusOK {
		t.Fatalf("run: %s (trace %+v)", res.Error, res.Trace)
	}
	if len(fx.emails) != 1 || len(fx.sms) != 1 || len(fx.webhooks) != 1 || len(fx.events) != 1 {
		t.Fatalf("effects %d emails, %d sms, %d webhooks, %d events; want one each", len(fx.emails), len(fx.sms), len(fx.webhooks), len(fx.events))
	}
	m := fx.emails[0]
	if m.Id != "ev-1:welcome:mail" || m.Origin.EventId != "ev-1" || m.Origin.Tenant != "acme" || m.Origin.Node != "mail" || m.Origin.Traceparent != ev.Traceparent {
		t.Errorf("email id/origin %q %+v", m.Id, m.Origin)
	}
	if len(m.To) != 1 || m.To[0].Email != "ada@example.com" || m.To[0].Name != "Ada" || len(m.Bcc) != 1 || m.From.Email != "shop@example.com" || m.From.Name != "Shop" {
		t.Errorf("addresses to=%v bcc=%v from=%v", m.To, m.Bcc, m.From)
	}
	if m.Subject != "Order o-7 confirmed" || m.Text != "Hello Ada" || m.CustomArgs["order_id"] != "o-7" || m.Categories[0] != "orders" {
		t.Errorf("email %+v", m)
	}
	jsonEqual(t, m.DynamicTemplateData, `{"order":"o-7","total":42.5}`)
	s := fx.sms[0]
	if s.Id != "ev-1:welcome:text" || s.To != "+15551234567" || s.MessagingServiceSid != "MG0123" || s.Body != "Order o-7 confirmed" {
		t.Errorf("sms %+v", s)
	}
	w := fx.webhooks[0]
	if w.Id != "ev-1:welcome:notify" || w.Method != "POST" || w.Url != "https://hooks.example.com/orders" || w.Headers["X-Order"] != "o-7" || w.TimeoutMillis != 5000 {
		t.Errorf("webhook %+v", w)
	}
	jsonEqual(t, w.Body, `{"id":"o-7","total":42.5}`)
	e := fx.events[0]
	if e.Id != "ev-1:welcome:emit" || e.EventType != "order.confirmed" || e.Tenant != "acme" || e.Metadata["caused_by"] != "ev-1" || e.Source != "flow/welcome" {
		t.Errorf("published %+v", e)
	}
	jsonEqual(t, e.Payload, `{"id":"o-7"}`)
	jsonEqual(t, res.Output, `{"id":"ev-1:welcome:emit","event_type":"order.confirmed"}`)

	// The same event run again produces the same ids: that is what makes a
	// redelivered run send nothing twice.
	again := &recorder{}
	p.Run(context.Background(), Input{Event: ev, Effects: again}, "mail")
	if again.emails[0].Id != m.Id || again.sms[0].Id != s.Id || again.webhooks[0].Id != w.Id || again.events[0].Id != e.Id {
		t.Errorf("ids differ on a second run")
	}
}

func TestEffectNodeFailures(t *testing.T) {
	p := mustCompile(t, effectsFlow, DefaultLimits())
	good := `{"id":"o-7","total":1,"customer":{"name":"Ada","email":"ada@example.com","phone":"+15551234567"}}`
	for _, tc := range []struct {
		name    string
		payload string
		fx      Effects
		want    string
	}{
		{"no effects", good, nil, "no Effects"},
		{"effect fails", good, &recorder{fail: errors.New("bus down")}, "bus down"},
		{"bad address", `{"id":"o-7","customer":{"name":"Ada","email":"not-an-address"}}`, &recorder{}, `to[0]`},
		{"bad phone", `{"id":"o-7","customer":{"name":"Ada","email":"ada@example.com","phone":"555"}}`, &recorder{}, "E.164"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := p.Run(context.Background(), Input{Event: event("order.created", tc.payload), Effects: tc.fx}, "mail")
			if res.Status != StatusError || !strings.Contains(res.Error, tc.want) {
				t.Fatalf("run = %v %q, want an error containing %q", res.Status, res.Error, tc.want)
			}
		})
	}
}

func TestEffectNodeProblems(t *testing.T) {
	flow := func(node string) string {
		return "name: f\nversion: \"1\"\nnodes:\n  - id: n\n" + node + "triggers:\n  - type: event\n    event_type: a.b\n    target: n\n"
	}
	for _, tc := range []struct {
		name, node, want string
	}{
		{"email without recipient", "    type: email\n    config:\n      subject: s\n      text: t\n", `missing required key "to"`},
		{"email without content", "    type: email\n    config:\n      to: a@example.com\n      subject: s\n", "text, html or template_id"},
		{"email without subject", "    type: email\n    config:\n      to: a@example.com\n      text: t\n", `"subject"`},
		{"email unknown key", "    type: email\n    config:\n      to: a@example.com\n      subject: s\n      text: t\n      colour: red\n", `colour`},
		{"sms from and service", "    type: sms\n    config:\n      to: \"+15551234567\"\n      from: \"+15550000000\"\n      messaging_service_sid: MG1\n      body: hi\n", "exactly one of from and messaging_service_sid"},
		{"sms without body", "    type: sms\n    config:\n      to: \"+15551234567\"\n      from: \"+15550000000\"\n", "body or media_urls"},
		{"webhook bad url", "    type: webhook\n    config:\n      url: ftp://x.example.com/\n", "absolute http(s) URL"},
		{"webhook bad method", "    type: webhook\n    config:\n      url: https://x.example.com/\n      method: BREW\n", "BREW"},
		{"webhook bad timeout", "    type: webhook\n    config:\n      url: https://x.example.com/\n      timeout: 2h\n", "timeout"},
		{"publish bad type", "    type: publish\n    config:\n      event_type: order.*\n", "wildcard"},
		{"publish without type", "    type: publish\n    config:\n      payload: {}\n", `"event_type"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]byte(flow(tc.node)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile = %v, want a problem containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), ":") {
				t.Errorf("problem %q has no position", err)
			}
		})
	}
}

// TestPublishLoopStops runs a flow that publishes the type that triggers it,
// feeding each published event back in: the chain stops at MaxPublishDepth
// with an error naming the limit.
func TestPublishLoopStops(t *testing.T) {
	p := mustCompile(t, `name: loop
version: "1"
nodes:
  - id: again
    type: publish
    config:
      event_type: ping
triggers:
  - type: event
    event_type: ping
    target: again
`, DefaultLimits())
	ev := event("ping", `{}`)
	for hop := 1; ; hop++ {
		fx := &recorder{}
		res := p.Run(context.Background(), Input{Event: ev, Effects: fx}, "again")
		if res.Status != StatusOK {
			if hop != MaxPublishDepth+1 || !strings.Contains(res.Error, "limit 8") {
				t.Fatalf("hop %d: %s", hop, res.Error)
			}
			return
		}
		if hop > MaxPublishDepth {
			t.Fatalf("hop %d still published", hop)
		}
		ev = fx.events[0]
	}
}
