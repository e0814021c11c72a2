package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/natstest"
)

// TestBusStopsMidLoad stops the NATS server while clients keep sending:
// every 2xx the ingress gave must name an event that is in the stream once
// the server is back, and the outage must be answered with 503 and
// Retry-After, never with a 2xx.
func TestBusStopsMidLoad(t *testing.T) {
	f := setup(t, 500*time.Millisecond)
	const clients = 16
	var (
		mu        sync.Mutex
		accepted  = map[string]bool{}
		statuses  = map[int]int{}
		seq       atomic.Uint64
		stopped   atomic.Bool
		during503 atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				id := "load-" + strconv.FormatUint(seq.Add(1), 10)
				body := []byte(`{"type":"order.created","id":"` + id + `"}`)
				req, _ := http.NewRequest(http.MethodPost, f.base+"/v1/webhooks/demo/generic", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				for k, v := range signed(body) {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("request %s: %v", id, err)
					return
				}
				var out Accepted
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode >= 200 && resp.StatusCode < 300 {
					accepted[out.EventID] = true
				}
				mu.Unlock()
				switch resp.StatusCode {
				case http.StatusAccepted:
				case http.StatusServiceUnavailable:
					if resp.Header.Get("Retry-After") == "" {
						t.Errorf("503 without Retry-After")
					}
					if stopped.Load() {
						during503.Add(1)
					}
				default:
					t.Errorf("unexpected status %d", resp.StatusCode)
				}
			}
		})
	}
	time.Sleep(400 * time.Millisecond)
	f.srv.Stop()
	stopped.Store(true)
	time.Sleep(1500 * time.Millisecond)
	if err := f.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // some requests after the restart too
	cancel()
	wg.Wait()
	t.Logf("answers: %v", statuses)
	if statuses[http.StatusAccepted] == 0 || during503.Load() == 0 {
		t.Fatalf("the load did not cross the outage (answers %v)", statuses)
	}

	// Every accepted event id is in the stream.
	nc, js := natstest.Connect(t, f.srv.URL())
	defer nc.Close()
	stored := map[string]bool{}
	natstest.Eventually(t, 10*time.Second, "the stream to be readable", func() bool {
		_, err := js.Stream(context.Background(), f.rt.Topology.EventsStream())
		return err == nil
	})
	s, err := js.Stream(context.Background(), f.rt.Topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for sq := info.State.FirstSeq; sq <= info.State.LastSeq && info.State.Msgs > 0; sq++ {
		m, err := s.GetMsg(context.Background(), sq)
		if err != nil {
			continue // a gap
		}
		stored[m.Header.Get(bus.HeaderEventID)] = true
	}
	missing := 0
	for id := range accepted {
		if !stored[id] {
			missing++
			if missing <= 5 {
				t.Errorf("event %s was answered 2xx but is not in the stream", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d accepted events are missing from the stream", missing, len(accepted))
	}
	t.Logf("%d accepted events, all stored (%d in the stream)", len(accepted), len(stored))
}
