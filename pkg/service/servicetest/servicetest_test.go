package servicetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greentic/events/pkg/natstest"
)

func TestRuntime(t *testing.T) {
	s := natstest.RunServer(t)
	rt := Runtime(t, s.URL(), "stt")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if rt.Topology.Env != "stt" {
		t.Errorf("topology env = %q, want stt", rt.Topology.Env)
	}
	if err := rt.Topology.Check(ctx, rt.JS); err != nil {
		t.Errorf("topology not ensured: %v", err)
	}
	if failed := rt.Ready.Check(ctx); len(failed) != 0 {
		t.Errorf("runtime not ready: %v", failed)
	}
}

func TestGo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stopEarly bool
	}{
		{"stopped at cleanup", false},
		{"stopped by the caller", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls, ended atomic.Int32
			t.Run("inner", func(t *testing.T) {
				stop := Go(t, func(ctx context.Context) error {
					calls.Add(1)
					<-ctx.Done()
					ended.Add(1)
					return nil
				})
				if tc.stopEarly {
					stop()
					if ended.Load() != 1 {
						t.Error("stop returned before fn did")
					}
				}
			})
			if calls.Load() != 1 || ended.Load() != 1 {
				t.Errorf("fn ran %d times and ended %d times, want once each by the end of the test", calls.Load(), ended.Load())
			}
		})
	}
}
