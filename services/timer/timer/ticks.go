package timer

import (
	"time"

	"github.com/greentic/events/pkg/schedule"
)

// A ticker is the sequence of a schedule's fire times (ticks). It is a pure
// function of the schedule: every replica, whenever it started, computes
// the same ticks, and so the same event ids. The scheduler fires jobs at
// these ticks (gocronCron) and the timer computes which ticks are due with
// the same sequence, on time and after an outage alike.
type ticker interface {
	// next is the first tick strictly after t, or the zero time if none.
	next(t time.Time) time.Time
}

// cronTicker is a cron spec in its time zone. The ticks are robfig/cron's
// (the parser of pkg/schedule and gocron), with one change for the hour a
// fall-back transition repeats: a tick whose wall-clock time equals that of
// the tick just before it, one transition earlier, is dropped. A 02:30
// daily schedule fires once on that day (at the first 02:30), while an
// every-minute schedule keeps firing through the repeated hour. This is
// the rule gocron applies between consecutive runs, made independent of
// when the scheduler started.
type cronTicker struct{ c *schedule.Cron }

func (k cronTicker) next(t time.Time) time.Time {
	for {
		n := k.c.Next(t)
		if n.IsZero() || !k.repeat(n) {
			return n
		}
		t = n
	}
}

// repeat reports whether tick n falls in the repeated hour of a fall-back
// transition and the schedule's previous tick is the same wall-clock time
// before the transition.
func (k cronTicker) repeat(n time.Time) bool {
	start, _ := n.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, after := n.Zone()
	_, before := start.Add(-time.Nanosecond).Zone()
	shift := time.Duration(before-after) * time.Second
	if shift <= 0 || n.Sub(start) >= shift {
		return false
	}
	first := n.Add(-shift) // the same wall-clock time, before the transition
	return k.c.Next(first.Add(-time.Second)).Equal(first) && k.c.Next(first).Equal(n)
}

// everyTicker is "@every d": the multiples of d since the Unix epoch, so
// that replicas agree on the instants (robfig/cron counts from whenever
// the scheduler started, which differs from replica to replica).
type everyTicker struct{ d time.Duration }

func (k everyTicker) next(t time.Time) time.Time {
	s := int64(k.d / time.Second)
	u := t.Unix()
	if u < 0 {
		return time.Time{}
	}
	return time.Unix((u/s+1)*s, 0).UTC()
}

// onceTicker is a one-shot schedule.
type onceTicker struct{ at time.Time }

func (k onceTicker) next(t time.Time) time.Time {
	if t.Before(k.at) {
		return k.at
	}
	return time.Time{}
}

// gocronCron hands a ticker to gocron (WithCronImplementation), so the
// scheduler fires at exactly the ticks the timer computes. Ticks are
// given in UTC: gocron compares the wall clock of consecutive runs to
// detect a fall-back repeat, which the ticker already handles.
type gocronCron struct{ tk ticker }

func (g gocronCron) IsValid(_ string, _ *time.Location, now time.Time) error {
	if g.tk.next(now).IsZero() {
		return errNeverFires
	}
	return nil
}

func (g gocronCron) Next(lastRun time.Time) time.Time { return g.tk.next(lastRun).UTC() }

// earlyTolerance is how early a fire may come (the wall clock stepped
// back after the scheduler set its timer) and still fire the tick.
const earlyTolerance = 500 * time.Millisecond

// countCap bounds the missed ticks enumerated one by one; beyond it the
// newest ones are found by searching backwards and the count is a lower bound.
const countCap = 100_000

// tick is one fire time to publish.
type tick struct {
	at      time.Time
	catchUp bool // a missed tick fired by the fire_once or fire_all policy
}

// plan is what one fire does: the ticks due since the last one handled.
type plan struct {
	fire    []tick    // oldest first
	missed  int       // ticks later than the misfire threshold (fired or not)
	dropped int       // missed ticks not fired (skip, or beyond max catch-up)
	capped  bool      // more than countCap missed: missed is a lower bound
	through time.Time // newest due tick, fired or dropped (zero: none due)
}

// planTicks works out the ticks due after last, up to now: those at most
// threshold late are fired; older ones are missed and follow the policy
// (skip: none, fire_once: the newest, fire_all: the newest maxCatchUp, fired
// oldest first).
func planTicks(tk ticker, last, now time.Time, threshold time.Duration, policy string, maxCatchUp int) plan {
	keep := 0
	switch policy {
	case schedule.MissedFireAll:
		keep = maxCatchUp
	case schedule.MissedSkip:
	default:
		keep = 1
	}
	upTo := now.Add(earlyTolerance)
	missedBefore := now.Add(-threshold)
	var p plan
	var missed []time.Time // newest keep, oldest first
	var onTime []time.Time
	for t := tk.next(last); !t.IsZero() && !t.After(upTo); t = tk.next(t) {
		if !t.Before(missedBefore) {
			onTime = append(onTime, t)
			p.through = t
			continue
		}
		p.missed++
		if keep > 0 {
			if len(missed) == keep {
				missed = append(missed[:0], missed[1:]...)
			}
			missed = append(missed, t)
		}
		p.through = t
		if p.missed == countCap {
			p.capped = true
			missed = newestTicks(tk, t, missedBefore.Add(-time.Nanosecond), keep, missed)
			if n := latest(tk, t, missedBefore.Add(-time.Nanosecond)); !n.IsZero() {
				p.through = n
			}
			// Continue with the first on-time tick.
			t = missedBefore.Add(-time.Nanosecond)
			if p.through.After(t) {
				t = p.through
			}
		}
	}
	p.dropped = p.missed - len(missed)
	for _, t := range missed {
		p.fire = append(p.fire, tick{at: t, catchUp: true})
	}
	for _, t := range onTime {
		p.fire = append(p.fire, tick{at: t})
	}
	return p
}

// newestTicks returns the newest n ticks in (after, upTo], oldest first,
// preceded by the newest of older (ticks before after) when fewer than n
// are found.
func newestTicks(tk ticker, after, upTo time.Time, n int, older []time.Time) []time.Time {
	var rev []time.Time
	for t := upTo; len(rev) < n; {
		p := latest(tk, after, t)
		if p.IsZero() {
			break
		}
		rev = append(rev, p)
		t = p.Add(-time.Nanosecond)
	}
	out := make([]time.Time, 0, n)
	if k := n - len(rev); k > 0 && len(older) > 0 {
		out = append(out, older[max(0, len(older)-k):]...)
	}
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return out
}

// lookbacks are the windows latest searches, growing.
var lookbacks = []time.Duration{
	time.Second, time.Minute, time.Hour, 24 * time.Hour, 8 * 24 * time.Hour,
	32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 367 * 24 * time.Hour,
}

// latest is the newest tick in (after, t], or the zero time; it looks back
// at most five years.
func latest(tk ticker, after, t time.Time) time.Time {
	if !t.After(after) {
		return time.Time{}
	}
	for _, w := range lookbacks {
		from := t.Add(-w)
		if !from.After(after) {
			from = after
		}
		if n := tk.next(from); !n.IsZero() && !n.After(t) {
			for {
				m := tk.next(n)
				if m.IsZero() || m.After(t) {
					return n
				}
				n = m
			}
		}
		if from.Equal(after) {
			break
		}
	}
	return time.Time{}
}
