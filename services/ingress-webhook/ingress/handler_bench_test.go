package ingress

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
)

// encodingPublisher does the publisher's own work (validation, encoding)
// without a bus, so the benchmark measures the handler's CPU per request.
type encodingPublisher struct{}

func (encodingPublisher) PublishEvent(_ context.Context, e *eventsv1.Event) (bus.Published, error) {
	if _, err := bus.EventSubject("dev", e.Tenant, e.EventType); err != nil {
		return bus.Published{}, err
	}
	_, err := proto.Marshal(e)
	return bus.Published{}, err
}

// BenchmarkHandler is the ingress's CPU per webhook, without the bus round
// trip; make bench measures the whole path against a baseline.
func BenchmarkHandler(b *testing.B) {
	reg := tenant.NewRegistry()
	reg.PutTenant(tenant.Tenant{ID: "demo", RateLimit: tenant.RateLimit{PerSecond: 1e9, Burst: 1e9}})
	src := genericSource("demo", "generic")
	src.EventID = tenant.ValueFrom{}
	src.MaxBodyBytes = 0
	reg.PutSource(src)
	h, err := NewHandler(Config{PublishTimeout: 1e9, MaxBodyBytes: 1 << 20, RetryAfter: 5e9, MaxEventsPerRequest: 10},
		Deps{Registry: reg, Publisher: encodingPublisher{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"type":"order.created","id":"o-1","total":42.5,"currency":"EUR","items":[{"sku":"A-1","qty":2}]}`)
	sig := "sha256=" + signature.SignHMACSHA256(body, secret, "hex")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/demo/generic", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Greentic-Signature", sig)
		req.Header.Set("X-Request-Id", strconv.Itoa(i))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("answer %d %s", w.Code, w.Body)
		}
		_, _ = io.Copy(io.Discard, w.Body)
	}
}
