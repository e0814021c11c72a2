package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var testLog = slog.New(slog.DiscardHandler)

// serveOps serves h on a loopback port until the test ends and returns its
// base URL and a stop function returning Serve's result.
func serveOps(t *testing.T, h http.Handler, timeout time.Duration) (string, func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, timeout, testLog) }()
	var result error
	var stopped bool
	stop := func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-done:
		case <-time.After(10 * time.Second):
			result = errors.New("Serve did not return within 10s of cancellation")
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), stop
}

type response struct {
	code int
	typ  string
	body []byte
}

func get(t *testing.T, url string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), body}
}

type statusBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func decodeStatus(t *testing.T, r response) statusBody {
	t.Helper()
	if r.typ != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", r.typ)
	}
	var s statusBody
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return s
}

func TestHealthz(t *testing.T) {
	url, _ := serveOps(t, OpsHandler(NewRegistry(), NewReadiness()), 5*time.Second)
	r := get(t, url+"/healthz")
	if r.code != http.StatusOK {
		t.Fatalf("/healthz = %d %s", r.code, r.body)
	}
	if s := decodeStatus(t, r); s.Status != "ok" {
		t.Errorf("/healthz status = %q, want ok", s.Status)
	}
}

func TestReadyz(t *testing.T) {
	ready := NewReadiness()
	var busUp atomic.Bool
	ready.Add("always", func(context.Context) error { return nil })
	ready.Add("bus", func(context.Context) error {
		if !busUp.Load() {
			return errors.New("bus down")
		}
		return nil
	})
	ready.Add("cache", func(context.Context) error { return errors.New("first version") })
	ready.Add("cache", func(context.Context) error { return errors.New("cache cold") }) // replaces
	url, _ := serveOps(t, OpsHandler(NewRegistry(), ready), 5*time.Second)

	t.Run("not ready", func(t *testing.T) {
		r := get(t, url+"/readyz")
		if r.code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz = %d %s, want 503", r.code, r.body)
		}
		s := decodeStatus(t, r)
		want := map[string]string{"bus": "bus down", "cache": "cache cold"}
		if s.Status != "not ready" || len(s.Checks) != len(want) || s.Checks["bus"] != want["bus"] || s.Checks["cache"] != want["cache"] {
			t.Errorf("/readyz body = %+v, want status not ready with checks %v", s, want)
		}
	})
	t.Run("ready once every check passes", func(t *testing.T) {
		busUp.Store(true)
		ready.Add("cache", func(context.Context) error { return nil })
		r := get(t, url+"/readyz")
		if r.code != http.StatusOK {
			t.Fatalf("/readyz = %d %s, want 200", r.code, r.body)
		}
		if s := decodeStatus(t, r); s.Status != "ready" || len(s.Checks) != 0 {
			t.Errorf("/readyz body = %+v", s)
		}
	})
	t.Run("empty readiness is ready", func(t *testing.T) {
		url, _ := serveOps(t, OpsHandler(NewRegistry(), NewReadiness()), 5*time.Second)
		if r := get(t, url+"/readyz"); r.code != http.StatusOK {
			t.Fatalf("/readyz = %d %s, want 200", r.code, r.body)
		}
	})
}

func TestMetrics(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "greentic_test_events_total", Help: "Events seen by the test."})
	reg.MustRegister(c)
	c.Add(3)
	url, _ := serveOps(t, OpsHandler(reg, NewReadiness()), 5*time.Second)
	r := get(t, url+"/metrics")
	if r.code != http.StatusOK {
		t.Fatalf("/metrics = %d", r.code)
	}
	for _, want := range []string{"greentic_test_events_total 3", "go_goroutines ", "go_memstats_alloc_bytes ", "process_start_time_seconds "} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics does not expose %q", want)
		}
	}
}

func TestOpsUnknownPath(t *testing.T) {
	url, _ := serveOps(t, OpsHandler(NewRegistry(), NewReadiness()), 5*time.Second)
	if r := get(t, url+"/nope"); r.code != http.StatusNotFound {
		t.Errorf("/nope = %d, want 404", r.code)
	}
}

func TestServeShutdown(t *testing.T) {
	t.Run("clean stop closes the port", func(t *testing.T) {
		url, stop := serveOps(t, OpsHandler(NewRegistry(), NewReadiness()), 5*time.Second)
		if r := get(t, url+"/healthz"); r.code != http.StatusOK {
			t.Fatalf("/healthz = %d", r.code)
		}
		if err := stop(); err != nil {
			t.Fatalf("Serve after cancel = %v, want nil", err)
		}
		addr := strings.TrimPrefix(url, "http://")
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections after Serve returned", addr)
		}
	})
	t.Run("in-flight request completes", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "finished")
		})
		url, stop := serveOps(t, h, 5*time.Second)
		got := make(chan response, 1)
		go func() {
			resp, err := http.Get(url)
			if err != nil {
				got <- response{code: -1, body: []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			got <- response{code: resp.StatusCode, body: b}
		}()
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		select {
		case err := <-stopped:
			t.Fatalf("Serve returned %v with a request in flight", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		if r := <-got; r.code != http.StatusOK || string(r.body) != "finished" {
			t.Errorf("in-flight request = %d %q, want 200 finished", r.code, r.body)
		}
		if err := <-stopped; err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	})
	t.Run("request outliving the timeout is an error", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		t.Cleanup(func() { close(release) })
		h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			close(entered)
			<-release
		})
		url, stop := serveOps(t, h, 100*time.Millisecond)
		go func() {
			if resp, err := http.Get(url); err == nil {
				resp.Body.Close()
			}
		}()
		<-entered
		err := stop()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "shut down") ||
			!strings.Contains(err.Error(), "1 requests still running") {
			t.Fatalf("Serve = %v, want a shutdown deadline error counting the request", err)
		}
	})
	t.Run("connection without a request does not hold the stop", func(t *testing.T) {
		url, stop := serveOps(t, OpsHandler(NewRegistry(), NewReadiness()), 200*time.Millisecond)
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		time.Sleep(50 * time.Millisecond) // accepted, never sends a request
		start := time.Now()
		if err := stop(); err != nil {
			t.Fatalf("Serve = %v, want nil: no request was abandoned", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("stop took %s, want about the 200ms timeout", d)
		}
	})
}
