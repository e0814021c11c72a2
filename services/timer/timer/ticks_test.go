package timer

import (
	"testing"
	"time"

	"github.com/greentic/events/pkg/schedule"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func mustTicker(t *testing.T, spec, tz string) ticker {
	t.Helper()
	tk, _, err := parseTicker(spec, tz)
	if err != nil {
		t.Fatalf("parseTicker(%q, %q): %v", spec, tz, err)
	}
	return tk
}

// ticksIn lists the ticks in (from, to].
func ticksIn(tk ticker, from, to time.Time) []time.Time {
	var out []time.Time
	for n := tk.next(from); !n.IsZero() && !n.After(to); n = tk.next(n) {
		out = append(out, n.UTC())
	}
	return out
}

// TestTicksAcrossDST pins the fire times (UTC instants) of schedules in
// zones with daylight saving time, on the days the clocks change. These
// are the instants the README documents.
func TestTicksAcrossDST(t *testing.T) {
	for _, tc := range []struct {
		name, spec, tz string
		from, to       string
		want           []string
	}{
		{
			// 2026-03-29 02:30 does not exist in Paris (02:00 CET -> 03:00
			// CEST): no tick that day.
			name: "paris spring forward", spec: "30 2 * * *", tz: "Europe/Paris",
			from: "2026-03-27T12:00:00Z", to: "2026-03-31T12:00:00Z",
			want: []string{"2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"},
		},
		{
			// 2026-10-25 02:30 happens twice (CEST, then CET): one tick, at
			// the first (00:30 UTC).
			name: "paris fall back", spec: "30 2 * * *", tz: "Europe/Paris",
			from: "2026-10-23T12:00:00Z", to: "2026-10-27T12:00:00Z",
			want: []string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"},
		},
		{
			// An interval schedule keeps its interval through the repeated hour.
			name: "paris every 30 minutes through fall back", spec: "*/30 * * * *", tz: "Europe/Paris",
			from: "2026-10-24T23:00:00Z", to: "2026-10-25T02:00:00Z",
			want: []string{"2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"},
		},
		{
			name: "paris every 30 minutes through spring forward", spec: "*/30 * * * *", tz: "Europe/Paris",
			from: "2026-03-29T00:00:00Z", to: "2026-03-29T02:00:00Z",
			want: []string{"2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z"},
		},
		{
			// 09:00 New York is 14:00 UTC in EST, 13:00 UTC in EDT (from 2026-03-08).
			name: "new york 9am spring", spec: "0 9 * * *", tz: "America/New_York",
			from: "2026-03-07T12:00:00Z", to: "2026-03-09T23:00:00Z",
			want: []string{"2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"},
		},
		{
			name: "new york 9am fall", spec: "0 9 * * *", tz: "America/New_York",
			from: "2026-10-31T12:00:00Z", to: "2026-11-02T23:00:00Z",
			want: []string{"2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z"},
		},
		{
			// 01:30 happens twice in New York on 2026-11-01: once, in EDT.
			name: "new york 1:30 fall back", spec: "30 1 * * *", tz: "America/New_York",
			from: "2026-10-31T12:00:00Z", to: "2026-11-02T23:00:00Z",
			want: []string{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
		},
		{
			name: "utc default", spec: "30 2 * * *", tz: "",
			from: "2026-10-24T12:00:00Z", to: "2026-10-26T12:00:00Z",
			want: []string{"2026-10-25T02:30:00Z", "2026-10-26T02:30:00Z"},
		},
		{
			// @every counts from the Unix epoch, not from when a replica started.
			name: "every 7 minutes", spec: "@every 7m", tz: "Europe/Paris",
			from: "2026-01-01T00:00:00Z", to: "2026-01-01T00:15:00Z",
			want: []string{"2026-01-01T00:07:00Z", "2026-01-01T00:14:00Z"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := mustTicker(t, tc.spec, tc.tz)
			got := ticksIn(tk, utc(tc.from), utc(tc.to))
			if len(got) != len(tc.want) {
				t.Fatalf("ticks = %v, want %v", got, tc.want)
			}
			for i := range got {
				if !got[i].Equal(utc(tc.want[i])) {
					t.Fatalf("ticks = %v, want %v", got, tc.want)
				}
			}
			// The sequence does not depend on where one starts computing it
			// (a replica started in the repeated hour agrees with the others).
			for x := utc(tc.from); x.Before(utc(tc.to)); x = x.Add(time.Minute) {
				var want time.Time
				for _, w := range got {
					if w.After(x) {
						want = w
						break
					}
				}
				if n := tk.next(x); !want.IsZero() && !n.Equal(want) {
					t.Fatalf("next(%s) = %s, want %s", x, n.UTC(), want)
				}
			}
		})
	}
}

// TestEveryMinuteThroughRepeatedHour: a minute schedule fires every minute
// of the hour that happens twice (120 ticks over two real hours).
func TestEveryMinuteThroughRepeatedHour(t *testing.T) {
	got := ticksIn(mustTicker(t, "* * * * *", "Europe/Paris"), utc("2026-10-25T00:00:00Z"), utc("2026-10-25T02:00:00Z"))
	if len(got) != 120 {
		t.Fatalf("%d ticks, want 120", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Sub(got[i-1]) != time.Minute {
			t.Fatalf("gap between %s and %s", got[i-1], got[i])
		}
	}
}

func TestGocronCron(t *testing.T) {
	g := gocronCron{mustTicker(t, "30 2 * * *", "Europe/Paris")}
	if err := g.IsValid("", time.UTC, utc("2026-10-24T12:00:00Z")); err != nil {
		t.Fatal(err)
	}
	if n := g.Next(utc("2026-10-25T00:30:00Z")); n.Location() != time.UTC || !n.Equal(utc("2026-10-26T01:30:00Z")) {
		t.Fatalf("Next = %s (%s)", n, n.Location())
	}
	never := gocronCron{mustTicker(t, "0 0 30 2 *", "")}
	if err := never.IsValid("", time.UTC, utc("2026-10-24T12:00:00Z")); err == nil {
		t.Fatal("a spec that never fires is valid")
	}
}

func TestPlanTicks(t *testing.T) {
	minute := mustTicker(t, "* * * * *", "")
	t0 := utc("2026-06-01T11:50:00Z")
	down := t0.Add(10*time.Minute + 30*time.Second) // 12:00:30, ticks 11:51 .. 12:00 missed
	type want struct {
		fire    []string // scheduled times, "+" suffix for catch-up
		missed  int
		dropped int
		through string
	}
	for _, tc := range []struct {
		name   string
		tk     ticker
		last   time.Time
		now    time.Time
		policy string
		max    int
		want   want
	}{
		{"on time", minute, t0, t0.Add(time.Minute + 3*time.Millisecond), schedule.MissedFireOnce, 100,
			want{fire: []string{"11:51:00"}, through: "11:51:00"}},
		{"a little early", minute, t0, t0.Add(time.Minute - 300*time.Millisecond), schedule.MissedFireOnce, 100,
			want{fire: []string{"11:51:00"}, through: "11:51:00"}},
		{"nothing due", minute, t0, t0.Add(30 * time.Second), schedule.MissedFireOnce, 100,
			want{}},
		{"late within the threshold", minute, t0, t0.Add(time.Minute + 9*time.Second), schedule.MissedSkip, 100,
			want{fire: []string{"11:51:00"}, through: "11:51:00"}},
		{"skip", minute, t0, down, schedule.MissedSkip, 100,
			want{missed: 10, dropped: 10, through: "12:00:00"}},
		{"fire once", minute, t0, down, schedule.MissedFireOnce, 100,
			want{fire: []string{"12:00:00+"}, missed: 10, dropped: 9, through: "12:00:00"}},
		{"default policy is fire once", minute, t0, down, "", 100,
			want{fire: []string{"12:00:00+"}, missed: 10, dropped: 9, through: "12:00:00"}},
		{"fire all", minute, t0, down, schedule.MissedFireAll, 100,
			want{fire: []string{"11:51:00+", "11:52:00+", "11:53:00+", "11:54:00+", "11:55:00+", "11:56:00+", "11:57:00+", "11:58:00+", "11:59:00+", "12:00:00+"}, missed: 10, through: "12:00:00"}},
		{"fire all bounded", minute, t0, down, schedule.MissedFireAll, 3,
			want{fire: []string{"11:58:00+", "11:59:00+", "12:00:00+"}, missed: 10, dropped: 7, through: "12:00:00"}},
		{"missed then on time", minute, t0, t0.Add(10*time.Minute + 5*time.Second), schedule.MissedFireOnce, 100,
			want{fire: []string{"11:59:00+", "12:00:00"}, missed: 9, dropped: 8, through: "12:00:00"}},
		{"one-shot due", onceTicker{at: t0.Add(time.Minute)}, t0, t0.Add(time.Minute + time.Millisecond), schedule.MissedSkip, 100,
			want{fire: []string{"11:51:00"}, through: "11:51:00"}},
		{"one-shot fired", onceTicker{at: t0.Add(time.Minute)}, t0.Add(time.Minute), t0.Add(time.Hour), schedule.MissedFireOnce, 100,
			want{}},
		{"one-shot missed", onceTicker{at: t0.Add(time.Minute)}, t0, t0.Add(time.Hour), schedule.MissedFireOnce, 100,
			want{fire: []string{"11:51:00+"}, missed: 1, through: "11:51:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planTicks(tc.tk, tc.last, tc.now, 10*time.Second, tc.policy, tc.max)
			var fire []string
			for _, f := range p.fire {
				s := f.at.UTC().Format("15:04:05")
				if f.catchUp {
					s += "+"
				}
				fire = append(fire, s)
			}
			through := ""
			if !p.through.IsZero() {
				through = p.through.UTC().Format("15:04:05")
			}
			if len(fire) != len(tc.want.fire) || p.missed != tc.want.missed || p.dropped != tc.want.dropped || through != tc.want.through || p.capped {
				t.Fatalf("plan = fire %v missed %d dropped %d through %q capped %v, want %+v", fire, p.missed, p.dropped, through, p.capped, tc.want)
			}
			for i := range fire {
				if fire[i] != tc.want.fire[i] {
					t.Fatalf("fire = %v, want %v", fire, tc.want.fire)
				}
			}
		})
	}
}

// TestPlanTicksLongOutage: a per-second schedule down for three days has
// more missed ticks than are counted one by one; the newest are still found.
func TestPlanTicksLongOutage(t *testing.T) {
	second := mustTicker(t, "* * * * * *", "")
	last := utc("2026-06-01T00:00:00Z")
	now := last.Add(72*time.Hour + 100*time.Millisecond)
	p := planTicks(second, last, now, 10*time.Second, schedule.MissedFireAll, 3)
	if !p.capped || p.missed != countCap {
		t.Fatalf("missed %d capped %v, want a lower bound of %d", p.missed, p.capped, countCap)
	}
	// Missed: before now-10s = 71:59:50.1 -> newest 71:59:48, :49, :50; then
	// on time :51 .. 72:00:00 (10 ticks).
	if len(p.fire) != 13 {
		t.Fatalf("fire %d ticks: %v", len(p.fire), p.fire)
	}
	for i, f := range p.fire {
		want := last.Add(72*time.Hour - 12*time.Second + time.Duration(i)*time.Second)
		if !f.at.Equal(want) || f.catchUp != (i < 3) {
			t.Fatalf("fire[%d] = %+v, want %s (catch-up %v)", i, f, want, i < 3)
		}
	}
	if !p.through.Equal(last.Add(72 * time.Hour)) {
		t.Fatalf("through %s", p.through)
	}
}

func TestLatest(t *testing.T) {
	daily := mustTicker(t, "0 9 * * *", "")
	if got := latest(daily, utc("2026-01-01T00:00:00Z"), utc("2026-03-05T08:00:00Z")); !got.Equal(utc("2026-03-04T09:00:00Z")) {
		t.Fatalf("latest = %s", got)
	}
	if got := latest(daily, utc("2026-03-04T09:00:00Z"), utc("2026-03-05T08:00:00Z")); !got.IsZero() {
		t.Fatalf("latest after the floor = %s, want none", got)
	}
	leap := mustTicker(t, "0 0 29 2 *", "")
	if got := latest(leap, time.Unix(0, 0), utc("2031-01-01T00:00:00Z")); !got.Equal(utc("2028-02-29T00:00:00Z")) {
		t.Fatalf("latest leap day = %s", got)
	}
}
