package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
)

func dlqCommand() *command {
	return &command{
		name: "dlq", summary: "inspect, replay and purge dead letters",
		subs: []*command{
			{name: "list", summary: "list dead letters, oldest first", setup: dlqList},
			{name: "show", args: "SEQ", summary: "show a dead letter with its reason and original message", minArgs: 1, maxArgs: 1, setup: dlqShow},
			{name: "replay", args: "[SEQ]", summary: "republish one dead letter, or --all matching the filter flags (rate-limited)", maxArgs: 1, setup: dlqReplay},
			{name: "purge", args: "[SEQ]", summary: "remove one dead letter, or --all matching the filter flags", maxArgs: 1, setup: dlqPurge},
		},
	}
}

// dlqFilter holds the filter flags.
type dlqFilter struct {
	tenant, stage, eventType, since, until string
}

func (f *dlqFilter) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tenant, "tenant", "", "only this tenant's dead letters")
	fs.StringVar(&f.stage, "stage", "", "only this stage: flow, email, sms or webhook")
	fs.StringVar(&f.eventType, "type", "", "only this event type (stage flow) or command id (senders)")
	fs.StringVar(&f.since, "since", "", "failed at or after: RFC 3339 time, or a duration ago (90m, 2h, 3d)")
	fs.StringVar(&f.until, "until", "", "failed before: RFC 3339 time, or a duration ago")
}

func (f *dlqFilter) empty() bool { return *f == dlqFilter{} }

func (f *dlqFilter) proto(now time.Time) (*adminv1.DeadLetterFilter, error) {
	out := &adminv1.DeadLetterFilter{Tenant: f.tenant, Stage: f.stage, EventType: f.eventType}
	var err error
	if out.Since, err = parseWhen("since", f.since, now); err != nil {
		return nil, err
	}
	if out.Until, err = parseWhen("until", f.until, now); err != nil {
		return nil, err
	}
	return out, nil
}

// parseWhen reads an RFC 3339 time or a duration before now ("90m", "2h",
// "3d"); "" is no bound.
func parseWhen(flagName, s string, now time.Time) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return timestamppb.New(t), nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return nil, &usageError{msg: fmt.Sprintf("--%s %q: want an RFC 3339 time or a duration ago such as 90m, 2h or 3d", flagName, s)}
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return nil, &usageError{msg: fmt.Sprintf("--%s %q: want an RFC 3339 time or a duration ago such as 90m, 2h or 3d", flagName, s)}
		}
	}
	if d < 0 {
		return nil, &usageError{msg: fmt.Sprintf("--%s %q: a duration ago must not be negative", flagName, s)}
	}
	return timestamppb.New(now.Add(-d)), nil
}

func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, &usageError{msg: fmt.Sprintf("SEQ %q: want the sequence number of a dead letter (see dlq list)", s)}
	}
	return n, nil
}

func dlqList(fs *flag.FlagSet) runFunc {
	var f dlqFilter
	f.register(fs)
	return func(ctx context.Context, c *cli, _ []string) error {
		filter, err := f.proto(time.Now())
		if err != nil {
			return err
		}
		all, err := listAll(func(tok string) ([]*adminv1.DeadLetter, string, error) {
			res, err := c.dlq.ListDeadLetters(ctx, &adminv1.ListDeadLettersRequest{Filter: filter, PageToken: tok})
			return res.GetDeadLetters(), res.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		if c.jsonOut() {
			return printProtoList(c, all)
		}
		t := c.table("SEQ", "TENANT", "STAGE", "TYPE", "FAILED", "ATTEMPTS", "PERMANENT", "REASON")
		for _, d := range all {
			t.row(d.GetSequence(), d.GetTenant(), d.GetStage(), d.GetEventType(), formatTime(d.GetFailedTime()), d.GetAttempts(), d.GetPermanent(), truncate(d.GetReason(), 80))
		}
		return t.flush()
	}
}

// truncate shortens s to n runes for a table column.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func dlqShow(fs *flag.FlagSet) runFunc {
	var tenantID string
	fs.StringVar(&tenantID, "tenant", "", "tenant of the dead letter (required with a tenant-scoped token)")
	return func(ctx context.Context, c *cli, args []string) error {
		seq, err := parseSeq(args[0])
		if err != nil {
			return err
		}
		res, err := c.dlq.GetDeadLetter(ctx, &adminv1.GetDeadLetterRequest{Sequence: seq, Tenant: tenantID})
		if err != nil {
			return err
		}
		d := res.GetDeadLetter()
		if c.jsonOut() {
			return c.printProto(d, "original_json")
		}
		w := c.details()
		w.add("sequence", d.GetSequence())
		w.add("tenant", d.GetTenant())
		w.add("stage", d.GetStage())
		w.add("type", d.GetEventType())
		w.add("failed", formatTime(d.GetFailedTime()))
		w.add("attempts", d.GetAttempts())
		w.add("permanent", d.GetPermanent())
		w.add("reason", d.GetReason())
		w.add("subject", d.GetOriginalSubject())
		w.add("message id", d.GetOriginalMsgId())
		if err := w.flush(); err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, "original:")
		switch {
		case len(d.GetOriginalJson()) > 0:
			writeIndentedJSON(c.stdout, d.GetOriginalJson(), "  ")
		case len(d.GetOriginal()) > 0:
			fmt.Fprintf(c.stdout, "  (%d bytes, not JSON; -o json shows them in base64)\n", len(d.GetOriginal()))
		default:
			fmt.Fprintln(c.stdout, "  -")
		}
		return nil
	}
}

// bulk holds the selection of replay and purge: one SEQ, or --all with
// the filter flags.
type bulk struct {
	all    bool
	filter dlqFilter
}

func (b *bulk) register(fs *flag.FlagSet) {
	fs.BoolVar(&b.all, "all", false, "every dead letter matching the filter flags (all of them without any)")
	b.filter.register(fs)
}

func (b *bulk) selection(args []string) (uint64, *adminv1.DeadLetterFilter, error) {
	switch {
	case b.all && len(args) > 0:
		return 0, nil, &usageError{msg: "give SEQ or --all, not both"}
	case !b.all && len(args) == 0:
		return 0, nil, &usageError{msg: "missing SEQ (or --all with filter flags)"}
	case !b.all && !b.filter.empty():
		// A letter named by SEQ is looked up among those the token may
		// see; the request has no filter to go with it.
		return 0, nil, &usageError{msg: "--tenant, --stage, --type, --since and --until select with --all"}
	}
	if !b.all {
		seq, err := parseSeq(args[0])
		if err != nil {
			return 0, nil, err
		}
		return seq, nil, nil
	}
	filter, err := b.filter.proto(time.Now())
	if err != nil {
		return 0, nil, err
	}
	return 0, filter, nil
}

func dlqReplay(fs *flag.FlagSet) runFunc {
	var b bulk
	var rate float64
	var purge bool
	b.register(fs)
	fs.Float64Var(&rate, "rate", 0, "replays per second (default: the server's, 50)")
	fs.BoolVar(&purge, "purge", false, "remove the replayed dead letters from the dead-letter stream (with --all, calls go on until every letter is replayed)")
	return func(ctx context.Context, c *cli, args []string) error {
		seq, filter, err := b.selection(args)
		if err != nil {
			return err
		}
		if rate < 0 {
			return &usageError{msg: "--rate must not be negative"}
		}
		req := &adminv1.ReplayDeadLettersRequest{Sequence: seq, Filter: filter, Rate: rate, Purge: purge}
		total := &adminv1.ReplayDeadLettersResponse{}
		// Without purge the letters replayed stay where they are, and a
		// second call would begin with them again: only with purge does
		// the next call go on where the last one stopped.
		calls, err := untilComplete(req.GetFilter(), purge, func() (callResult, error) {
			res, err := c.dlq.ReplayDeadLetters(ctx, req)
			if err != nil {
				return callResult{}, err
			}
			total.Replayed += res.GetReplayed()
			total.Sequences = append(total.Sequences, res.GetSequences()...)
			total.Complete = res.GetComplete()
			total.LastSequence = res.GetLastSequence()
			return callResult{res.GetReplayed(), res.GetComplete(), res.GetLastSequence()}, nil
		})
		if calls > 0 {
			if perr := c.printReplayed(total, calls); perr != nil && err == nil {
				err = perr
			}
		}
		if err != nil {
			return err
		}
		switch {
		case total.GetComplete():
			return nil
		case !purge:
			return errors.New("replay stopped at the call's deadline with more dead letters to go: run it again with --purge " +
				"(each call then goes on where the last one stopped; letters replayed already are dropped as duplicates), " +
				"or with a higher --rate or a longer --timeout" + timeoutCap)
		}
		return errors.New("replay stopped at the call's deadline with more dead letters to go, and the last call replayed none: give a higher --rate or a longer --timeout" + timeoutCap)
	}
}

func (c *cli) printReplayed(res *adminv1.ReplayDeadLettersResponse, calls int) error {
	if c.jsonOut() {
		return c.printProto(res)
	}
	seqs := make([]string, 0, len(res.GetSequences()))
	for _, s := range res.GetSequences() {
		seqs = append(seqs, strconv.FormatUint(s, 10))
	}
	msg := "replayed " + plural(int(res.GetReplayed()), "dead letter") + inCalls(calls)
	if len(seqs) > 0 {
		msg += ": " + strings.Join(seqs, " ")
	}
	_, err := fmt.Fprintln(c.stdout, msg)
	return err
}

func dlqPurge(fs *flag.FlagSet) runFunc {
	var b bulk
	b.register(fs)
	return func(ctx context.Context, c *cli, args []string) error {
		seq, filter, err := b.selection(args)
		if err != nil {
			return err
		}
		req := &adminv1.PurgeDeadLettersRequest{Sequence: seq, Filter: filter}
		total := &adminv1.PurgeDeadLettersResponse{}
		calls, err := untilComplete(req.GetFilter(), true, func() (callResult, error) {
			res, err := c.dlq.PurgeDeadLetters(ctx, req)
			if err != nil {
				return callResult{}, err
			}
			total.Purged += res.GetPurged()
			total.Complete = res.GetComplete()
			total.LastSequence = res.GetLastSequence()
			return callResult{res.GetPurged(), res.GetComplete(), res.GetLastSequence()}, nil
		})
		if calls > 0 {
			if perr := c.done(total, "purged %s%s", plural(int(total.GetPurged()), "dead letter"), inCalls(calls)); perr != nil && err == nil {
				err = perr
			}
		}
		if err != nil || total.GetComplete() {
			return err
		}
		return errors.New("purge stopped at the call's deadline with more dead letters to go, and the last call purged none: give a longer --timeout" + timeoutCap)
	}
}

// timeoutCap follows advice to give a longer --timeout.
const timeoutCap = " (the server allows calls up to its -admin-call-timeout, 30s by default)"

// callResult is what untilComplete needs of one replay or purge call.
type callResult struct {
	// handled is the number of letters the call replayed or purged.
	handled int32
	// complete is set when the server went through every letter matching.
	complete bool
	// lastSequence is the highest dead-letter sequence the call considered.
	lastSequence uint64
}

// untilComplete makes the calls of a replay or purge. A call by filter that
// stopped at its deadline is repeated while repeat is set and the last call
// handled something; it returns the number of calls that succeeded.
//
// The server starts each call from the oldest letter, so a repeated call
// goes on where the last one stopped only because that one removed what
// it handled. Repeated calls take only the letters stored when the first
// call started: they send its last_sequence as the filter's max_sequence.
// A replayed message that fails again is a new letter, with a higher
// sequence, and replaying those too would go on for as long as the flow
// fails.
func untilComplete(filter *adminv1.DeadLetterFilter, repeat bool, call func() (callResult, error)) (int, error) {
	for calls := 0; ; {
		res, err := call()
		if err != nil {
			return calls, err
		}
		calls++
		if res.complete || !repeat || res.handled == 0 || filter == nil {
			return calls, nil
		}
		if filter.MaxSequence == 0 {
			filter.MaxSequence = res.lastSequence
		}
	}
}

// inCalls is " in n calls" when a command took more than one call.
func inCalls(n int) string {
	if n < 2 {
		return ""
	}
	return fmt.Sprintf(" in %d calls", n)
}
