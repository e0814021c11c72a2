package sender

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/tenant"
)

// Channel describes the commands of one sender.
type Channel[C Command] struct {
	// Name is the outbound channel (bus.ChannelEmail, bus.ChannelSMS): the
	// stage in dead letters and metrics, and the prefix of the outcome
	// event types.
	Name string
	// New returns an empty command to decode into.
	New func() C
	// Summary adds fields of the command to the outcome events (its
	// recipients), so flows reacting to them need not look it up.
	Summary func(C) map[string]any
}

// Sender consumes one channel's commands and sends them through a Provider.
type Sender[C Command] struct {
	ch       Channel[C]
	provider Provider[C]
	accounts *Accounts
	tenants  *tenant.Registry
	cfg      Config
	states   states
	pub      eventPublisher
	limits   *limiters
	log      *slog.Logger
	metrics  *metrics
	now      func() time.Time
}

type eventPublisher interface {
	PublishEvent(ctx context.Context, e *eventsv1.Event) (bus.Published, error)
}

// handle sends one command at most once; see the package documentation.
func (s *Sender[C]) handle(ctx context.Context, d bus.Delivery) error {
	subj, err := bus.ParseSubject(d.Subject)
	if err != nil || subj.Kind != bus.KindOutbound {
		return bus.Permanent(fmt.Errorf("not an outbound command subject: %s", d.Subject))
	}
	cmd := s.ch.New()
	if err := proto.Unmarshal(d.Data, cmd); err != nil {
		s.metrics.outcome(s.ch.Name, "", "malformed")
		return bus.Permanent(fmt.Errorf("decode %s command: %w", s.ch.Name, err))
	}
	if cmd.GetId() == "" {
		s.metrics.outcome(s.ch.Name, "", "malformed")
		return bus.Permanent(fmt.Errorf("%s command has no id", s.ch.Name))
	}
	if t := cmd.GetOrigin().GetTenant(); t != subj.Tenant {
		// A command names the tenant whose accounts and limits it uses:
		// one published on another tenant's subject is refused.
		s.metrics.outcome(s.ch.Name, "", "malformed")
		return bus.Permanent(fmt.Errorf("%s command %s names tenant %q but was published on %s", s.ch.Name, cmd.GetId(), t, d.Subject))
	}
	replay := d.Header.Get(bus.HeaderReplay)
	if replay != "" {
		if err := bus.ValidateReplayMarker(replay); err != nil {
			s.metrics.outcome(s.ch.Name, "", "malformed")
			return bus.Permanent(fmt.Errorf("%s command %s: %w", s.ch.Name, cmd.GetId(), err))
		}
	}
	c := &call[C]{s: s, cmd: cmd, tenant: subj.Tenant, key: RecordKey(s.ch.Name, subj.Tenant, cmd.GetId()), replay: replay}
	if d.Attempt == 1 && replay == "" {
		return c.runNew(ctx)
	}
	return c.run(ctx)
}

// call is the handling of one command delivery.
type call[C Command] struct {
	s      *Sender[C]
	cmd    C
	tenant string
	key    string
	replay string // the delivery's replay marker, if it was replayed from the dead-letter stream
	rec    Record
	rev    uint64
	waited bool // the rate-limit tokens of this delivery are taken
}

// runNew handles a first delivery without a replay marker: almost always a
// command with no record yet, so it claims the record straight away (a
// create, which fails when the record exists) instead of reading it first,
// one round trip to the bucket fewer per command. Only when the record
// exists is it read and answered as run answers a redelivery.
//
// The tokens are taken before the claim rather than while holding it: a
// claim held through a long wait would outlive its lease, and a sender
// stopped during the wait would leave a sending record that the
// redelivery must treat as an unknown outcome although nothing was sent.
// A new command has to wait for its tokens anyway. Commands with a record
// come back as redeliveries or replays, which run reads first, so they are
// answered without waiting; only a command published again outside the
// duplicate window waits for tokens it turns out not to need.
func (c *call[C]) runNew(ctx context.Context) error {
	acct, reason, _ := c.account()
	if reason != "" {
		// The refusal is recorded over whatever record exists.
		return c.run(ctx)
	}
	if err := c.wait(ctx, acct); err != nil {
		return err
	}
	err := c.claim(ctx)
	if errors.Is(err, errConflict) {
		return c.run(ctx)
	}
	if err != nil {
		return bus.Retryable(err)
	}
	return c.send(ctx, acct)
}

// run reads the command's record and answers from it, or sends the command
// when the record allows a new attempt.
func (c *call[C]) run(ctx context.Context) error {
	s := c.s
	var err error
	if c.rec, c.rev, err = s.states.get(ctx, c.key); err != nil {
		return bus.Retryable(err)
	}
	switch c.rec.State {
	case StateSent:
		// Sent before; the sender stopped before the ack, or the outcome
		// event was not stored. Publishing it again stores nothing twice.
		s.metrics.outcome(s.ch.Name, c.rec.Provider, "duplicate")
		return c.publishOutcome(ctx)
	case StateFailed:
		if c.replay == "" || c.replay == c.rec.Replay {
			// A redelivery, or a redelivery of the replay that failed
			// again: the record answers it.
			s.metrics.outcome(s.ch.Name, c.rec.Provider, "duplicate")
			if err := c.publishOutcome(ctx); err != nil {
				return err
			}
			return bus.Permanent(errors.New(c.rec.Reason + ": " + c.rec.Error))
		}
		// A dead letter replayed by an operator: the command is tried
		// again, with attempts of its own. The record changes only through
		// the revision-checked claim (or failure) below, so of two replicas
		// handed the replay one sends.
		s.log.Info("replayed command tried again", "tenant", c.tenant, "command_id", c.cmd.GetId(), "replay", c.replay,
			"previous_reason", c.rec.Reason, "previous_replay", c.rec.Replay)
		c.rec = Record{Tenant: c.rec.Tenant, ID: c.rec.ID, Replay: c.replay}
	case StateSending:
		if age := s.now().Sub(c.rec.StartedAt); age < s.cfg.lease() {
			// An attempt may still be running on another replica.
			return bus.RetryAfter(errors.New("a send of this command is in progress"), s.cfg.lease()-age)
		}
		s.metrics.outcome(s.ch.Name, c.rec.Provider, "unknown")
		s.log.Warn("send outcome unknown: the sender stopped between the provider's answer and its record",
			"tenant", c.tenant, "command_id", c.cmd.GetId(), "attempt", c.rec.Attempts, "started_at", c.rec.StartedAt, "policy", s.cfg.UnknownOutcome)
		if s.cfg.UnknownOutcome == UnknownDeadLetter {
			return c.fail(ctx, ReasonUnknown, fmt.Sprintf("attempt %d started at %s has no recorded answer; the provider may or may not have accepted it (policy %s)",
				c.rec.Attempts, c.rec.StartedAt.UTC().Format(time.RFC3339), UnknownDeadLetter))
		}
	}

	acct, reason, msg := c.account()
	if reason != "" {
		return c.fail(ctx, reason, msg)
	}
	if !c.waited {
		if err := c.wait(ctx, acct); err != nil {
			return err
		}
	}
	err = c.claim(ctx)
	if errors.Is(err, errConflict) {
		return bus.RetryAfter(err, time.Second)
	}
	if err != nil {
		return bus.Retryable(err)
	}
	return c.send(ctx, acct)
}

// account returns the account the command is sent through, or the reason
// and message of the failure when its tenant or account cannot send.
func (c *call[C]) account() (acct Account, reason, msg string) {
	s := c.s
	if t, ok := s.tenants.Tenant(c.tenant); !ok || t.Suspended {
		state := "unknown"
		if ok {
			state = "suspended"
		}
		return Account{}, ReasonTenant, "tenant " + c.tenant + " is " + state
	}
	acct, err := s.accounts.Resolve(c.tenant, c.cmd.GetAccount())
	if err != nil {
		return Account{}, ReasonInvalidCommand, AsProviderError(err).Error()
	}
	return acct, "", ""
}

// wait takes a token of the tenant's and of the account's bucket; its error
// is the shutdown's.
func (c *call[C]) wait(ctx context.Context, acct Account) error {
	s := c.s
	waited, err := s.limits.wait(ctx, c.tenant, acct.Key)
	s.metrics.rateWait.WithLabelValues(s.ch.Name).Observe(waited.Seconds())
	if err != nil {
		return err
	}
	c.waited = true
	return nil
}

// claim writes the sending record of a new attempt over the revision read
// (0: none): only the writer of that revision sends. errConflict when
// another writer came first, or, over no revision, when a record exists.
func (c *call[C]) claim(ctx context.Context) error {
	s := c.s
	start := s.now()
	claim := c.rec
	claim.Tenant, claim.ID, claim.State = c.tenant, c.cmd.GetId(), StateSending
	claim.Attempts++
	claim.Provider = s.provider.Name()
	claim.StartedAt, claim.UpdatedAt = start, start
	rev, err := s.states.put(ctx, c.key, claim, c.rev)
	if err != nil {
		return err
	}
	c.rec, c.rev = claim, rev
	return nil
}

// send makes the attempt claimed, then records and reports its answer.
func (c *call[C]) send(ctx context.Context, acct Account) error {
	s := c.s
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.SendTimeout)
	receipt, serr := s.provider.Send(sctx, c.cmd, acct)
	cancel()
	// Measured from the claim, as the attempt's lease is.
	s.metrics.duration.WithLabelValues(s.ch.Name, s.provider.Name()).Observe(time.Since(c.rec.StartedAt).Seconds())
	if f := s.cfg.Faults; f != nil && f.AfterAnswer != nil && f.AfterAnswer(ctx, c.cmd.GetId()) {
		return context.Canceled
	}

	if serr == nil {
		return c.sent(ctx, receipt)
	}
	pe := AsProviderError(serr)
	if !pe.Retryable {
		reason := ReasonRejected
		if pe.Code == "invalid_command" || pe.Code == "invalid_account" {
			reason = ReasonInvalidCommand
		}
		return c.fail(ctx, reason, pe.Error())
	}
	if c.rec.Attempts >= s.cfg.MaxAttempts {
		return c.fail(ctx, ReasonExhausted, fmt.Sprintf("%d attempts; last: %s", c.rec.Attempts, pe.Error()))
	}
	retry := c.rec
	retry.State, retry.Error, retry.UpdatedAt = StateRetry, pe.Error(), s.now()
	if _, err := s.states.put(context.WithoutCancel(ctx), c.key, retry, c.rev); err != nil {
		// The sending record stays: the redelivery waits out its lease and
		// then follows the unknown-outcome policy, though this attempt
		// certainly failed. Rare enough (the bus failed right now) to log.
		s.log.Warn("could not record a failed attempt", "tenant", c.tenant, "command_id", c.cmd.GetId(), "err", err)
	}
	delay := s.cfg.backoff(c.rec.Attempts, pe.RetryAfter)
	s.metrics.outcome(s.ch.Name, s.provider.Name(), "retry")
	s.log.Info("send will be retried", "tenant", c.tenant, "command_id", c.cmd.GetId(), "attempt", c.rec.Attempts, "delay", delay.String(), "err", pe.Error())
	return bus.RetryAfter(pe, delay)
}

// sent records the provider's acceptance, then publishes the outcome.
func (c *call[C]) sent(ctx context.Context, r Receipt) error {
	s := c.s
	rec := c.rec
	rec.State, rec.ProviderID, rec.Status, rec.Error, rec.UpdatedAt = StateSent, r.ProviderID, r.Status, "", s.now()
	if err := c.record(ctx, rec); err != nil {
		return err
	}
	s.metrics.outcome(s.ch.Name, rec.Provider, "sent")
	if f := s.cfg.Faults; f != nil && f.AfterRecord != nil && f.AfterRecord(ctx, c.cmd.GetId()) {
		return context.Canceled
	}
	return c.publishOutcome(ctx)
}

// fail records that the command will not be sent, publishes the failed
// event and returns the permanent error that dead-letters the command.
func (c *call[C]) fail(ctx context.Context, reason, msg string) error {
	s := c.s
	rec := c.rec
	rec.Tenant, rec.ID = c.tenant, c.cmd.GetId()
	if rec.Provider == "" {
		rec.Provider = s.provider.Name()
	}
	rec.State, rec.Reason, rec.Error, rec.UpdatedAt = StateFailed, reason, msg, s.now()
	if err := c.record(ctx, rec); err != nil {
		return err
	}
	s.metrics.outcome(s.ch.Name, rec.Provider, "failed")
	if f := s.cfg.Faults; f != nil && f.AfterRecord != nil && f.AfterRecord(ctx, c.cmd.GetId()) {
		return context.Canceled
	}
	if err := c.publishOutcome(ctx); err != nil {
		return err
	}
	return bus.Permanent(errors.New(reason + ": " + msg))
}

// record writes rec over the revision read or claimed. The write must not
// be lost to a shutdown that starts now: the provider has answered.
func (c *call[C]) record(ctx context.Context, rec Record) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var rev uint64
		if rev, err = c.s.states.put(wctx, c.key, rec, c.rev); err == nil {
			c.rec, c.rev = rec, rev
			return nil
		}
		if errors.Is(err, errConflict) || wctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return bus.Retryable(fmt.Errorf("record %s of %s command %s: %w", rec.State, c.s.ch.Name, c.cmd.GetId(), err))
}

// publishOutcome publishes the event of the recorded outcome:
// {channel}.sent (or .captured) or {channel}.failed. Its id is derived from
// the command's, so publishing it again stores nothing twice. The failed
// event of a replay carries the replay marker in its id, or it would be
// dropped as a duplicate of the failed event of the attempt replayed; a
// command is sent once, so its sent event needs no marker.
func (c *call[C]) publishOutcome(ctx context.Context) error {
	s := c.s
	rec := c.rec
	o := c.cmd.GetOrigin()
	kind := "failed"
	if rec.State == StateSent {
		kind = "sent"
		if rec.Provider == CaptureProvider {
			kind = "captured"
		}
	}
	payload := map[string]any{
		"command_id": c.cmd.GetId(),
		"event_id":   o.GetEventId(),
		"flow":       o.GetFlow(),
		"node":       o.GetNode(),
		"provider":   rec.Provider,
		"attempts":   rec.Attempts,
	}
	if rec.ProviderID != "" {
		payload["provider_message_id"] = rec.ProviderID
	}
	if rec.Status != "" {
		payload["provider_status"] = rec.Status
	}
	if rec.State == StateFailed {
		payload["reason"] = rec.Reason
		payload["error"] = rec.Error
	}
	if rec.Replay != "" {
		payload["replay"] = rec.Replay
	}
	if s.ch.Summary != nil {
		for k, v := range s.ch.Summary(c.cmd) {
			payload[k] = v
		}
	}
	if kind == "captured" {
		payload["message"] = json.RawMessage(mustProtoJSON(c.cmd))
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return bus.Permanent(err)
	}
	md := map[string]string{
		event.MetaCommandID:     c.cmd.GetId(),
		event.MetaOriginEventID: o.GetEventId(),
	}
	if rec.ProviderID != "" {
		md[event.MetaProviderMessageID] = rec.ProviderID
	}
	ev := &eventsv1.Event{
		Id:          outcomeID(c.cmd.GetId(), kind, rec.Replay),
		EventType:   s.ch.Name + "." + kind,
		Source:      "greentic/" + s.ch.Name + "-sender",
		Timestamp:   rec.UpdatedAt.UnixMilli(),
		Payload:     body,
		Metadata:    md,
		Tenant:      c.tenant,
		Traceparent: event.ChildTraceparent(o.GetTraceparent()),
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.pub.PublishEvent(pctx, ev); err != nil {
		return bus.Retryable(fmt.Errorf("publish %s: %w", ev.EventType, err))
	}
	return nil
}

// outcomeID is {command id}:{kind}, or a digest of it when that is too
// long for an event id; a failed event of a replay is followed by
// /replay/{marker}.
func outcomeID(id, kind, replay string) string {
	if kind != "failed" {
		replay = ""
	}
	s := bus.WithReplay(id+":"+kind, replay)
	if event.ValidateID(s) == nil {
		return s
	}
	sum := sha256.Sum256([]byte(id))
	return bus.WithReplay("cmd-"+hex.EncodeToString(sum[:16])+":"+kind, replay)
}

func mustProtoJSON(m proto.Message) []byte {
	b, err := event.ProtoJSON(m)
	if err != nil {
		return []byte("null")
	}
	return b
}

type metrics struct {
	outcomes *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rateWait *prometheus.HistogramVec
}

func (m *metrics) outcome(channel, provider, outcome string) {
	m.outcomes.WithLabelValues(channel, provider, outcome).Inc()
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_sender_commands_total",
			Help: "Commands handled by the senders, by outcome: sent, retry, failed, unknown (outcome unknown after a crash), duplicate (already handled), malformed.",
		}, []string{"channel", "provider", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greentic_sender_send_duration_seconds",
			Help:    "Duration of one call to the provider.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"channel", "provider"}),
		rateWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greentic_sender_rate_limit_wait_seconds",
			Help:    "Time a command waited for its tenant's and account's token buckets.",
			Buckets: []float64{0, .01, .1, .5, 1, 5, 30},
		}, []string{"channel"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.outcomes, err = bus.Register(reg, m.outcomes); err != nil {
		return nil, err
	}
	if m.duration, err = bus.Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.rateWait, err = bus.Register(reg, m.rateWait); err != nil {
		return nil, err
	}
	return m, nil
}
