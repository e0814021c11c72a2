package adminapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
)

// durables numbers the consumers the tests run, so none joins another's.
var durables atomic.Int64

// callCtx is a context carrying c's token with its own timeout.
func callCtx(t *testing.T, c *client, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx(t), d)
	t.Cleanup(cancel)
	return ctx
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func stream(t *testing.T, h *harness, name string) jetstream.Stream {
	t.Helper()
	st, err := h.rt.JS.Stream(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// streamMsgs reads every message of a stream on subjects matching filter.
func streamMsgs(t *testing.T, h *harness, name, filter string) []*jetstream.RawStreamMsg {
	t.Helper()
	st := stream(t, h, name)
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := st.GetMsg(testCtx(t), seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func dlqCount(t *testing.T, h *harness) int {
	t.Helper()
	return len(streamMsgs(t, h, h.rt.Topology.DLQStream(), bus.DLQFilter(testEnv)))
}

// runFailingStage runs the consumer loop of stage (a real bus.Consumer) on
// stream, failing every message permanently with fail, until the
// dead-letter stream holds want more letters; then it stops the loop and
// deletes its durable.
func runFailingStage(t *testing.T, h *harness, streamName, filter, stage string, want int, fail error) {
	t.Helper()
	before := dlqCount(t, h)
	durable := fmt.Sprintf("test-%s-%d", stage, durables.Add(1))
	c, err := bus.NewConsumer(h.rt.JS, h.rt.Topology, bus.ConsumerConfig{
		Stream: streamName, Durable: durable, FilterSubjects: []string{filter}, Stage: stage,
		MaxAttempts: 1, DrainTimeout: time.Second, Logger: h.rt.Log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(context.Context, bus.Delivery) error { return fail })
	}()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer %s: %v", durable, err)
		}
	}
	natstest.Eventually(t, 10*time.Second, fmt.Sprintf("%d dead letters of stage %s", want, stage), func() bool {
		return dlqCount(t, h) >= before+want
	})
	stop()
	if err := h.rt.JS.DeleteConsumer(testCtx(t), streamName, durable); err != nil {
		t.Fatal(err)
	}
}

// flowFailure is how the flow-executor fails an event.
var flowFailure = bus.WithDeadLetterHeader(bus.Permanent(errors.New("flow f1: boom")), bus.HeaderFlows, "f1")

// failEvents publishes events and dead-letters them through a failing
// flow stage.
func failEvents(t *testing.T, h *harness, events ...*eventsv1.Event) {
	t.Helper()
	for _, e := range events {
		if _, err := h.rt.Publisher.PublishEvent(testCtx(t), e); err != nil {
			t.Fatal(err)
		}
	}
	runFailingStage(t, h, h.rt.Topology.EventsStream(), bus.EventFilter(testEnv), bus.StageFlow, len(events), flowFailure)
}

func testEvent(tenant, id, typ string) *eventsv1.Event {
	return &eventsv1.Event{
		Id: id, Tenant: tenant, EventType: typ, Source: "test", Timestamp: time.Now().UnixMilli(),
		Payload: []byte(`{"order":"` + id + `"}`),
	}
}

func emailCommand(tenant, id, eventType string) *eventsv1.EmailCommand {
	return &eventsv1.EmailCommand{
		Id:      id,
		Origin:  &eventsv1.CommandOrigin{Tenant: tenant, EventId: strings.Split(id, ":")[0], EventType: eventType, Flow: "f1", Node: "mail"},
		From:    &eventsv1.EmailAddress{Email: "shop@example.com"},
		To:      []*eventsv1.EmailAddress{{Email: "buyer@example.com"}},
		Subject: "Your order",
		Text:    "Thanks",
	}
}

// failEmails publishes email commands and dead-letters them through a
// failing email stage.
func failEmails(t *testing.T, h *harness, cmds ...*eventsv1.EmailCommand) {
	t.Helper()
	for _, c := range cmds {
		if _, err := h.rt.Publisher.PublishCommand(testCtx(t), c.GetOrigin().GetTenant(), bus.ChannelEmail, c.GetId(), "", c); err != nil {
			t.Fatal(err)
		}
	}
	runFailingStage(t, h, h.rt.Topology.OutboundStream(), bus.OutboundFilter(testEnv, bus.ChannelEmail), bus.ChannelEmail,
		len(cmds), bus.Permanent(errors.New("sendgrid: 401 unauthorized")))
}

// putDeadLetter stores a dead letter the way the consumer loop writes one
// (bus.Consumer.deadLetter), failed at failedAt; extra headers are set
// last. It returns the letter's sequence.
func putDeadLetter(t *testing.T, h *harness, tenant, stage, origSubject string, body []byte, failedAt time.Time, extra map[string]string) uint64 {
	t.Helper()
	subject, err := bus.DLQSubject(testEnv, tenant, stage)
	if err != nil {
		t.Fatal(err)
	}
	origSeq := strconv.FormatInt(durables.Add(1), 10)
	hdr := nats.Header{}
	hdr.Set(bus.HeaderDLQReason, "put by the test")
	hdr.Set(bus.HeaderDLQStage, stage)
	hdr.Set(bus.HeaderDLQPermanent, "true")
	hdr.Set(bus.HeaderDLQAttempts, "1")
	hdr.Set(bus.HeaderDLQFailedAt, failedAt.UTC().Format(time.RFC3339Nano))
	hdr.Set(bus.HeaderDLQOriginalSubject, origSubject)
	hdr.Set(bus.HeaderDLQOriginalStream, h.rt.Topology.EventsStream())
	hdr.Set(bus.HeaderDLQOriginalSeq, origSeq)
	hdr.Set(bus.HeaderDLQOriginalMsgID, tenant+":put-"+origSeq)
	for k, v := range extra {
		hdr.Set(k, v)
	}
	p, err := h.rt.Publisher.Publish(testCtx(t), subject, "dlq:"+stage+":test:"+origSeq, body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return p.Sequence
}

// putEventLetters stores n dead letters of tenant's events of type typ.
func putEventLetters(t *testing.T, h *harness, tenant, typ string, n int) []uint64 {
	t.Helper()
	subject, err := bus.EventSubject(testEnv, tenant, typ)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := range n {
		body, err := event.Marshal(testEvent(tenant, fmt.Sprintf("%s-%s-%d", tenant, typ, i), typ))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, putDeadLetter(t, h, tenant, bus.StageFlow, subject, body, time.Now(), nil))
	}
	return seqs
}

// letterOf finds the listed letter whose original message id is msgID.
func letterOf(t *testing.T, h *harness, msgID string) *adminv1.DeadLetter {
	t.Helper()
	res, err := h.operator.DLQ.ListDeadLetters(h.operator.ctx(t), &adminv1.ListDeadLettersRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.GetDeadLetters() {
		if d.GetOriginalMsgId() == msgID {
			return d
		}
	}
	t.Fatalf("no dead letter of message %s", msgID)
	return nil
}

func msgIDs(dls []*adminv1.DeadLetter) []string {
	var out []string
	for _, d := range dls {
		out = append(out, d.GetOriginalMsgId())
	}
	slices.Sort(out)
	return out
}

// dlqFixture is a dead-letter stream holding, for acme, two events failed
// by the flow stage, one email command failed by the email stage and an
// old event (failed in 2020); for globex one failed event.
func dlqFixture(t *testing.T) *harness {
	h := newHarness(t)
	failEvents(t, h,
		testEvent("acme", "evt-a1", "order.created"),
		testEvent("acme", "evt-a2", "order.shipped"),
		testEvent("globex", "evt-g1", "order.created"))
	failEmails(t, h, emailCommand("acme", "evt-a1:f1:mail", "order.created"))
	old := testEvent("acme", "evt-old", "old.event")
	body, err := event.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	putDeadLetter(t, h, "acme", bus.StageFlow, "greentic.events.test.acme.old.event", body,
		time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC), map[string]string{bus.HeaderDLQOriginalMsgID: "acme:evt-old"})
	return h
}

func TestListDeadLetters(t *testing.T) {
	h := dlqFixture(t)
	ts := timestamppb.New
	y2021 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []string{"acme:evt-a1", "acme:evt-a1:f1:mail", "acme:evt-a2", "acme:evt-old", "globex:evt-g1"}
	tests := []struct {
		name   string
		c      *client
		filter *adminv1.DeadLetterFilter
		want   []string
	}{
		{"operator sees all", h.operator, nil, all},
		{"operator by tenant", h.operator, &adminv1.DeadLetterFilter{Tenant: "globex"}, []string{"globex:evt-g1"}},
		{"tenant token sees its own", h.acme, nil, []string{"acme:evt-a1", "acme:evt-a1:f1:mail", "acme:evt-a2", "acme:evt-old"}},
		{"tenant token naming itself", h.globex, &adminv1.DeadLetterFilter{Tenant: "globex"}, []string{"globex:evt-g1"}},
		{"stage flow", h.operator, &adminv1.DeadLetterFilter{Stage: "flow"}, []string{"acme:evt-a1", "acme:evt-a2", "acme:evt-old", "globex:evt-g1"}},
		{"stage email", h.acme, &adminv1.DeadLetterFilter{Stage: "email"}, []string{"acme:evt-a1:f1:mail"}},
		{"stage sms has none", h.operator, &adminv1.DeadLetterFilter{Stage: "sms"}, nil},
		{"event type, with the commands it issued", h.operator, &adminv1.DeadLetterFilter{EventType: "order.created"}, []string{"acme:evt-a1", "acme:evt-a1:f1:mail", "globex:evt-g1"}},
		{"event type and stage", h.operator, &adminv1.DeadLetterFilter{EventType: "order.created", Stage: "flow", Tenant: "acme"}, []string{"acme:evt-a1"}},
		{"command id", h.acme, &adminv1.DeadLetterFilter{EventType: "evt-a1:f1:mail"}, []string{"acme:evt-a1:f1:mail"}},
		{"since", h.acme, &adminv1.DeadLetterFilter{Since: ts(y2021)}, []string{"acme:evt-a1", "acme:evt-a1:f1:mail", "acme:evt-a2"}},
		{"until", h.operator, &adminv1.DeadLetterFilter{Until: ts(y2021)}, []string{"acme:evt-old"}},
		{"since and until", h.operator, &adminv1.DeadLetterFilter{Since: ts(y2021.AddDate(-2, 0, 0)), Until: ts(y2021)}, []string{"acme:evt-old"}},
		{"until is exclusive", h.operator, &adminv1.DeadLetterFilter{Until: ts(time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC))}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.c.DLQ.ListDeadLetters(tc.c.ctx(t), &adminv1.ListDeadLettersRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			if got := msgIDs(res.GetDeadLetters()); !slices.Equal(got, tc.want) {
				t.Fatalf("letters %v, want %v", got, tc.want)
			}
			if res.GetNextPageToken() != "" {
				t.Fatalf("next page token %q on the only page", res.GetNextPageToken())
			}
		})
	}

	t.Run("max sequence", func(t *testing.T) {
		// The email letter was stored after the flow stage's, before the
		// old one.
		bound := letterOf(t, h, "acme:evt-a1:f1:mail").GetSequence()
		filter := &adminv1.DeadLetterFilter{MaxSequence: bound}
		res, err := h.operator.DLQ.ListDeadLetters(h.operator.ctx(t), &adminv1.ListDeadLettersRequest{Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"acme:evt-a1", "acme:evt-a1:f1:mail", "acme:evt-a2", "globex:evt-g1"}
		if ids := msgIDs(res.GetDeadLetters()); !slices.Equal(ids, want) || res.GetNextPageToken() != "" {
			t.Fatalf("letters %v, next page token %q; want %v", ids, res.GetNextPageToken(), want)
		}
		// Paged, the bound ends the last page.
		first, err := h.operator.DLQ.ListDeadLetters(h.operator.ctx(t), &adminv1.ListDeadLettersRequest{PageSize: 3, Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		next, err := h.operator.DLQ.ListDeadLetters(h.operator.ctx(t), &adminv1.ListDeadLettersRequest{PageSize: 3, PageToken: first.GetNextPageToken(), Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		if got := next.GetDeadLetters(); len(first.GetDeadLetters()) != 3 || len(got) != 1 || got[0].GetSequence() != bound || next.GetNextPageToken() != "" {
			t.Fatalf("pages %v then %v, next page token %q", msgIDs(first.GetDeadLetters()), msgIDs(got), next.GetNextPageToken())
		}
		// With the other fields of the filter.
		res, err = h.acme.DLQ.ListDeadLetters(h.acme.ctx(t), &adminv1.ListDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{MaxSequence: bound, Stage: "flow"}})
		if err != nil {
			t.Fatal(err)
		}
		if ids := msgIDs(res.GetDeadLetters()); !slices.Equal(ids, []string{"acme:evt-a1", "acme:evt-a2"}) {
			t.Fatalf("acme's flow letters up to %d: %v", bound, ids)
		}
	})

	t.Run("fields", func(t *testing.T) {
		d := letterOf(t, h, "acme:evt-a1")
		if d.GetTenant() != "acme" || d.GetStage() != "flow" || d.GetReason() != "flow f1: boom" || !d.GetPermanent() ||
			d.GetAttempts() != 1 || d.GetOriginalSubject() != "greentic.events.test.acme.order.created" ||
			d.GetEventType() != "order.created" || d.GetSequence() == 0 {
			t.Fatalf("letter %v", d)
		}
		if age := time.Since(d.GetFailedTime().AsTime()); age < 0 || age > time.Minute {
			t.Fatalf("failed time %v", d.GetFailedTime().AsTime())
		}
		if len(d.GetOriginal()) != 0 || len(d.GetOriginalJson()) != 0 {
			t.Fatal("a listed letter carries its original message")
		}
		mail := letterOf(t, h, "acme:evt-a1:f1:mail")
		if mail.GetStage() != "email" || mail.GetEventType() != "evt-a1:f1:mail" || mail.GetReason() != "sendgrid: 401 unauthorized" {
			t.Fatalf("email letter %v", mail)
		}
	})

	t.Run("paging", func(t *testing.T) {
		var got []*adminv1.DeadLetter
		token := ""
		pages := 0
		for {
			res, err := h.operator.DLQ.ListDeadLetters(h.operator.ctx(t), &adminv1.ListDeadLettersRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if n := len(res.GetDeadLetters()); n == 0 || n > 2 {
				t.Fatalf("page %d holds %d letters", pages, n)
			}
			got = append(got, res.GetDeadLetters()...)
			if token = res.GetNextPageToken(); token == "" {
				break
			}
		}
		if pages != 3 {
			t.Fatalf("%d pages, want 3", pages)
		}
		if ids := msgIDs(got); !slices.Equal(ids, all) {
			t.Fatalf("letters %v, want %v", ids, all)
		}
		if !slices.IsSortedFunc(got, func(a, b *adminv1.DeadLetter) int { return int(a.GetSequence()) - int(b.GetSequence()) }) {
			t.Fatal("pages are not in stream order")
		}
		// A filter applies across pages.
		res, err := h.acme.DLQ.ListDeadLetters(h.acme.ctx(t), &adminv1.ListDeadLettersRequest{PageSize: 1, Filter: &adminv1.DeadLetterFilter{EventType: "order.created"}})
		if err != nil {
			t.Fatal(err)
		}
		next, err := h.acme.DLQ.ListDeadLetters(h.acme.ctx(t), &adminv1.ListDeadLettersRequest{PageSize: 1, PageToken: res.GetNextPageToken(), Filter: &adminv1.DeadLetterFilter{EventType: "order.created"}})
		if err != nil {
			t.Fatal(err)
		}
		if ids := msgIDs(append(res.GetDeadLetters(), next.GetDeadLetters()...)); !slices.Equal(ids, []string{"acme:evt-a1", "acme:evt-a1:f1:mail"}) || next.GetNextPageToken() != "" {
			t.Fatalf("filtered pages %v, next token %q", ids, next.GetNextPageToken())
		}
	})
}

func TestGetDeadLetter(t *testing.T) {
	h := dlqFixture(t)
	a1 := letterOf(t, h, "acme:evt-a1").GetSequence()
	g1 := letterOf(t, h, "globex:evt-g1").GetSequence()
	mail := letterOf(t, h, "acme:evt-a1:f1:mail").GetSequence()

	t.Run("event", func(t *testing.T) {
		for _, c := range []struct {
			c      *client
			tenant string
		}{{h.operator, ""}, {h.operator, "acme"}, {h.acme, "acme"}} {
			res, err := c.c.DLQ.GetDeadLetter(c.c.ctx(t), &adminv1.GetDeadLetterRequest{Sequence: a1, Tenant: c.tenant})
			if err != nil {
				t.Fatal(err)
			}
			d := res.GetDeadLetter()
			e, err := event.Unmarshal(d.GetOriginal())
			if err != nil || e.GetId() != "evt-a1" {
				t.Fatalf("original %v: %v", e, err)
			}
			js := string(d.GetOriginalJson())
			if !strings.Contains(js, `"id":"evt-a1"`) || !strings.Contains(js, `"payload":{"order":"evt-a1"}`) {
				t.Fatalf("original json %s", js)
			}
			if d.GetReason() != "flow f1: boom" || d.GetEventType() != "order.created" {
				t.Fatalf("letter %v", d)
			}
		}
	})
	t.Run("command", func(t *testing.T) {
		res, err := h.acme.DLQ.GetDeadLetter(h.acme.ctx(t), &adminv1.GetDeadLetterRequest{Sequence: mail, Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		cmd := &eventsv1.EmailCommand{}
		if err := proto.Unmarshal(res.GetDeadLetter().GetOriginal(), cmd); err != nil || cmd.GetId() != "evt-a1:f1:mail" {
			t.Fatalf("original %v: %v", cmd, err)
		}
		if js := string(res.GetDeadLetter().GetOriginalJson()); !strings.Contains(js, `"id":"evt-a1:f1:mail"`) || !strings.Contains(js, `"event_type":"order.created"`) {
			t.Fatalf("original json %s", js)
		}
	})
	t.Run("flow result", func(t *testing.T) {
		body, err := proto.Marshal(&eventsv1.FlowResult{EventId: "evt-r", EventType: "order.created", Tenant: "acme", Flow: "f1", Output: []byte(`{"order":"evt-r"}`)})
		if err != nil {
			t.Fatal(err)
		}
		seq := putDeadLetter(t, h, "acme", bus.StageFlow, "greentic.events.test.acme.order.created.result", body, time.Now(), nil)
		res, err := h.acme.DLQ.GetDeadLetter(h.acme.ctx(t), &adminv1.GetDeadLetterRequest{Sequence: seq, Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if js := string(res.GetDeadLetter().GetOriginalJson()); !strings.Contains(js, `"event_id":"evt-r"`) || !strings.Contains(js, `"output":{"order":"evt-r"}`) {
			t.Fatalf("original json %s", js)
		}
	})
	t.Run("undecodable original", func(t *testing.T) {
		seq := putDeadLetter(t, h, "acme", bus.ChannelWebhook, "greentic.outbound.test.acme.webhook", []byte{0xff, 0xff}, time.Now(), nil)
		res, err := h.operator.DLQ.GetDeadLetter(h.operator.ctx(t), &adminv1.GetDeadLetterRequest{Sequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		if d := res.GetDeadLetter(); string(d.GetOriginal()) != "\xff\xff" || len(d.GetOriginalJson()) != 0 {
			t.Fatalf("letter %v", d)
		}
	})
	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name   string
			c      *client
			req    *adminv1.GetDeadLetterRequest
			code   codes.Code
			field  string
			tenant string
		}{
			{name: "another tenant's letter", c: h.acme, req: &adminv1.GetDeadLetterRequest{Sequence: g1, Tenant: "acme"}, code: codes.NotFound},
			{name: "operator naming another tenant", c: h.operator, req: &adminv1.GetDeadLetterRequest{Sequence: a1, Tenant: "globex"}, code: codes.NotFound},
			{name: "no such sequence", c: h.operator, req: &adminv1.GetDeadLetterRequest{Sequence: 99999}, code: codes.NotFound},
			{name: "tenant token naming another tenant", c: h.acme, req: &adminv1.GetDeadLetterRequest{Sequence: g1, Tenant: "globex"}, code: codes.PermissionDenied},
			{name: "tenant token naming no tenant", c: h.acme, req: &adminv1.GetDeadLetterRequest{Sequence: a1}, code: codes.InvalidArgument, field: "tenant"},
			{name: "malformed tenant", c: h.operator, req: &adminv1.GetDeadLetterRequest{Sequence: a1, Tenant: "a.b"}, code: codes.InvalidArgument, field: "tenant"},
			{name: "no sequence", c: h.operator, req: &adminv1.GetDeadLetterRequest{}, code: codes.InvalidArgument, field: "sequence"},
			{name: "no token", c: h.anonymous, req: &adminv1.GetDeadLetterRequest{Sequence: a1}, code: codes.Unauthenticated},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := tc.c.DLQ.GetDeadLetter(tc.c.ctx(t), tc.req)
				wantCode(t, err, tc.code)
				if tc.field != "" {
					wantField(t, err, tc.field)
				}
			})
		}
	})
}

func TestReplayDeadLetter(t *testing.T) {
	h := newHarness(t)
	failEvents(t, h, testEvent("acme", "evt-r1", "order.created"))
	d := letterOf(t, h, "acme:evt-r1")
	seq := d.GetSequence()
	subject := "greentic.events.test.acme.order.created"
	events := h.rt.Topology.EventsStream()
	if n := len(streamMsgs(t, h, events, subject)); n != 1 {
		t.Fatalf("%d events before the replay", n)
	}

	// Another tenant's letter does not exist for globex.
	_, err := h.globex.DLQ.ReplayDeadLetters(h.globex.ctx(t), &adminv1.ReplayDeadLettersRequest{Sequence: seq})
	wantCode(t, err, codes.NotFound)

	res, err := h.acme.DLQ.ReplayDeadLetters(h.acme.ctx(t), &adminv1.ReplayDeadLettersRequest{Sequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetReplayed() != 1 || !slices.Equal(res.GetSequences(), []uint64{seq}) || !res.GetComplete() {
		t.Fatalf("response %v", res)
	}
	msgs := streamMsgs(t, h, events, subject)
	if len(msgs) != 2 {
		t.Fatalf("%d events after the replay, want the original and its replay", len(msgs))
	}
	orig, replayed := msgs[0], msgs[1]
	marker := "dlq-" + strconv.FormatUint(seq, 10)
	if got := replayed.Header.Get(bus.HeaderReplay); got != marker {
		t.Fatalf("replay header %q, want %q", got, marker)
	}
	if got := replayed.Header.Get(bus.HeaderMsgID); got != "acme:evt-r1/replay/"+marker {
		t.Fatalf("message id %q", got)
	}
	if replayed.Header.Get(bus.HeaderFlows) != "f1" || replayed.Header.Get(bus.HeaderEventID) != "evt-r1" ||
		replayed.Header.Get(bus.HeaderTraceparent) != orig.Header.Get(bus.HeaderTraceparent) {
		t.Fatalf("headers %v", replayed.Header)
	}
	for k := range replayed.Header {
		if strings.HasPrefix(strings.ToLower(k), "greentic-dlq-") {
			t.Errorf("replayed message has header %s", k)
		}
	}
	if string(replayed.Data) != string(orig.Data) {
		t.Fatal("replayed body differs from the original")
	}

	// Replaying the same letter again is a duplicate: stored once.
	if _, err := h.operator.DLQ.ReplayDeadLetters(h.operator.ctx(t), &adminv1.ReplayDeadLettersRequest{Sequence: seq}); err != nil {
		t.Fatal(err)
	}
	if n := len(streamMsgs(t, h, events, subject)); n != 2 {
		t.Fatalf("%d events after replaying twice, want 2", n)
	}
	// Without purge the letter stays.
	if _, err := h.acme.DLQ.GetDeadLetter(h.acme.ctx(t), &adminv1.GetDeadLetterRequest{Sequence: seq, Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
}

func TestReplayDeadLettersByFilterWithPurge(t *testing.T) {
	h := newHarness(t)
	failEvents(t, h,
		testEvent("acme", "evt-p1", "order.created"),
		testEvent("acme", "evt-p2", "order.created"),
		testEvent("acme", "evt-p3", "order.shipped"),
		testEvent("globex", "evt-p4", "order.created"))
	want := []uint64{letterOf(t, h, "acme:evt-p1").GetSequence(), letterOf(t, h, "acme:evt-p2").GetSequence()}
	slices.Sort(want)

	filter := &adminv1.DeadLetterFilter{EventType: "order.created"}
	res, err := h.acme.DLQ.ReplayDeadLetters(h.acme.ctx(t), &adminv1.ReplayDeadLettersRequest{Filter: filter, Purge: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetReplayed() != 2 || !slices.Equal(res.GetSequences(), want) || !res.GetComplete() {
		t.Fatalf("response %v, want sequences %v", res, want)
	}
	for _, seq := range want {
		_, err := h.operator.DLQ.GetDeadLetter(h.operator.ctx(t), &adminv1.GetDeadLetterRequest{Sequence: seq})
		wantCode(t, err, codes.NotFound)
	}
	left, err := h.acme.DLQ.ListDeadLetters(h.acme.ctx(t), &adminv1.ListDeadLettersRequest{Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.GetDeadLetters()) != 0 {
		t.Fatalf("left after the purge: %v", msgIDs(left.GetDeadLetters()))
	}
	all, err := h.operator.DLQ.ListDeadLetters(h.operator.ctx(t), &adminv1.ListDeadLettersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := msgIDs(all.GetDeadLetters()); !slices.Equal(ids, []string{"acme:evt-p3", "globex:evt-p4"}) {
		t.Fatalf("letters left %v", ids)
	}
	var replays []string
	for _, m := range streamMsgs(t, h, h.rt.Topology.EventsStream(), bus.EventFilter(testEnv)) {
		if m.Header.Get(bus.HeaderReplay) != "" {
			replays = append(replays, m.Header.Get(bus.HeaderEventID))
		}
	}
	if slices.Sort(replays); !slices.Equal(replays, []string{"evt-p1", "evt-p2"}) {
		t.Fatalf("replayed events %v", replays)
	}
}

func TestReplayRefusesForeignSubjects(t *testing.T) {
	h := newHarness(t)
	body, err := event.Marshal(testEvent("acme", "evt-f", "order.created"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, stage, subject string }{
		{"another tenant's events", bus.StageFlow, "greentic.events.test.globex.order.created"},
		{"another env", bus.StageFlow, "greentic.events.prod.acme.order.created"},
		{"a wildcard", bus.StageFlow, "greentic.events.test.acme.>"},
		{"the dead-letter stream", bus.StageFlow, "greentic.dlq.test.acme.flow"},
		{"commands from the flow stage", bus.StageFlow, "greentic.outbound.test.acme.email"},
		{"another channel", bus.ChannelEmail, "greentic.outbound.test.acme.sms"},
		{"events from a sender", bus.ChannelWebhook, "greentic.events.test.acme.order.created"},
		{"not a bus subject", bus.StageFlow, "payments.charge"},
		{"no subject", bus.StageFlow, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := putDeadLetter(t, h, "acme", tc.stage, tc.subject, body, time.Now(), nil)
			_, err := h.operator.DLQ.ReplayDeadLetters(h.operator.ctx(t), &adminv1.ReplayDeadLettersRequest{Sequence: seq})
			wantCode(t, err, codes.FailedPrecondition)
		})
	}
	// By filter they are skipped, and kept even with purge.
	res, err := h.acme.DLQ.ReplayDeadLetters(h.acme.ctx(t), &adminv1.ReplayDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{}, Purge: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetReplayed() != 0 || !res.GetComplete() {
		t.Fatalf("replayed %v", res)
	}
	if n := dlqCount(t, h); n != len(tests) {
		t.Fatalf("%d dead letters left, want %d", n, len(tests))
	}
	for _, name := range []string{h.rt.Topology.EventsStream(), h.rt.Topology.OutboundStream()} {
		if msgs := streamMsgs(t, h, name, ">"); len(msgs) != 0 {
			t.Fatalf("%s holds %d messages, first on %s", name, len(msgs), msgs[0].Subject)
		}
	}
}

func TestReplayIsRateLimited(t *testing.T) {
	h := newHarness(t)
	putEventLetters(t, h, "acme", "bulk.test", 20)
	start := time.Now()
	res, err := h.acme.DLQ.ReplayDeadLetters(callCtx(t, h.acme, 30*time.Second), &adminv1.ReplayDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{}, Rate: 10})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if res.GetReplayed() != 20 || !res.GetComplete() {
		t.Fatalf("replayed %d (complete %t), want 20", res.GetReplayed(), res.GetComplete())
	}
	// The first goes at once, the other 19 a tenth of a second apart.
	if elapsed < 1500*time.Millisecond {
		t.Fatalf("20 replays at 10/s took %s", elapsed)
	}
}

func TestReplayStopsBeforeTheDeadline(t *testing.T) {
	h := newHarness(t)
	seqs := putEventLetters(t, h, "acme", "bulk.test", 20)
	all := &adminv1.DeadLetterFilter{}
	replay := func(t *testing.T, ctx context.Context, purge bool) *adminv1.ReplayDeadLettersResponse {
		t.Helper()
		res, err := h.acme.DLQ.ReplayDeadLetters(ctx, &adminv1.ReplayDeadLettersRequest{Filter: all, Rate: 10, Purge: purge})
		if err != nil {
			t.Fatalf("a replay cut short by its deadline: %v", err)
		}
		return res
	}

	// At 10 per second a call of 1.2s replays about 10 letters of 20, the
	// oldest first, and says it did not get through them.
	res := replay(t, callCtx(t, h.acme, 1200*time.Millisecond), false)
	n := int(res.GetReplayed())
	if n < 1 || n >= 20 || !slices.Equal(res.GetSequences(), seqs[:n]) || res.GetComplete() {
		t.Fatalf("response %v", res)
	}
	// Without purge the letters stay: the next call begins with them again.
	// With purge it removes what it replays...
	res = replay(t, callCtx(t, h.acme, 1200*time.Millisecond), true)
	m := int(res.GetReplayed())
	if m < 1 || m >= 20 || !slices.Equal(res.GetSequences(), seqs[:m]) || res.GetComplete() {
		t.Fatalf("response %v", res)
	}
	if n := dlqCount(t, h); n != 20-m {
		t.Fatalf("%d dead letters left, want %d", n, 20-m)
	}
	// ...so the next call goes on where it stopped, and gets through.
	res = replay(t, callCtx(t, h.acme, 10*time.Second), true)
	if !slices.Equal(res.GetSequences(), seqs[m:]) || int(res.GetReplayed()) != 20-m || !res.GetComplete() {
		t.Fatalf("response %v, want sequences %v", res, seqs[m:])
	}
	if n := dlqCount(t, h); n != 0 {
		t.Fatalf("%d dead letters left", n)
	}
	// The ones replayed twice are duplicates, not stored twice.
	if msgs := streamMsgs(t, h, h.rt.Topology.EventsStream(), "greentic.events.test.acme.bulk.test"); len(msgs) != 20 {
		t.Fatalf("%d events replayed, want 20", len(msgs))
	}
	// Nothing left to replay: complete at once.
	if res := replay(t, h.acme.ctx(t), true); res.GetReplayed() != 0 || !res.GetComplete() {
		t.Fatalf("response %v", res)
	}
}

// TestContinueUpToLastSequence repeats a replay cut short at its deadline
// the exact way: with the first call's last_sequence as max_sequence, which
// leaves alone letters stored since, whatever time they say they failed.
func TestContinueUpToLastSequence(t *testing.T) {
	h := newHarness(t)
	seqs := putEventLetters(t, h, "acme", "bulk.test", 20)
	replay := func(t *testing.T, ctx context.Context, filter *adminv1.DeadLetterFilter) *adminv1.ReplayDeadLettersResponse {
		t.Helper()
		res, err := h.acme.DLQ.ReplayDeadLetters(ctx, &adminv1.ReplayDeadLettersRequest{Filter: filter, Rate: 10, Purge: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	res := replay(t, callCtx(t, h.acme, 1200*time.Millisecond), &adminv1.DeadLetterFilter{})
	m := int(res.GetReplayed())
	if m < 1 || m >= 20 || res.GetComplete() || res.GetLastSequence() != seqs[19] {
		t.Fatalf("response %v, want last sequence %d", res, seqs[19])
	}
	// Letters stored after the first call started, such as replays that
	// failed again; these say they failed an hour before, as a service
	// whose clock is behind would write.
	subject, err := bus.EventSubject(testEnv, "acme", "bulk.test")
	if err != nil {
		t.Fatal(err)
	}
	var later []uint64
	for i := range 3 {
		body, err := event.Marshal(testEvent("acme", fmt.Sprintf("later-%d", i), "bulk.test"))
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, putDeadLetter(t, h, "acme", bus.StageFlow, subject, body, time.Now().Add(-time.Hour), nil))
	}

	bound := res.GetLastSequence()
	res = replay(t, callCtx(t, h.acme, 10*time.Second), &adminv1.DeadLetterFilter{MaxSequence: bound})
	if !slices.Equal(res.GetSequences(), seqs[m:]) || !res.GetComplete() || res.GetLastSequence() != bound {
		t.Fatalf("response %v, want sequences %v and last sequence %d", res, seqs[m:], bound)
	}
	left := streamMsgs(t, h, h.rt.Topology.DLQStream(), bus.DLQFilter(testEnv))
	if len(left) != 3 || left[0].Sequence != later[0] {
		t.Fatalf("%d dead letters left, want the 3 stored later", len(left))
	}

	// A purge honours it too, and answers the lower of it and the stream's
	// last sequence.
	pres, err := h.acme.DLQ.PurgeDeadLetters(h.acme.ctx(t), &adminv1.PurgeDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{MaxSequence: later[1]}})
	if err != nil || pres.GetPurged() != 2 || !pres.GetComplete() || pres.GetLastSequence() != later[1] {
		t.Fatalf("purge up to %d: %v %v", later[1], pres, err)
	}
	pres, err = h.acme.DLQ.PurgeDeadLetters(h.acme.ctx(t), &adminv1.PurgeDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{MaxSequence: later[2] + 100}})
	if err != nil || pres.GetPurged() != 1 || pres.GetLastSequence() != later[2] {
		t.Fatalf("purge up to past the end: %v %v", pres, err)
	}
	// By sequence, the last sequence is that letter's.
	one := putEventLetters(t, h, "acme", "bulk.test", 2)
	res, err = h.acme.DLQ.ReplayDeadLetters(h.acme.ctx(t), &adminv1.ReplayDeadLettersRequest{Sequence: one[0]})
	if err != nil || res.GetLastSequence() != one[0] {
		t.Fatalf("replay one: %v %v", res, err)
	}
	pres, err = h.acme.DLQ.PurgeDeadLetters(h.acme.ctx(t), &adminv1.PurgeDeadLettersRequest{Sequence: one[0]})
	if err != nil || pres.GetLastSequence() != one[0] {
		t.Fatalf("purge one: %v %v", pres, err)
	}
}

func TestPurgeDeadLetters(t *testing.T) {
	h := newHarness(t)
	acme := putEventLetters(t, h, "acme", "order.created", 3)
	globex := putEventLetters(t, h, "globex", "order.created", 1)

	_, err := h.acme.DLQ.PurgeDeadLetters(h.acme.ctx(t), &adminv1.PurgeDeadLettersRequest{Sequence: globex[0]})
	wantCode(t, err, codes.NotFound)

	res, err := h.acme.DLQ.PurgeDeadLetters(h.acme.ctx(t), &adminv1.PurgeDeadLettersRequest{Sequence: acme[0]})
	if err != nil || res.GetPurged() != 1 || !res.GetComplete() {
		t.Fatalf("purge one: %v %v", res, err)
	}
	_, err = h.acme.DLQ.GetDeadLetter(h.acme.ctx(t), &adminv1.GetDeadLetterRequest{Sequence: acme[0], Tenant: "acme"})
	wantCode(t, err, codes.NotFound)
	_, err = h.acme.DLQ.PurgeDeadLetters(h.acme.ctx(t), &adminv1.PurgeDeadLettersRequest{Sequence: acme[0]})
	wantCode(t, err, codes.NotFound)

	// An empty filter is every letter the caller may see.
	res, err = h.acme.DLQ.PurgeDeadLetters(h.acme.ctx(t), &adminv1.PurgeDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{}})
	if err != nil || res.GetPurged() != 2 || !res.GetComplete() {
		t.Fatalf("purge acme's: %v %v", res, err)
	}
	if n := dlqCount(t, h); n != 1 {
		t.Fatalf("%d dead letters left, want globex's", n)
	}
	res, err = h.operator.DLQ.PurgeDeadLetters(h.operator.ctx(t), &adminv1.PurgeDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Tenant: "globex", Stage: "flow"}})
	if err != nil || res.GetPurged() != 1 || !res.GetComplete() {
		t.Fatalf("purge globex's: %v %v", res, err)
	}
	if n := dlqCount(t, h); n != 0 {
		t.Fatalf("%d dead letters left", n)
	}
}

func TestDeadLetterErrors(t *testing.T) {
	h := newHarness(t)
	seq := putEventLetters(t, h, "acme", "order.created", 1)[0]
	since, until := timestamppb.New(time.Unix(2000, 0)), timestamppb.New(time.Unix(1000, 0))
	list := func(c *client, req *adminv1.ListDeadLettersRequest) func(*testing.T) error {
		return func(t *testing.T) error { _, err := c.DLQ.ListDeadLetters(c.ctx(t), req); return err }
	}
	replay := func(c *client, req *adminv1.ReplayDeadLettersRequest) func(*testing.T) error {
		return func(t *testing.T) error { _, err := c.DLQ.ReplayDeadLetters(c.ctx(t), req); return err }
	}
	purge := func(c *client, req *adminv1.PurgeDeadLettersRequest) func(*testing.T) error {
		return func(t *testing.T) error { _, err := c.DLQ.PurgeDeadLetters(c.ctx(t), req); return err }
	}
	all := &adminv1.DeadLetterFilter{}
	tests := []struct {
		name  string
		call  func(*testing.T) error
		code  codes.Code
		field string
	}{
		{"list without token", list(h.anonymous, &adminv1.ListDeadLettersRequest{}), codes.Unauthenticated, ""},
		{"replay without token", replay(h.anonymous, &adminv1.ReplayDeadLettersRequest{Sequence: seq}), codes.Unauthenticated, ""},
		{"purge without token", purge(h.anonymous, &adminv1.PurgeDeadLettersRequest{Sequence: seq}), codes.Unauthenticated, ""},
		{"list another tenant", list(h.acme, &adminv1.ListDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Tenant: "globex"}}), codes.PermissionDenied, ""},
		{"replay another tenant", replay(h.acme, &adminv1.ReplayDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Tenant: "globex"}}), codes.PermissionDenied, ""},
		{"purge another tenant", purge(h.acme, &adminv1.PurgeDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Tenant: "globex"}}), codes.PermissionDenied, ""},
		{"replay another tenant's letter", replay(h.globex, &adminv1.ReplayDeadLettersRequest{Sequence: seq}), codes.NotFound, ""},
		{"purge another tenant's letter", purge(h.globex, &adminv1.PurgeDeadLettersRequest{Sequence: seq}), codes.NotFound, ""},
		{"replay no such letter", replay(h.operator, &adminv1.ReplayDeadLettersRequest{Sequence: 99999}), codes.NotFound, ""},
		{"unknown stage", list(h.operator, &adminv1.ListDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Stage: "fax"}}), codes.InvalidArgument, "filter.stage"},
		{"malformed tenant", list(h.operator, &adminv1.ListDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Tenant: "ac>me"}}), codes.InvalidArgument, "filter.tenant"},
		{"malformed event type", list(h.operator, &adminv1.ListDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{EventType: "order created"}}), codes.InvalidArgument, "filter.event_type"},
		{"since after until", list(h.operator, &adminv1.ListDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Since: since, Until: until}}), codes.InvalidArgument, "filter.since"},
		{"invalid until", list(h.operator, &adminv1.ListDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Until: &timestamppb.Timestamp{Nanos: -1}}}), codes.InvalidArgument, "filter.until"},
		{"negative page size", list(h.operator, &adminv1.ListDeadLettersRequest{PageSize: -1}), codes.InvalidArgument, "page_size"},
		{"foreign page token", list(h.operator, &adminv1.ListDeadLettersRequest{PageToken: "not-a-token"}), codes.InvalidArgument, "page_token"},
		{"replay neither sequence nor filter", replay(h.operator, &adminv1.ReplayDeadLettersRequest{}), codes.InvalidArgument, "sequence"},
		{"replay both sequence and filter", replay(h.operator, &adminv1.ReplayDeadLettersRequest{Sequence: seq, Filter: all}), codes.InvalidArgument, "sequence"},
		{"replay negative rate", replay(h.operator, &adminv1.ReplayDeadLettersRequest{Sequence: seq, Rate: -1}), codes.InvalidArgument, "rate"},
		{"replay rate too high", replay(h.operator, &adminv1.ReplayDeadLettersRequest{Filter: all, Rate: 10001}), codes.InvalidArgument, "rate"},
		{"replay rate NaN", replay(h.operator, &adminv1.ReplayDeadLettersRequest{Filter: all, Rate: math.NaN()}), codes.InvalidArgument, "rate"},
		{"replay bad filter", replay(h.operator, &adminv1.ReplayDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Stage: "fax"}}), codes.InvalidArgument, "filter.stage"},
		{"purge neither sequence nor filter", purge(h.operator, &adminv1.PurgeDeadLettersRequest{}), codes.InvalidArgument, "sequence"},
		{"purge both sequence and filter", purge(h.operator, &adminv1.PurgeDeadLettersRequest{Sequence: seq, Filter: all}), codes.InvalidArgument, "sequence"},
		{"purge bad filter", purge(h.operator, &adminv1.PurgeDeadLettersRequest{Filter: &adminv1.DeadLetterFilter{Since: since, Until: until}}), codes.InvalidArgument, "filter.since"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t)
			wantCode(t, err, tc.code)
			if tc.field != "" {
				wantField(t, err, tc.field)
			}
		})
	}
	// None of the refused calls touched the letter.
	if n := dlqCount(t, h); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
}
