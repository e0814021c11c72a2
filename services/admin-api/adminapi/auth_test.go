package adminapi

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
)

func TestParseTokens(t *testing.T) {
	ts, err := ParseTokens("# comment\noperator=" + operatorToken + "\n ci@tenant:acme=" + acmeToken + " ,\n")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := ts.lookup(acmeToken); !ok || p.Tenant != "acme" || p.Name != "ci" {
		t.Fatalf("acme token: %+v %v", p, ok)
	}
	if p, ok := ts.lookup(operatorToken); !ok || !p.Operator() {
		t.Fatalf("operator token: %+v %v", p, ok)
	}
	if _, ok := ts.lookup(operatorToken + "x"); ok {
		t.Fatal("a longer token was accepted")
	}
	for _, bad := range []string{"", "# only a comment", "operator", "operator=short", "root=" + operatorToken, "tenant:a.b=" + acmeToken, "operator=" + operatorToken + ",tenant:acme=" + operatorToken} {
		_, err := ParseTokens(bad)
		if err == nil {
			t.Errorf("%q: accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), operatorToken) {
			t.Errorf("%q: error shows the token: %v", bad, err)
		}
	}
}

func TestCallsNeedAToken(t *testing.T) {
	h := newHarness(t)
	_, err := h.anonymous.Tenants.ListTenants(h.anonymous.ctx(t), &adminv1.ListTenantsRequest{})
	wantCode(t, err, codes.Unauthenticated)
	wrong := h.dial("wrong-token-0123456789abc")
	_, err = wrong.Tenants.ListTenants(wrong.ctx(t), &adminv1.ListTenantsRequest{})
	wantCode(t, err, codes.Unauthenticated)
	// Health needs no token (Kubernetes probes send none).
	res, err := healthpb.NewHealthClient(h.anonymous.conn).Check(h.anonymous.ctx(t), &healthpb.HealthCheckRequest{})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", res, err)
	}
}
