package adminapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
)

// TestInterceptor: a panicking handler answers Internal without its
// panic text; a call without a deadline gets the configured one, a longer
// one is cut to it; every call is counted by method and code.
func TestInterceptor(t *testing.T) {
	h := newHarness(t)
	m, err := newRPCMetrics(h.rt.Registry)
	if err != nil {
		t.Fatal(err)
	}
	in := h.srv.unaryInterceptor(m)
	info := &grpc.UnaryServerInfo{FullMethod: "/greentic.admin.v1.TenantService/GetTenant"}
	authed := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+operatorToken))

	_, err = in(authed, nil, info, func(context.Context, any) (any, error) { panic("secret detail") })
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "secret detail") {
		t.Fatalf("panic answered %v", err)
	}

	var left time.Duration
	seeDeadline := func(ctx context.Context, _ any) (any, error) {
		d, ok := ctx.Deadline()
		if !ok {
			t.Fatal("the handler runs without a deadline")
		}
		left = time.Until(d)
		return nil, nil
	}
	if _, err := in(authed, nil, info, seeDeadline); err != nil || left > h.srv.cfg.CallTimeout || left < h.srv.cfg.CallTimeout-time.Second {
		t.Fatalf("no deadline given: handler saw %s (%v), want about %s", left, err, h.srv.cfg.CallTimeout)
	}
	long, cancel := context.WithTimeout(authed, time.Hour)
	defer cancel()
	if _, err := in(long, nil, info, seeDeadline); err != nil || left > h.srv.cfg.CallTimeout {
		t.Fatalf("an hour asked: handler saw %s (%v)", left, err)
	}
	short, cancel2 := context.WithTimeout(authed, 2*time.Second)
	defer cancel2()
	if _, err := in(short, nil, info, seeDeadline); err != nil || left > 2*time.Second {
		t.Fatalf("2s asked: handler saw %s (%v)", left, err)
	}

	_, err = h.anonymous.Tenants.GetTenant(h.anonymous.ctx(t), &adminv1.GetTenantRequest{Id: "acme"})
	wantCode(t, err, codes.Unauthenticated)
	if n := testutil.ToFloat64(m.calls.WithLabelValues(info.FullMethod, codes.Internal.String())); n != 1 {
		t.Fatalf("%v Internal calls counted, want 1", n)
	}
	if n := testutil.ToFloat64(m.calls.WithLabelValues(info.FullMethod, codes.Unauthenticated.String())); n != 1 {
		t.Fatalf("%v Unauthenticated calls counted, want 1", n)
	}
}
