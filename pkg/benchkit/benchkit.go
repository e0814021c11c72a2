// Package benchkit is the measurement kit of the `make bench` programs
// (services/*/cmd/*-bench): the process's CPU time, heap and goroutine
// sampling, percentiles and medians, and the formatting of the figures they
// print.
package benchkit

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// CPUTime is the process's user and system CPU time so far: divided by the
// work done in a window, it is steadier than a rate on a noisy machine.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Memory is one reading: heap and stacks in use (HeapInuse + StackInuse),
// goroutines, and the heap found live by the last GC.
type Memory struct{ InUse, Goroutines, Live int64 }

// memReader reads the memory figures through runtime/metrics, which does
// not stop the world: sampling does not delay what is measured.
type memReader struct{ samples []metrics.Sample }

func newMemReader() *memReader {
	return &memReader{samples: []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/gc/heap/live:bytes"},
	}}
}

func (m *memReader) read() Memory {
	metrics.Read(m.samples)
	var out Memory
	for _, s := range m.samples[:3] {
		out.InUse += int64(s.Value.Uint64())
	}
	out.Goroutines = int64(m.samples[3].Value.Uint64())
	out.Live = int64(m.samples[4].Value.Uint64())
	return out
}

// Settled reads memory after two full collections.
func Settled() Memory {
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	return newMemReader().read()
}

// Sampler reads memory every period until stopped; stop returns the most
// heap and stacks and the most goroutines in use (Live is not sampled).
func Sampler(every time.Duration) (stop func() Memory) {
	done, finished := make(chan struct{}), make(chan struct{})
	var peak Memory
	go func() {
		defer close(finished)
		m := newMemReader()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			r := m.read()
			peak.InUse, peak.Goroutines = max(peak.InUse, r.InUse), max(peak.Goroutines, r.Goroutines)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() Memory {
		close(done)
		<-finished
		return peak
	}
}

// Lags are the percentiles of a set of durations.
type Lags struct{ P50, P99, Max time.Duration }

// Percentiles sorts v and picks its p50, p99 and maximum (zero when v is
// empty).
func Percentiles(v []time.Duration) Lags {
	if len(v) == 0 {
		return Lags{}
	}
	slices.Sort(v)
	return Lags{P50: v[len(v)/2], P99: v[min(len(v)-1, len(v)*99/100)], Max: v[len(v)-1]}
}

// Median is the median of one figure over rounds (the upper one of an even
// count, so it is always a figure that was measured).
func Median[R any, F cmp.Ordered](rounds []R, figure func(R) F) F {
	v := make([]F, len(rounds))
	for i, r := range rounds {
		v[i] = figure(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// Parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func Parallel(ctx context.Context, n, workers int, fn func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// StartCPUProfile profiles the process into path until stop is called;
// with an empty path it profiles nothing. runtime/pprof cannot pause, so a
// program measuring several windows gives each a file of its own (pprof
// merges them).
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	pf, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		pf.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); pf.Close() }, nil
}

// Dur prints d to about three significant digits.
func Dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// MiB prints a number of bytes in mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

// PeakRSS is the process's peak resident set size (VmHWM, Linux), or "-".
func PeakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "-"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
				return MiB(kb << 10)
			}
		}
	}
	return "-"
}
