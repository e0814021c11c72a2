package adminapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Dead letters are read with the stream's message-get API, one message at
// a time by sequence and subject filter: listing, replaying or purging
// creates no consumer on the dead-letter stream, so an operator browsing it
// leaves nothing behind and nothing that would count as delivered.
//
// Semantics of the filter:
//   - tenant and stage select by the dead letter's subject (on the server);
//   - event_type matches a letter's event_type: the event type of a letter
//     of the flow stage (with ".result" for a flow result), the command id
//     of a sender's letter; a sender's letter also matches the event type
//     of the flow run that issued the command (its origin), so one filter
//     selects everything an event type left behind;
//   - since (inclusive) and until (exclusive) bound the time the message
//     failed (Greentic-Dlq-Failed-At, or the time the letter was stored);
//   - max_sequence bounds the letter's stream sequence (inclusive). Unlike
//     a time, which another machine's clock wrote, it tells exactly which
//     letters were stored when a replay or purge started, so a repeated
//     call given the first one's last_sequence leaves alone the letters
//     stored since, such as replays that failed again.

const (
	// maxReplayRate bounds the replays per second a call may ask for.
	maxReplayRate = 10000
	// maxDeadLetterScan bounds the letters one List call examines: with a
	// filter on event type or time, most may not match, and a page is cut
	// short (next_page_token set) rather than reading the whole stream.
	maxDeadLetterScan = 10000
	// maxDeadLetterMargin is the most a replay or purge by filter keeps of
	// its call's deadline to answer with what it did.
	maxDeadLetterMargin = 2 * time.Second
)

type deadLetterServer struct {
	adminv1.UnimplementedDeadLetterServiceServer
	*Server
}

// ListDeadLetters lists the dead letters matching the filter, oldest first,
// without their original message. Tenant-scoped callers see only their
// tenant's. A page may hold fewer than page_size letters (even none) while
// next_page_token is set, when the scan limit was reached first.
func (s *deadLetterServer) ListDeadLetters(ctx context.Context, req *adminv1.ListDeadLettersRequest) (*adminv1.ListDeadLettersResponse, error) {
	f, err := s.letterFilter(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	seq := uint64(1)
	if req.GetPageToken() != "" {
		if seq, err = parseSeqToken(req.GetPageToken()); err != nil {
			return nil, err
		}
	}
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	res := &adminv1.ListDeadLettersResponse{}
	for scanned := 0; ; scanned++ {
		if scanned == maxDeadLetterScan {
			res.NextPageToken = seqToken(seq)
			break
		}
		m, err := nextDeadLetter(ctx, st, seq, f.subject)
		if err != nil {
			return nil, storeErr("dead letters", err)
		}
		if m == nil || f.maxSeq != 0 && m.Sequence > f.maxSeq {
			break
		}
		seq = m.Sequence + 1
		l, ok := s.readLetter(m)
		if !ok || !f.match(l) {
			continue
		}
		if len(res.DeadLetters) == size {
			res.NextPageToken = seqToken(m.Sequence)
			break
		}
		res.DeadLetters = append(res.DeadLetters, l.view(false))
	}
	return res, nil
}

// GetDeadLetter returns one dead letter with its original message. A
// tenant-scoped caller must name its tenant; a letter of another tenant is
// NotFound, as if it did not exist.
func (s *deadLetterServer) GetDeadLetter(ctx context.Context, req *adminv1.GetDeadLetterRequest) (*adminv1.GetDeadLetterResponse, error) {
	if req.GetSequence() == 0 {
		return nil, required("sequence")
	}
	tenant := req.GetTenant()
	if tenant == "" && !principal(ctx).Operator() {
		return nil, required("tenant")
	}
	if tenant != "" {
		if err := authorize(ctx, "tenant", tenant); err != nil {
			return nil, err
		}
	}
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	l, err := s.letterAt(ctx, st, req.GetSequence(), tenant)
	if err != nil {
		return nil, err
	}
	return &adminv1.GetDeadLetterResponse{DeadLetter: l.view(true)}, nil
}

// ReplayDeadLetters republishes one dead letter (sequence) or every one
// matching the filter, oldest first, at most rate per second, to its
// original subject (see replay). With purge, each letter is deleted once
// its republish is stored.
//
// A replay by filter covers the letters stored when the call starts, up to
// filter.max_sequence, and answers the highest sequence it covered as
// last_sequence (a replayed message that fails again is a new letter, past
// it, and not replayed again by the same call). It stops a little before
// the call's deadline: it then answers OK with what it replayed so far and
// complete false. Repeating the call with last_sequence as
// filter.max_sequence goes on from there with purge, and without purge
// republishes what was done already, which the bus drops as duplicates
// within its duplicate window.
// Letters whose original subject is not one they may be replayed to are
// skipped (and logged); named by sequence, such a letter is
// FailedPrecondition.
func (s *deadLetterServer) ReplayDeadLetters(ctx context.Context, req *adminv1.ReplayDeadLettersRequest) (*adminv1.ReplayDeadLettersResponse, error) {
	if err := oneDeadLetterSelector(req.GetSequence(), req.GetFilter()); err != nil {
		return nil, err
	}
	r := req.GetRate()
	if math.IsNaN(r) || r < 0 || r > maxReplayRate {
		return nil, invalid("rate", fmt.Sprintf("must be between 0 (the default, %g per second) and %d per second", s.cfg.ReplayRate, maxReplayRate))
	}
	if r == 0 {
		r = s.cfg.ReplayRate
	}
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	by := principal(ctx).Name
	if seq := req.GetSequence(); seq != 0 {
		l, err := s.letterAt(ctx, st, seq, principal(ctx).Tenant)
		if err != nil {
			return nil, err
		}
		if err := s.replay(ctx, ctx, st, l, req.GetPurge()); err != nil {
			return nil, deadLetterErr(fmt.Sprintf("replay dead letter %d", seq), err)
		}
		s.log.Info("dead letter replayed", "sequence", seq, "tenant", l.tenant, "stage", l.stage, "purge", req.GetPurge(), "by", by)
		return &adminv1.ReplayDeadLettersResponse{Replayed: 1, Sequences: []uint64{seq}, Complete: true, LastSequence: seq}, nil
	}
	f, err := s.letterFilter(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	work, cancel := beforeDeadline(ctx)
	defer cancel()
	lim := rate.NewLimiter(rate.Limit(r), 1)
	res := &adminv1.ReplayDeadLettersResponse{}
	skipped := 0
	res.LastSequence, err = s.eachDeadLetter(ctx, work, st, f, func(l letter) error {
		if err := lim.Wait(work); err != nil {
			// The next replay would come after the deadline.
			return errStopped
		}
		err := s.replay(ctx, work, st, l, req.GetPurge())
		var bad *unreplayableError
		if errors.As(err, &bad) {
			skipped++
			s.log.Warn("dead letter not replayed", "sequence", l.seq, "tenant", l.tenant, "stage", l.stage, "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		res.Replayed++
		res.Sequences = append(res.Sequences, l.seq)
		return nil
	})
	stopped := err != nil && ctx.Err() == nil && (work.Err() != nil || errors.Is(err, errStopped))
	s.log.Info("dead letters replayed", "replayed", res.Replayed, "skipped", skipped, "stopped_at_deadline", stopped,
		"filter_tenant", f.tenant, "filter_stage", f.stage, "last_sequence", res.LastSequence, "rate", r, "purge", req.GetPurge(), "by", by)
	if err != nil && !stopped {
		return nil, deadLetterErr(fmt.Sprintf("replay dead letters (%d replayed before the error)", res.Replayed), err)
	}
	res.Complete = !stopped
	return res, nil
}

// PurgeDeadLetters deletes one dead letter (sequence) or every one matching
// the filter. Like a replay by filter it covers the letters stored when the
// call starts, up to filter.max_sequence, answers the highest sequence it
// covered as last_sequence, and stops a little before the deadline,
// answering OK with the number purged and complete false; repeat it
// (with last_sequence as filter.max_sequence) to go on.
func (s *deadLetterServer) PurgeDeadLetters(ctx context.Context, req *adminv1.PurgeDeadLettersRequest) (*adminv1.PurgeDeadLettersResponse, error) {
	if err := oneDeadLetterSelector(req.GetSequence(), req.GetFilter()); err != nil {
		return nil, err
	}
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	by := principal(ctx).Name
	if seq := req.GetSequence(); seq != 0 {
		l, err := s.letterAt(ctx, st, seq, principal(ctx).Tenant)
		if err != nil {
			return nil, err
		}
		if err := st.DeleteMsg(ctx, seq); err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, notFound("dead letter %d", seq)
			}
			return nil, deadLetterErr(fmt.Sprintf("purge dead letter %d", seq), err)
		}
		s.log.Info("dead letter purged", "sequence", seq, "tenant", l.tenant, "stage", l.stage, "by", by)
		return &adminv1.PurgeDeadLettersResponse{Purged: 1, Complete: true, LastSequence: seq}, nil
	}
	f, err := s.letterFilter(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	work, cancel := beforeDeadline(ctx)
	defer cancel()
	res := &adminv1.PurgeDeadLettersResponse{}
	res.LastSequence, err = s.eachDeadLetter(ctx, work, st, f, func(l letter) error {
		if err := st.DeleteMsg(work, l.seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return err
		}
		res.Purged++
		return nil
	})
	stopped := err != nil && ctx.Err() == nil && work.Err() != nil
	s.log.Info("dead letters purged", "purged", res.Purged, "stopped_at_deadline", stopped,
		"filter_tenant", f.tenant, "filter_stage", f.stage, "last_sequence", res.LastSequence, "by", by)
	if err != nil && !stopped {
		return nil, deadLetterErr(fmt.Sprintf("purge dead letters (%d purged before the error)", res.Purged), err)
	}
	res.Complete = !stopped
	return res, nil
}

// errStopped ends a replay by filter whose next replay would come after
// the call's deadline.
var errStopped = errors.New("stopped before the deadline")

// oneDeadLetterSelector checks that a replay or purge names either one
// letter or a filter.
func oneDeadLetterSelector(seq uint64, f *adminv1.DeadLetterFilter) error {
	switch {
	case seq != 0 && f != nil:
		return invalid("sequence", "give either a sequence or a filter, not both")
	case seq == 0 && f == nil:
		return invalid("sequence", "required: give a sequence or a filter (an empty filter selects every letter you may see)")
	}
	return nil
}

// eachDeadLetter calls fn for every letter matching f, oldest first, up to
// the last one stored when it starts or f's max sequence, whichever is
// lower: that sequence is last. It stops at fn's first error, or when work
// ends (returning work's error); reads use work too.
func (s *deadLetterServer) eachDeadLetter(ctx, work context.Context, st jetstream.Stream, f letterFilter, fn func(letter) error) (last uint64, err error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	last = info.State.LastSeq
	if f.maxSeq != 0 {
		last = min(last, f.maxSeq)
	}
	for seq := uint64(1); seq <= last; {
		m, err := nextDeadLetter(work, st, seq, f.subject)
		if err != nil {
			return last, err
		}
		if m == nil || m.Sequence > last {
			return last, nil
		}
		seq = m.Sequence + 1
		l, ok := s.readLetter(m)
		if !ok || !f.match(l) {
			continue
		}
		if err := fn(l); err != nil {
			return last, err
		}
	}
	return last, nil
}

// replay republishes l to its original subject: the original body and
// headers, without the dead letter's Greentic-Dlq-* headers (and without
// any Nats-* header, which the server would take as an instruction), with
// Greentic-Replay set to the letter's replay marker and the message id
// bus.ReplayMsgID. Greentic-Flows stays: the executor runs only the flows
// that failed. Replaying a letter twice stores it once (within the
// duplicate window). With purge the letter is then deleted, using ctx
// rather than work so that a stored republish is not left behind because
// the work's time ran out in between.
func (s *deadLetterServer) replay(ctx, work context.Context, st jetstream.Stream, l letter, purge bool) error {
	subject, err := s.replayTarget(l)
	if err != nil {
		return err
	}
	marker := bus.ReplayMarker(l.seq)
	h := nats.Header{}
	for k, v := range l.msg.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "greentic-dlq-") || strings.HasPrefix(lk, "nats-") || strings.EqualFold(k, bus.HeaderReplay) {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	h.Set(bus.HeaderReplay, marker)
	origID := l.msg.Header.Get(bus.HeaderDLQOriginalMsgID)
	if origID == "" {
		stream, seq := l.msg.Header.Get(bus.HeaderDLQOriginalStream), l.msg.Header.Get(bus.HeaderDLQOriginalSeq)
		if stream == "" || seq == "" {
			stream, seq = s.topo().DLQStream(), strconv.FormatUint(l.seq, 10)
		}
		origID = "dlq:" + stream + ":" + seq
	}
	pub, err := s.rt.Publisher.Publish(work, subject, bus.ReplayMsgID(origID, marker), l.msg.Data, h)
	if err != nil {
		return err
	}
	s.log.Debug("dead letter republished", "sequence", l.seq, "subject", subject, "stream", pub.Stream, "stream_seq", pub.Sequence, "duplicate", pub.Duplicate)
	if purge {
		if err := st.DeleteMsg(ctx, l.seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("delete replayed dead letter %d: %w", l.seq, err)
		}
	}
	return nil
}

// unreplayableError is a dead letter whose original subject it may not be
// replayed to.
type unreplayableError struct {
	seq     uint64
	subject string
	why     string
}

func (e *unreplayableError) Error() string {
	return fmt.Sprintf("dead letter %d cannot be replayed to %q: %s", e.seq, e.subject, e.why)
}

func (e *unreplayableError) GRPCStatus() *status.Status {
	return status.New(codes.FailedPrecondition, e.Error())
}

// replayTarget is the original subject of l, checked: the headers of a
// dead letter are the original message's, so they are not trusted to name
// where it goes. The subject must be an event or flow result subject (stage
// flow) or the command subject of the letter's channel (senders), of this
// environment and of the letter's own tenant, exactly as package bus builds
// it.
func (s *deadLetterServer) replayTarget(l letter) (string, error) {
	orig := l.msg.Header.Get(bus.HeaderDLQOriginalSubject)
	bad := func(why string) (string, error) {
		return "", &unreplayableError{seq: l.seq, subject: orig, why: why}
	}
	if orig == "" {
		return bad("the dead letter names no original subject")
	}
	subj, err := bus.ParseSubject(orig)
	if err != nil {
		return bad(err.Error())
	}
	env := s.topo().Env
	if subj.Env != env || subj.Tenant != l.tenant {
		return bad(fmt.Sprintf("not a subject of tenant %s in env %s", l.tenant, env))
	}
	var want string
	switch {
	case l.stage == bus.StageFlow && subj.Kind == bus.KindEvent:
		want, err = bus.EventSubject(env, l.tenant, subj.Type)
	case l.stage == bus.StageFlow && subj.Kind == bus.KindResult:
		want, err = bus.ResultSubject(env, l.tenant, subj.Type)
	case l.stage != bus.StageFlow && subj.Kind == bus.KindOutbound && subj.Type == l.stage:
		want, err = bus.OutboundSubject(env, l.tenant, subj.Type)
	default:
		return bad(fmt.Sprintf("not a subject the %s stage consumes", l.stage))
	}
	if err != nil {
		return bad(err.Error())
	}
	if want != orig {
		return bad("not a subject the bus publishes to")
	}
	return orig, nil
}

// letterFilter is a checked DeadLetterFilter.
type letterFilter struct {
	tenant, stage string
	// subject selects by tenant and stage on the server.
	subject      string
	eventType    string
	since, until time.Time
	// maxSeq is the highest stream sequence selected; 0 is no bound.
	maxSeq uint64
}

// letterFilter checks f (nil selects everything) and limits it to the
// caller's tenant.
func (s *deadLetterServer) letterFilter(ctx context.Context, f *adminv1.DeadLetterFilter) (letterFilter, error) {
	tenant, err := scopeTenant(ctx, "filter.tenant", f.GetTenant())
	if err != nil {
		return letterFilter{}, err
	}
	out := letterFilter{tenant: tenant, stage: f.GetStage(), eventType: f.GetEventType(), maxSeq: f.GetMaxSequence()}
	if out.stage != "" && !slices.Contains(bus.DeadLetterStages, out.stage) {
		return letterFilter{}, invalid("filter.stage", fmt.Sprintf("unknown stage %q: use one of %s", out.stage, strings.Join(bus.DeadLetterStages, ", ")))
	}
	if out.eventType != "" {
		if err := event.ValidateID(out.eventType); err != nil {
			return letterFilter{}, invalid("filter.event_type", "must be an event type or a command id: printable ASCII without spaces, at most 256 characters")
		}
	}
	if f.GetSince() != nil {
		if err := f.GetSince().CheckValid(); err != nil {
			return letterFilter{}, invalid("filter.since", err.Error())
		}
		out.since = f.GetSince().AsTime()
	}
	if f.GetUntil() != nil {
		if err := f.GetUntil().CheckValid(); err != nil {
			return letterFilter{}, invalid("filter.until", err.Error())
		}
		out.until = f.GetUntil().AsTime()
	}
	if !out.since.IsZero() && !out.until.IsZero() && out.since.After(out.until) {
		return letterFilter{}, invalid("filter.since", "is after filter.until")
	}
	if out.subject, err = bus.DLQSelectFilter(s.topo().Env, out.tenant, out.stage); err != nil {
		return letterFilter{}, invalidErr("filter", err)
	}
	return out, nil
}

// match applies the parts of the filter the server's subject filter does
// not.
func (f letterFilter) match(l letter) bool {
	if !f.since.IsZero() && l.failed.Before(f.since) {
		return false
	}
	if !f.until.IsZero() && !l.failed.Before(f.until) {
		return false
	}
	if f.eventType == "" || l.eventType == f.eventType {
		return true
	}
	if l.stage == bus.StageFlow {
		return false
	}
	cmd, ok := l.decode().(senderCommand)
	return ok && cmd.GetOrigin().GetEventType() == f.eventType
}

// senderCommand is what the commands of the senders have in common.
type senderCommand interface {
	proto.Message
	GetId() string
	GetOrigin() *eventsv1.CommandOrigin
}

// letter is a dead letter read from the stream.
type letter struct {
	msg           *jetstream.RawStreamMsg
	seq           uint64
	tenant, stage string
	failed        time.Time
	eventType     string
}

// readLetter reads the parts of a dead letter that come from its subject
// and headers; ok is false for a message that is no dead letter of this
// environment.
func (s *deadLetterServer) readLetter(m *jetstream.RawStreamMsg) (letter, bool) {
	subj, err := bus.ParseSubject(m.Subject)
	if err != nil || subj.Kind != bus.KindDLQ || subj.Env != s.topo().Env {
		return letter{}, false
	}
	l := letter{msg: m, seq: m.Sequence, tenant: subj.Tenant, stage: subj.Type, failed: m.Time}
	if t, err := time.Parse(time.RFC3339Nano, m.Header.Get(bus.HeaderDLQFailedAt)); err == nil {
		l.failed = t
	}
	if l.stage == bus.StageFlow {
		if o, err := bus.ParseSubject(m.Header.Get(bus.HeaderDLQOriginalSubject)); err == nil {
			switch o.Kind {
			case bus.KindEvent:
				l.eventType = o.Type
			case bus.KindResult:
				l.eventType = o.Type + "." + bus.ResultSuffix
			}
		}
	} else {
		l.eventType = m.Header.Get(bus.HeaderCommandID)
		if l.eventType == "" {
			if cmd, ok := l.decode().(senderCommand); ok {
				l.eventType = cmd.GetId()
			}
		}
	}
	return l, true
}

// decode decodes the original message: an Event or FlowResult (stage
// flow, by the original subject) or the command of a sender's channel;
// nil if it does not decode.
func (l letter) decode() proto.Message {
	var m proto.Message
	switch l.stage {
	case bus.StageFlow:
		m = &eventsv1.Event{}
		if o, err := bus.ParseSubject(l.msg.Header.Get(bus.HeaderDLQOriginalSubject)); err == nil && o.Kind == bus.KindResult {
			m = &eventsv1.FlowResult{}
		}
	case bus.ChannelEmail:
		m = &eventsv1.EmailCommand{}
	case bus.ChannelSMS:
		m = &eventsv1.SmsCommand{}
	case bus.ChannelWebhook:
		m = &eventsv1.WebhookCommand{}
	default:
		return nil
	}
	if err := proto.Unmarshal(l.msg.Data, m); err != nil {
		return nil
	}
	return m
}

// originalJSON is the original message as JSON for people: an Event in
// its JSON view (payload embedded as JSON), a FlowResult as
// event.ResultJSON (output embedded as JSON), a command in protojson with
// the .proto field names; nil when it does not decode.
func (l letter) originalJSON() []byte {
	var (
		b   []byte
		err error
	)
	switch m := l.decode().(type) {
	case nil:
		return nil
	case *eventsv1.Event:
		b, err = json.Marshal(event.View(m))
	case *eventsv1.FlowResult:
		b, err = event.ResultJSON(m)
	default:
		b, err = event.ProtoJSON(m)
	}
	if err != nil {
		return nil
	}
	return b
}

// view is the API form of l; full adds the original message.
func (l letter) view(full bool) *adminv1.DeadLetter {
	h := l.msg.Header
	d := &adminv1.DeadLetter{
		Sequence:        l.seq,
		Tenant:          l.tenant,
		Stage:           l.stage,
		Reason:          h.Get(bus.HeaderDLQReason),
		FailedTime:      timestamppb.New(l.failed),
		OriginalSubject: h.Get(bus.HeaderDLQOriginalSubject),
		OriginalMsgId:   h.Get(bus.HeaderDLQOriginalMsgID),
		EventType:       l.eventType,
	}
	d.Permanent, _ = strconv.ParseBool(h.Get(bus.HeaderDLQPermanent))
	if n, err := strconv.ParseInt(h.Get(bus.HeaderDLQAttempts), 10, 32); err == nil {
		d.Attempts = int32(n)
	}
	if full {
		d.Original = l.msg.Data
		d.OriginalJson = l.originalJSON()
	}
	return d
}

// dlqStream opens the dead-letter stream.
func (s *deadLetterServer) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.rt.JS.Stream(ctx, s.topo().DLQStream())
	if err != nil {
		return nil, deadLetterErr("dead-letter stream "+s.topo().DLQStream(), err)
	}
	return st, nil
}

// letterAt reads the dead letter at seq; tenant, when set, is the only
// tenant whose letter may be returned. Anything else is NotFound, so a
// tenant cannot tell another tenant's letter from a missing one.
func (s *deadLetterServer) letterAt(ctx context.Context, st jetstream.Stream, seq uint64, tenant string) (letter, error) {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return letter{}, notFound("dead letter %d", seq)
	}
	if err != nil {
		return letter{}, deadLetterErr(fmt.Sprintf("dead letter %d", seq), err)
	}
	l, ok := s.readLetter(m)
	if !ok || tenant != "" && l.tenant != tenant {
		return letter{}, notFound("dead letter %d", seq)
	}
	return l, nil
}

// nextDeadLetter is the first message at or after seq on a subject
// matching filter; nil when there is none.
func nextDeadLetter(ctx context.Context, st jetstream.Stream, seq uint64, filter string) (*jetstream.RawStreamMsg, error) {
	m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

// deadLetterErr maps a failure to read or write the streams: the call's
// deadline or cancellation, an error that carries its own status
// (unreplayableError), or Unavailable.
func deadLetterErr(what string, err error) error {
	var bad *unreplayableError
	if errors.As(err, &bad) {
		return bad.GRPCStatus().Err()
	}
	return storeErr(what, err)
}

// beforeDeadline is ctx ending a little before its deadline (a tenth of
// the time left, at most maxDeadLetterMargin), so that a long replay or
// purge stops in time to answer with what it did.
func beforeDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(d)/10, maxDeadLetterMargin)
	return context.WithDeadline(ctx, d.Add(-margin))
}

// seqToken is the page token starting at a stream sequence; opaque to
// clients.
func seqToken(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("dlq:" + strconv.FormatUint(seq, 10)))
}

func parseSeqToken(tok string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), "dlq:"); ok {
			if seq, err := strconv.ParseUint(rest, 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	return 0, invalid("page_token", "not a token returned by ListDeadLetters")
}
