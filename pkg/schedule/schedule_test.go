package schedule

import (
	"strings"
	"testing"
	"time"
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
