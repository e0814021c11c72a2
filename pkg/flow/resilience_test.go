package flow

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// failing answers with the statuses in order, then 200.
func failing(statuses ...int) http.HandlerFunc {
	ch := make(chan int, len(statuses))
	for _, s := range statuses {
		ch <- s
	}
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case s := <-ch:
			w.WriteHeader(s)
		default:
			w.Write([]byte("done"))
		}
	}
}

// slow answers when the request is cancelled or after a second.
func slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(time.Second):
	}
}

const handleError = `  - id: handle
    type: script
    config: {script: "'handled: ' + nodes.call.error"}
`

func TestNodePolicies(t *testing.T) {
	const url = "      url: \"{{ event.payload.base }}/x\"\n"
	tests := []struct {
		name     string
		src      string // a flow whose first node is call
		lim      Limits
		handler  http.HandlerFunc
		wantErr  string
		want     string // JSON output when ok
		trace    string
		attempts int // of the first node
		hits     int32
		// transient is Result.Transient
		transient bool
		maxTime   time.Duration
	}{
		{
			name:     "retry succeeds on the third attempt",
			src:      httpFlow(url, "    retry: {max_attempts: 3, backoff: 1ms}\n"),
			handler:  failing(503, 503),
			trace:    "call:ok,after:ok",
			attempts: 3, hits: 3,
		},
		{
			name:     "429 and 408 are retried",
			src:      httpFlow(url, "    retry: {max_attempts: 5, backoff: 1ms, max_backoff: 2ms}\n"),
			handler:  failing(429, 408, 500),
			trace:    "call:ok,after:ok",
			attempts: 4, hits: 4,
		},
		{
			name:     "404 is not retried",
			src:      httpFlow(url, "    retry: {max_attempts: 3, backoff: 1ms}\n"),
			handler:  failing(404),
			wantErr:  `node "call" (http): GET http://127.0.0.1:PORT/x: status 404`,
			trace:    "call:error",
			attempts: 1, hits: 1,
		},
		{
			name:     "retries run out",
			src:      httpFlow(url, "    retry: {max_attempts: 2, backoff: 1ms}\n"),
			handler:  failing(503, 502, 501),
			wantErr:  `node "call" (http): GET http://127.0.0.1:PORT/x: status 502 (after 2 attempts)`,
			trace:    "call:error",
			attempts: 2, hits: 2, transient: true,
		},
		{
			name:     "503 without retry is transient",
			src:      httpFlow(url, ""),
			handler:  failing(503),
			wantErr:  "status 503",
			trace:    "call:error",
			attempts: 1, hits: 1, transient: true,
		},
		{
			name:     "backoff stops at the run deadline",
			src:      httpFlow(url, "    retry: {max_attempts: 5, backoff: 150ms}\n"),
			lim:      Limits{MaxDuration: 200 * time.Millisecond},
			handler:  failing(503, 503, 503, 503, 503),
			wantErr:  `node "call": run deadline of 200ms exceeded`,
			trace:    "call:error",
			attempts: 2, hits: 2, transient: true,
			maxTime: time.Second,
		},
		{
			name:     "node timeout on a slow server",
			src:      httpFlow(url, "    timeout: 50ms\n"),
			handler:  slow,
			wantErr:  `node "call" (http): node timeout of 50ms exceeded`,
			trace:    "call:error",
			attempts: 1, hits: 1, transient: true,
			maxTime: 500 * time.Millisecond,
		},
		{
			name:     "node timeout is retried",
			src:      httpFlow(url, "    timeout: 50ms\n    retry: {max_attempts: 2, backoff: 1ms}\n"),
			handler:  slow,
			wantErr:  `node timeout of 50ms exceeded (after 2 attempts)`,
			trace:    "call:error",
			attempts: 2, hits: 2, transient: true,
			maxTime: 500 * time.Millisecond,
		},
		{
			name:     "run deadline within a retried timeout",
			src:      httpFlow(url, "    timeout: 60ms\n    retry: {max_attempts: 3, backoff: 1ms}\n"),
			lim:      Limits{MaxDuration: 100 * time.Millisecond},
			handler:  slow,
			wantErr:  `node "call": run deadline of 100ms exceeded`,
			trace:    "call:error",
			attempts: 2, hits: 2, transient: true,
			maxTime: 500 * time.Millisecond,
		},
		{
			name: "node timeout stops an expression loop",
			src: `name: t
version: "1"
nodes:
  - id: call
    type: script
    config: {script: "let a = 1..1000; all(a, all(a, all(a, true)))"}
    timeout: 50ms
triggers:
  - {type: event, event_type: ">", target: call}
`,
			wantErr:  `node "call" (script): node timeout of 50ms exceeded`,
			trace:    "call:error",
			attempts: 1, transient: true,
			maxTime: time.Second,
		},
		{
			name:     "on_error continues and sees the error",
			src:      strings.Replace(httpFlow(url, "    on_error: handle\n"), "triggers:", handleError+"triggers:", 1),
			handler:  failing(404),
			want:     `"handled: GET http://127.0.0.1:PORT/x: status 404"`,
			trace:    "call:error,handle:ok",
			attempts: 1, hits: 1,
		},
		{
			name:     "on_error after retries",
			src:      strings.Replace(httpFlow(url, "    retry: {max_attempts: 2, backoff: 1ms}\n    on_error: handle\n"), "triggers:", handleError+"triggers:", 1),
			handler:  failing(500, 500),
			want:     `"handled: GET http://127.0.0.1:PORT/x: status 500"`,
			trace:    "call:error,handle:ok",
			attempts: 2, hits: 2,
		},
		{
			name: "on_error catches an expression error",
			src: `name: t
version: "1"
nodes:
  - id: call
    type: script
    config: {script: "event.payload.base + 1"}
    retry: {max_attempts: 3}
    on_error: handle
` + handleError + `triggers:
  - {type: event, event_type: ">", target: call}
`,
			want:     `"handled: invalid operation: string + int (at expression 1:20) in \"event.payload.base + 1\""`,
			trace:    "call:error,handle:ok",
			attempts: 1,
		},
		{
			name:     "expression error is not transient",
			src:      scriptFlow("event.payload.base + 1"),
			wantErr:  "invalid operation",
			trace:    "s:error",
			attempts: 1,
		},
		{
			name:     "step limit is not transient",
			src:      chainFlow(3, "1"),
			lim:      Limits{MaxSteps: 2},
			wantErr:  "step limit of 2 exceeded",
			trace:    "n0:ok,n1:ok,n2:skipped",
			attempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			if h == nil {
				h = failing()
			}
			srv := newServer(t, h)
			port := func(s string) string { return strings.ReplaceAll(s, "http://127.0.0.1:PORT", srv.URL) }
			p := mustCompile(t, tt.src, tt.lim)
			start := time.Now()
			res := p.Run(context.Background(), Input{Event: event("x", payloadFor(srv, "")), HTTP: srv.Client()}, p.MatchEvent("x")[0].Target)
			if elapsed := time.Since(start); tt.maxTime > 0 && elapsed > tt.maxTime {
				t.Errorf("run took %s, want at most %s", elapsed, tt.maxTime)
			}
			if got := traceIDs(res.Trace); got != tt.trace {
				t.Errorf("trace = %s, want %s (%s)", got, tt.trace, res.Error)
			}
			if len(res.Trace) > 0 && res.Trace[0].Attempts != tt.attempts {
				t.Errorf("attempts = %d, want %d", res.Trace[0].Attempts, tt.attempts)
			}
			if got := srv.hits.Load(); got != tt.hits {
				t.Errorf("server saw %d requests, want %d", got, tt.hits)
			}
			if res.Transient != tt.transient {
				t.Errorf("Transient = %v, want %v", res.Transient, tt.transient)
			}
			if tt.wantErr != "" {
				if res.Status != StatusError || !strings.Contains(res.Error, port(tt.wantErr)) {
					t.Fatalf("got %v %q, want an error containing %q", res.Status, res.Error, port(tt.wantErr))
				}
				return
			}
			if res.Status != StatusOK {
				t.Fatalf("run: %s", res.Error)
			}
			if tt.want != "" {
				jsonEqual(t, res.Output, port(tt.want))
			}
		})
	}
}

// flakyEffects fails the first n calls.
type flakyEffects struct {
	recorder
	n int
}

func (f *flakyEffects) Publish(ctx context.Context, e *eventsv1.Event) error {
	f.recorder.Publish(ctx, e)
	if f.n > 0 {
		f.n--
		return errors.New("bus down")
	}
	return nil
}

func TestEffectErrorsAreTransient(t *testing.T) {
	src := func(nodeKeys string) string {
		return `name: p
version: "1"
nodes:
  - id: emit
    type: publish
    config: {event_type: order.seen}
` + nodeKeys + `triggers:
  - {type: event, event_type: ">", target: emit}
`
	}
	t.Run("retried", func(t *testing.T) {
		fx := &flakyEffects{n: 1}
		res := mustCompile(t, src("    retry: {max_attempts: 2, backoff: 1ms}\n"), Limits{}).Run(context.Background(), Input{Event: event("x", "{}"), Effects: fx}, "emit")
		if res.Status != StatusOK || res.Trace[0].Attempts != 2 || len(fx.events) != 2 || fx.events[0].Id != fx.events[1].Id {
			t.Fatalf("got %v %q attempts %d, %d publishes", res.Status, res.Error, res.Trace[0].Attempts, len(fx.events))
		}
	})
	t.Run("not retried", func(t *testing.T) {
		fx := &flakyEffects{n: 1}
		res := mustCompile(t, src(""), Limits{}).Run(context.Background(), Input{Event: event("x", "{}"), Effects: fx}, "emit")
		if res.Status != StatusError || !strings.Contains(res.Error, "bus down") || !res.Transient {
			t.Fatalf("got %v %q transient %v", res.Status, res.Error, res.Transient)
		}
	})
	t.Run("no effects is not transient", func(t *testing.T) {
		res := mustCompile(t, src("    retry: {max_attempts: 3, backoff: 1ms}\n"), Limits{}).Run(context.Background(), Input{Event: event("x", "{}")}, "emit")
		if res.Status != StatusError || !strings.Contains(res.Error, ErrNoEffects.Error()) || res.Transient || res.Trace[0].Attempts != 1 {
			t.Fatalf("got %v %q transient %v attempts %d", res.Status, res.Error, res.Transient, res.Trace[0].Attempts)
		}
	})
}

// TestCallerCancelIsTransient: a run stopped by its caller can be run again.
func TestCallerCancelIsTransient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := mustCompile(t, chainFlow(1, "1"), Limits{}).Run(ctx, Input{Event: event("x", "{}")}, "n0")
	if res.Status != StatusError || !res.Transient {
		t.Fatalf("got %v %q transient %v", res.Status, res.Error, res.Transient)
	}
}
