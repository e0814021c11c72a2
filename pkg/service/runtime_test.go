package service

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/natstest"
)

// connect opens a service connection (reconnecting forever) closed at cleanup.
func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := Connect(Common{NATSURL: url}, "service-test", testLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newRuntime(t *testing.T, nc *nats.Conn) *Runtime {
	t.Helper()
	topo := bus.DefaultTopology("rt")
	topo.Memory = true
	rt, err := NewRuntime(topo, nc, testLog, NewRegistry(), NewReadiness())
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func failing(t *testing.T, rt *Runtime) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rt.Ready.Check(ctx)
}

func checkNames(m map[string]string) string {
	var names []string
	for _, n := range []string{"nats", "topology"} {
		if _, ok := m[n]; ok {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

func TestRuntimeReadiness(t *testing.T) {
	s := natstest.RunServer(t)
	rt := newRuntime(t, connect(t, s.URL()))
	if got := checkNames(failing(t, rt)); got != "topology" {
		t.Fatalf("failing checks before EnsureTopology = %q, want topology", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if err := rt.EnsureTopology(ctx); err != nil {
		t.Fatalf("EnsureTopology: %v", err)
	}
	if f := failing(t, rt); len(f) != 0 {
		t.Fatalf("failing checks after EnsureTopology = %v, want none", f)
	}
	if err := rt.Topology.Check(ctx, rt.JS); err != nil {
		t.Fatalf("topology after EnsureTopology: %v", err)
	}

	s.Stop()
	natstest.Eventually(t, 10*time.Second, "nats check fails after the server stopped", func() bool {
		return strings.Contains(failing(t, rt)["nats"], "not connected")
	})
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "nats check passes after the server came back", func() bool {
		return len(failing(t, rt)) == 0
	})
}

func TestEnsureTopologyWaitsForServer(t *testing.T) {
	s := natstest.RunServer(t)
	url := s.URL()
	s.Stop()
	rt := newRuntime(t, connect(t, url))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- rt.EnsureTopology(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("EnsureTopology returned %v while the server is down", err)
	case <-time.After(300 * time.Millisecond):
	}
	if got := checkNames(failing(t, rt)); got != "nats,topology" {
		t.Fatalf("failing checks while the server is down = %q, want nats,topology", got)
	}

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("EnsureTopology after restart: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("EnsureTopology did not succeed within 20s of the server coming up")
	}
	if f := failing(t, rt); len(f) != 0 {
		t.Fatalf("failing checks after EnsureTopology = %v, want none", f)
	}
	_, js := natstest.Connect(t, s.URL())
	if err := rt.Topology.Check(ctx, js); err != nil {
		t.Fatalf("topology not created: %v", err)
	}
}

func TestEnsureTopologyStopsWithContext(t *testing.T) {
	s := natstest.RunServer(t)
	url := s.URL()
	s.Stop()
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{
			name: "cancelled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(300*time.Millisecond, cancel)
				return ctx, cancel
			},
			want: context.Canceled,
		},
		{
			name: "deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			want: context.DeadlineExceeded,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntime(t, connect(t, url))
			ctx, cancel := tc.ctx()
			t.Cleanup(cancel)
			start := time.Now()
			err := rt.EnsureTopology(ctx)
			if !errors.Is(err, tc.want) {
				t.Fatalf("EnsureTopology = %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("EnsureTopology took %s to notice the context", d)
			}
			if _, ok := failing(t, rt)["topology"]; !ok {
				t.Errorf("topology check passes although EnsureTopology failed")
			}
		})
	}
}

// logBuffer is a log destination that can be read while a service writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr returns a loopback address nobody listens on (Run listens itself).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func runCommon(t *testing.T, natsURL, opsAddr string) Common {
	return parseCommon(t, []string{"-nats-url=" + natsURL, "-ops-addr=" + opsAddr, "-env=runtest", "-shutdown-timeout=5s"}, env{})
}

// startRun runs Run in a goroutine; the returned channel yields its result.
func startRun(t *testing.T, ctx context.Context, c Common, logs *logBuffer, body Body) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "svc-test", c, logs, body) }()
	return done
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s")
		return nil
	}
}

func assertClosed(t *testing.T, addr string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("ops address %s still accepts connections after Run returned", addr)
	}
}

func TestRunLifecycle(t *testing.T) {
	s := natstest.RunServer(t)
	ops := freeAddr(t)
	c := runCommon(t, s.URL(), ops)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	started := make(chan error, 1)
	bodyEnd := make(chan error, 1)
	var logs logBuffer
	done := startRun(t, ctx, c, &logs, func(ctx context.Context, rt *Runtime) error {
		if rt.Topology.Env != "runtest" || rt.ShutdownTimeout != 5*time.Second {
			started <- errors.New("runtime not built from the config")
		} else {
			started <- rt.Topology.Check(ctx, rt.JS)
		}
		<-ctx.Done()
		bodyEnd <- ctx.Err()
		return nil
	})

	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("body started with an unusable runtime: %v", err)
		}
	case err := <-done:
		t.Fatalf("Run returned %v before the body started", err)
	case <-time.After(15 * time.Second):
		t.Fatal("body did not start within 15s")
	}
	natstest.Eventually(t, 10*time.Second, "/readyz is 200", func() bool { return get(t, "http://"+ops+"/readyz").code == http.StatusOK })
	if r := get(t, "http://"+ops+"/healthz"); r.code != http.StatusOK {
		t.Errorf("/healthz = %d", r.code)
	}
	if r := get(t, "http://"+ops+"/metrics"); !bytes.Contains(r.body, []byte("go_goroutines")) {
		t.Errorf("/metrics lacks the Go runtime metrics")
	}
	if n := s.NumClients(); n != 1 {
		t.Errorf("server has %d clients while the service runs, want 1", n)
	}

	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after cancellation = %v, want nil", err)
	}
	select {
	case err := <-bodyEnd:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("body context ended with %v, want context.Canceled", err)
		}
	default:
		t.Error("Run returned before the body did")
	}
	assertClosed(t, ops)
	natstest.Eventually(t, 10*time.Second, "the connection is closed", func() bool { return s.NumClients() == 0 })

	out := logs.String()
	for _, want := range []string{`"msg":"service starting"`, `"msg":"service stopped"`, `"service":"svc-test"`, `"env":"runtest"`, `"ops_addr":"` + ops + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
}

func TestRunWaitsForBus(t *testing.T) {
	s := natstest.RunServer(t)
	url := s.URL()
	s.Stop()
	ops := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	started := make(chan struct{})
	var logs logBuffer
	done := startRun(t, ctx, runCommon(t, url, ops), &logs, func(ctx context.Context, _ *Runtime) error {
		close(started)
		<-ctx.Done()
		return nil
	})

	var r response
	natstest.Eventually(t, 10*time.Second, "the ops server answers while the bus is down", func() bool {
		c, err := net.DialTimeout("tcp", ops, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if r = get(t, "http://"+ops+"/healthz"); r.code != http.StatusOK {
		t.Errorf("/healthz while the bus is down = %d, want 200", r.code)
	}
	r = get(t, "http://"+ops+"/readyz")
	if st := decodeStatus(t, r); r.code != http.StatusServiceUnavailable || checkNames(st.Checks) != "nats,topology" {
		t.Errorf("/readyz while the bus is down = %d %s, want 503 naming nats and topology", r.code, r.body)
	}
	select {
	case <-started:
		t.Fatal("body started before the topology exists")
	default:
	}

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("body did not start within 20s of the bus coming up")
	}
	natstest.Eventually(t, 10*time.Second, "/readyz is 200", func() bool { return get(t, "http://"+ops+"/readyz").code == http.StatusOK })
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestRunBodyError(t *testing.T) {
	s := natstest.RunServer(t)
	ops := freeAddr(t)
	boom := errors.New("boom")
	var logs logBuffer
	done := startRun(t, context.Background(), runCommon(t, s.URL(), ops), &logs, func(context.Context, *Runtime) error {
		return boom
	})
	if err := waitRun(t, done); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the body's error", err)
	}
	assertClosed(t, ops)
	natstest.Eventually(t, 10*time.Second, "the connection is closed", func() bool { return s.NumClients() == 0 })
	if !strings.Contains(logs.String(), `"err":"boom"`) {
		t.Errorf("the stop log does not carry the body's error:\n%s", logs.String())
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	s := natstest.RunServer(t)
	for _, tc := range []struct {
		name   string
		modify func(*Common)
		want   string
	}{
		{"bad log level", func(c *Common) { c.LogLevel = "loud" }, "GREENTIC_LOG_LEVEL"},
		{"bad env", func(c *Common) { c.Env = "a b" }, "GREENTIC_ENV"},
		{"bad ops addr", func(c *Common) { c.OpsAddr = "nowhere" }, "GREENTIC_OPS_ADDR"},
		{"zero replicas", func(c *Common) { c.StreamReplicas = 0 }, "stream replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := runCommon(t, s.URL(), freeAddr(t))
			tc.modify(&c)
			var called bool
			var logs logBuffer
			err := waitRun(t, startRun(t, context.Background(), c, &logs, func(context.Context, *Runtime) error {
				called = true
				return nil
			}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error naming %s", err, tc.want)
			}
			if verr := c.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Run = %v, want Validate's error %v", err, verr)
			}
			if called {
				t.Error("body ran with an invalid config")
			}
		})
	}
	v, err := s.Varz(&server.VarzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.TotalConnections != 0 {
		t.Errorf("server saw %d connections from invalid configs, want 0", v.TotalConnections)
	}
}

func TestRunOpsAddrInUse(t *testing.T) {
	s := natstest.RunServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var logs logBuffer
	err = waitRun(t, startRun(t, context.Background(), runCommon(t, s.URL(), ln.Addr().String()), &logs, func(context.Context, *Runtime) error {
		t.Error("body ran without an ops server")
		return nil
	}))
	if err == nil || !strings.Contains(err.Error(), "GREENTIC_OPS_ADDR") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Run = %v, want a listen error naming GREENTIC_OPS_ADDR and the address", err)
	}
	natstest.Eventually(t, 10*time.Second, "the connection is closed", func() bool { return s.NumClients() == 0 })
}

func TestMainProgram(t *testing.T) {
	program := func(body Body, validate func() error) (Program, *time.Duration) {
		var poll time.Duration
		return Program{
			Name:     "svc-main",
			OpsAddr:  ":9999",
			Flags:    func(f *Flags) { f.Duration(&poll, "poll-interval", time.Second, "how often to poll") },
			Validate: validate,
			Body:     body,
		}, &poll
	}
	t.Run("help", func(t *testing.T) {
		p, _ := program(nil, nil)
		var out bytes.Buffer
		err := Main(context.Background(), p, []string{"-h"}, &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("Main(-h) = %v, want flag.ErrHelp", err)
		}
		for _, want := range []string{"Usage of svc-main", "GREENTIC_NATS_URL", "GREENTIC_POLL_INTERVAL", `(default ":9999")`} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("usage lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("service settings validated before connecting", func(t *testing.T) {
		s := natstest.RunServer(t)
		bad := errors.New("poll interval too short")
		p, _ := program(nil, func() error { return bad })
		err := Main(context.Background(), p, []string{"-nats-url=" + s.URL(), "-ops-addr=" + freeAddr(t)}, &bytes.Buffer{})
		if !errors.Is(err, bad) {
			t.Fatalf("Main = %v, want the Validate error", err)
		}
		if v, _ := s.Varz(&server.VarzOptions{}); v.TotalConnections != 0 {
			t.Errorf("Main connected %d times before failing validation", v.TotalConnections)
		}
	})
	t.Run("runs from NATS_URL and flags", func(t *testing.T) {
		s := natstest.RunServer(t)
		t.Setenv("GREENTIC_NATS_URL", "") // restored at cleanup
		os.Unsetenv("GREENTIC_NATS_URL")
		t.Setenv("NATS_URL", s.URL())
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		var gotPoll time.Duration
		var poll *time.Duration
		var p Program
		p, poll = program(func(ctx context.Context, rt *Runtime) error {
			gotPoll = *poll
			cancel()
			<-ctx.Done()
			return nil
		}, nil)
		err := Main(ctx, p, []string{"-ops-addr=" + freeAddr(t), "-env=maintest", "-poll-interval=3s"}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("Main = %v", err)
		}
		if gotPoll != 3*time.Second {
			t.Errorf("body saw poll interval %s, want 3s", gotPoll)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		_, js := natstest.Connect(t, s.URL())
		if err := bus.DefaultTopology("maintest").Check(cctx, js); err != nil {
			t.Errorf("Main did not create the topology on the NATS_URL server: %v", err)
		}
	})
}
