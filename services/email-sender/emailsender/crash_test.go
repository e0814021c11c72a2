package emailsender

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greentic/events/pkg/sender"
	"github.com/greentic/events/pkg/sender/sendertest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
)

// replica is one email sender with its own connection, stopped as a crash
// would stop it: the connection closes at once and nothing more is
// acknowledged.
type replica struct {
	rt     *service.Runtime
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, url string, cfg Config) *replica {
	t.Helper()
	rt := servicetest.Runtime(t, url, "test")
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{rt: rt, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Serve(ctx, rt, cfg) }()
	t.Cleanup(r.kill)
	sendertest.WaitReady(t, rt, "email_sender_tenants")
	return r
}

func (r *replica) kill() {
	if r.cancel == nil {
		return
	}
	r.rt.Conn.Close()
	r.cancel()
	<-r.done
	r.cancel = nil
}

// TestCrashWithSendGrid kills the sender at the two points of the issue,
// with the SendGrid SDK talking to a fake SendGrid: after the record of the
// send (the command comes back and is not sent again), and between
// SendGrid's answer and the record (the unknown-outcome policy decides).
func TestCrashWithSendGrid(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		afterRecord  bool
		wantRequests int32
		wantEvent    string
	}{
		{"after the record", sender.UnknownDeadLetter, true, 1, "email.sent"},
		{"after the answer, dead_letter", sender.UnknownDeadLetter, false, 1, "email.failed"},
		{"after the answer, send", sender.UnknownSend, false, 2, "email.sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int32
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Header().Set("X-Message-Id", "sg-crash")
				w.WriteHeader(http.StatusAccepted)
			}))
			defer fake.Close()
			srv, rt := sendertest.Bus(t)
			cfg := serviceConfig(ProviderSendGrid, map[string]string{EnvAPIKey: "SG.crash"}, fake.URL)
			cfg.UnknownOutcome = tc.policy
			cfg.AckWait = time.Second
			cfg.SendTimeout = 200 * time.Millisecond
			crashed := make(chan struct{})
			hook := func(ctx context.Context, id string) bool {
				close(crashed)
				<-ctx.Done()
				return true
			}
			faulty := cfg
			if tc.afterRecord {
				faulty.Faults = &sender.Faults{AfterRecord: hook}
			} else {
				faulty.Faults = &sender.Faults{AfterAnswer: hook}
			}
			first := startReplica(t, srv.URL(), faulty)
			publish(t, rt, welcome())
			select {
			case <-crashed:
			case <-time.After(15 * time.Second):
				t.Fatal("the sender never reached the crash point")
			}
			first.kill()
			startReplica(t, srv.URL(), cfg)
			ev := sendertest.WaitEvent(t, rt, tc.wantEvent)
			if n := requests.Load(); n != tc.wantRequests {
				t.Fatalf("SendGrid got %d requests, want %d", n, tc.wantRequests)
			}
			if tc.wantEvent == "email.failed" {
				var pl map[string]any
				_ = json.Unmarshal(ev.Payload, &pl)
				if pl["reason"] != sender.ReasonUnknown {
					t.Fatalf("email.failed reason %v, want %s", pl["reason"], sender.ReasonUnknown)
				}
			}
		})
	}
}
