package benchkit

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Lags
	}{
		{"empty", nil, Lags{}},
		{"one", ms(7), Lags{P50: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"unsorted", ms(3, 1, 2), Lags{P50: 2 * time.Millisecond, P99: 3 * time.Millisecond, Max: 3 * time.Millisecond}},
		{"hundred", ms(hundred...), Lags{P50: 51 * time.Millisecond, P99: 100 * time.Millisecond, Max: 100 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentiles(tc.in); got != tc.want {
				t.Fatalf("Percentiles = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	type round struct {
		rps float64
		cpu time.Duration
	}
	rounds := []round{{300, 3}, {100, 9}, {200, 1}}
	if got := Median(rounds, func(r round) float64 { return r.rps }); got != 200 {
		t.Errorf("median rps = %v, want 200", got)
	}
	if got := Median(rounds, func(r round) time.Duration { return r.cpu }); got != 3 {
		t.Errorf("median cpu = %v, want 3", got)
	}
	if got := Median(rounds[:2], func(r round) float64 { return r.rps }); got != 300 {
		t.Errorf("median of two = %v, want the upper one, 300", got)
	}
}

func TestDur(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{1234567 * time.Nanosecond, "1.2ms"},
		{123456 * time.Nanosecond, "123µs"},
		{123456789 * time.Nanosecond, "123ms"},
		{12345678901 * time.Nanosecond, "12.3s"},
		{0, "0s"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := Dur(tc.in); got != tc.want {
				t.Fatalf("Dur(%d) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestMiB(t *testing.T) {
	if got := MiB(3 << 19); got != "1.5MiB" {
		t.Fatalf("MiB = %s, want 1.5MiB", got)
	}
}

func TestParallel(t *testing.T) {
	t.Run("runs every index once", func(t *testing.T) {
		seen := make([]atomic.Int32, 1000)
		if err := Parallel(context.Background(), len(seen), 8, func(i int) error { seen[i].Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Fatalf("index %d ran %d times", i, c)
			}
		}
	})
	t.Run("returns the error", func(t *testing.T) {
		boom := errors.New("boom")
		err := Parallel(context.Background(), 100, 4, func(i int) error {
			if i == 10 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
	})
	t.Run("stops on a cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var ran atomic.Int32
		err := Parallel(ctx, 100, 4, func(int) error { ran.Add(1); return nil })
		if !errors.Is(err, context.Canceled) || ran.Load() != 0 {
			t.Fatalf("err = %v after %d calls, want context.Canceled after none", err, ran.Load())
		}
	})
}

func TestSamplerAndCPUTime(t *testing.T) {
	cpu0 := CPUTime()
	stop := Sampler(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	peak := stop()
	if peak.InUse <= 0 || peak.Goroutines <= 0 {
		t.Fatalf("peak = %+v, want heap and goroutines in use", peak)
	}
	if s := Settled(); s.InUse <= 0 || s.Live <= 0 {
		t.Fatalf("settled = %+v, want heap in use and live", s)
	}
	if CPUTime() < cpu0 {
		t.Fatal("CPU time went back")
	}
}

func TestStartCPUProfileWithoutPath(t *testing.T) {
	stop, err := StartCPUProfile("")
	if err != nil {
		t.Fatal(err)
	}
	stop()
}
