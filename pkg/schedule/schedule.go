// Package schedule parses the cron specifications of timer triggers and
// ad-hoc schedules, with the same parser the timer service's scheduler
// (gocron v2, built on robfig/cron v3) uses, so a spec that validates here
// is one the timer accepts.
//
// Accepted forms:
//   - five fields: minute hour day-of-month month day-of-week ("0 9 * * *");
//   - six fields, with seconds first ("*/10 * * * * *");
//   - descriptors: @yearly (@annually), @monthly, @weekly, @daily
//     (@midnight), @hourly, and @every <duration> ("@every 5m").
//
// The time zone is a separate setting (an IANA name, default UTC); the
// CRON_TZ= and TZ= prefixes of robfig/cron are refused so that a spec has
// exactly one place for its zone. The IANA database is embedded
// (time/tzdata), so zones resolve in minimal images without /usr/share/zoneinfo.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // zones without a system database

	"github.com/robfig/cron/v3"
)

// MinInterval is the shortest @every interval.
const MinInterval = time.Second

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Cron is a parsed specification in its time zone.
type Cron struct {
	Spec     string
	Location *time.Location
	// WithSeconds reports a six-field spec (gocron's CronJob withSeconds).
	WithSeconds bool
	sched       cron.Schedule
}

// ParseCron parses spec in the IANA zone tz ("" means UTC).
func ParseCron(spec, tz string) (*Cron, error) {
	loc, err := Location(tz)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(spec)
	switch {
	case s == "":
		return nil, errors.New("empty cron spec")
	case strings.HasPrefix(s, "CRON_TZ=") || strings.HasPrefix(s, "TZ="):
		return nil, errors.New("set the time zone with the timezone setting, not a TZ= prefix")
	}
	if rest, ok := strings.CutPrefix(s, "@every "); ok {
		// robfig/cron rounds intervals to whole seconds silently.
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		switch {
		case err != nil:
			return nil, fmt.Errorf("@every: %v", err)
		case d < MinInterval:
			return nil, fmt.Errorf("@every interval must be at least %s", MinInterval)
		case d%time.Second != 0:
			return nil, errors.New("@every interval must be whole seconds")
		}
	}
	sched, err := parseSafely(s)
	if err != nil {
		return nil, err
	}
	return &Cron{
		Spec:        s,
		Location:    loc,
		WithSeconds: !strings.HasPrefix(s, "@") && len(strings.Fields(s)) == 6,
		sched:       sched,
	}, nil
}

// parseSafely runs the parser, which is fed tenant input, without letting
// a panic in it escape.
func parseSafely(s string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("invalid cron spec: %v", r)
		}
	}()
	sched, err = parser.Parse(s)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "failed to parse "))
	}
	return sched, nil
}

// Location resolves an IANA zone name; "" is UTC. "Local" is refused: a
// schedule must not depend on the machine it runs on.
func Location(tz string) (*time.Location, error) {
	switch tz {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, errors.New(`time zone "Local" depends on the machine; name an IANA zone such as "Europe/Paris"`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as \"Europe/Paris\")", tz)
	}
	return loc, nil
}

// Next is the first fire time strictly after t, in the spec's zone; the
// zero time if there is none (a spec such as "0 0 30 2 *" never fires).
func (c *Cron) Next(t time.Time) time.Time {
	return c.sched.Next(t.In(c.Location))
}
