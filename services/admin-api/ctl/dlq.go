package ctl

import (
	"context"
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
	case !b.all && (b.filter != dlqFilter{tenant: b.filter.tenant}):
		return 0, nil, &usageError{msg: "--stage, --type, --since and --until select with --all"}
	}
	filter, err := b.filter.proto(time.Now())
	if err != nil {
		return 0, nil, err
	}
	if b.all {
		return 0, filter, nil
	}
	seq, err := parseSeq(args[0])
	if err != nil {
		return 0, nil, err
	}
	if b.filter.empty() {
		filter = nil
	}
	return seq, filter, nil
}

func dlqReplay(fs *flag.FlagSet) runFunc {
	var b bulk
	var rate float64
	var purge bool
	b.register(fs)
	fs.Float64Var(&rate, "rate", 0, "replays per second (default: the server's, 50)")
	fs.BoolVar(&purge, "purge", false, "remove the replayed dead letters from the dead-letter stream")
	return func(ctx context.Context, c *cli, args []string) error {
		seq, filter, err := b.selection(args)
		if err != nil {
			return err
		}
		if rate < 0 {
			return &usageError{msg: "--rate must not be negative"}
		}
		res, err := c.dlq.ReplayDeadLetters(ctx, &adminv1.ReplayDeadLettersRequest{Sequence: seq, Filter: filter, Rate: rate, Purge: purge})
		if err != nil {
			return err
		}
		if c.jsonOut() {
			return c.printProto(res)
		}
		seqs := make([]string, 0, len(res.GetSequences()))
		for _, s := range res.GetSequences() {
			seqs = append(seqs, strconv.FormatUint(s, 10))
		}
		msg := "replayed " + plural(int(res.GetReplayed()), "dead letter")
		if len(seqs) > 0 {
			msg += ": " + strings.Join(seqs, " ")
		}
		_, err = fmt.Fprintln(c.stdout, msg)
		return err
	}
}

func dlqPurge(fs *flag.FlagSet) runFunc {
	var b bulk
	b.register(fs)
	return func(ctx context.Context, c *cli, args []string) error {
		seq, filter, err := b.selection(args)
		if err != nil {
			return err
		}
		res, err := c.dlq.PurgeDeadLetters(ctx, &adminv1.PurgeDeadLettersRequest{Sequence: seq, Filter: filter})
		if err != nil {
			return err
		}
		return c.done(res, "purged %s", plural(int(res.GetPurged()), "dead letter"))
	}
}
