package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/greentic/events/pkg/bus"
)

func TestParseCron(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC)
	tests := []struct {
		spec, tz    string
		next        time.Time
		withSeconds bool
	}{
		{"0 9 * * *", "", time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), false},
		{"0 9 * * *", "Europe/Paris", time.Date(2026, 11, 24, 9, 0, 0, 0, paris), false}, // 08:30 UTC is 09:30 in Paris
		{"*/10 * * * * *", "", time.Date(2026, 11, 23, 8, 30, 10, 0, time.UTC), true},
		{"@hourly", "", time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), false},
		{"@daily", "UTC", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), false},
		{"@every 5m", "", from.Add(5 * time.Minute), false},
		{"0 0 * * MON", "", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tc := range tests {
		c, err := ParseCron(tc.spec, tc.tz)
		if err != nil {
			t.Errorf("ParseCron(%q, %q): %v", tc.spec, tc.tz, err)
			continue
		}
		if got := c.Next(from); !got.Equal(tc.next) {
			t.Errorf("ParseCron(%q, %q).Next = %s, want %s", tc.spec, tc.tz, got, tc.next)
		}
		if c.WithSeconds != tc.withSeconds {
			t.Errorf("ParseCron(%q).WithSeconds = %v", tc.spec, c.WithSeconds)
		}
	}
}

func TestParseCronErrors(t *testing.T) {
	tests := []struct{ spec, tz, want string }{
		{"", "", "empty cron spec"},
		{"0 9 * *", "", "expected 5 to 6 fields"},
		{"61 * * * *", "", "end of range (61) above maximum (59)"},
		{"0 25 * * *", "", "above maximum (23)"},
		{"* * * * * * *", "", "expected 5 to 6 fields"},
		{"@fortnightly", "", "unrecognized descriptor"},
		{"@every 10ms", "", "at least 1s"},
		{"@every 1500ms", "", "whole seconds"},
		{"@every soon", "", "@every: time: invalid duration"},
		{"CRON_TZ=Europe/Paris 0 9 * * *", "", "timezone setting"},
		{"0 9 * * *", "Mars/Olympus", `unknown time zone "Mars/Olympus"`},
		{"0 9 * * *", "Local", "depends on the machine"},
	}
	for _, tc := range tests {
		_, err := ParseCron(tc.spec, tc.tz)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCron(%q, %q) = %v, want error containing %q", tc.spec, tc.tz, err, tc.want)
		}
	}
}

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 9 * * *", "*/5 1-3 * JAN-MAR MON-FRI", "@every 1h", "0 0 30 2 *", "1,2,3/4 * * * * *", "@every -1s"} {
		f.Add(s)
	}
	from := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := ParseCron(spec, "Europe/Paris")
		if err != nil {
			return
		}
		if n := c.Next(from); !n.IsZero() && !n.After(from) {
			t.Fatalf("Next(%s) = %s, not after", from, n)
		}
	})
}

func TestScheduleValidate(t *testing.T) {
	ok := []Schedule{
		{Tenant: "acme", Name: "nightly", Cron: "0 2 * * *", Timezone: "Europe/Paris"},
		{Tenant: "acme", Name: "poll", Cron: "@every 5m", EventType: "poll.due", Payload: []byte(`{"x":1}`), Missed: MissedSkip},
		{Tenant: "acme", Name: "once", At: "2026-12-01T09:00:00+01:00", Paused: true},
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []struct {
		s    Schedule
		want string
	}{
		{Schedule{Tenant: "a b", Name: "n", Cron: "@daily"}, "tenant"},
		{Schedule{Tenant: "acme", Name: "", Cron: "@daily"}, "name"},
		{Schedule{Tenant: "acme", Name: "n"}, "one of cron and at is required"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "@daily", At: "2026-12-01T09:00:00Z"}, "exclusive"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "0 25 * * *"}, "cron:"},
		{Schedule{Tenant: "acme", Name: "n", At: "tomorrow"}, "at:"},
		{Schedule{Tenant: "acme", Name: "n", At: "2026-12-01T09:00:00Z", Timezone: "X/Y"}, "timezone"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "@daily", EventType: "a.>"}, "event_type"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "@daily", Payload: []byte(`{`)}, "payload"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "@daily", Missed: "sometimes"}, "missed"},
	}
	for _, b := range bad {
		if err := b.s.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want an error naming %q", b.s, err, b.want)
		}
	}
}

func TestScheduleValidateNamesTheField(t *testing.T) {
	tests := []struct {
		s     Schedule
		field string
	}{
		{Schedule{Tenant: "acme", Name: "n"}, "cron"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "@daily", At: "2026-12-01T09:00:00Z"}, "at"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "0 25 * * *"}, "cron"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "@daily", Timezone: "Mars/Olympus"}, "timezone"},
		{Schedule{Tenant: "acme", Name: "n", At: "tomorrow"}, "at"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "@daily", Payload: []byte(`{`)}, "payload"},
		{Schedule{Tenant: "acme", Name: "n", Cron: "@daily", Missed: "sometimes"}, "missed"},
	}
	for _, tc := range tests {
		var fe *FieldError
		if err := tc.s.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v, want a FieldError of %s", tc.s, err, tc.field)
		}
	}
	var te *bus.TokenError
	if err := (Schedule{Tenant: "acme", Name: "n", Cron: "@daily", EventType: "a.>"}).Validate(); !errors.As(err, &te) || te.Field != "event_type" {
		t.Errorf("event type: %v, want a TokenError of event_type", err)
	}
}
