package adminapi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// Tokens of the test harness.
const (
	operatorToken = "operator-token-0123456789"
	acmeToken     = "acme-token-0123456789abc"
	globexToken   = "globex-token-0123456789a"
	testEnv       = "test"
)

const testTokens = "operator=" + operatorToken + ",tenant:acme=" + acmeToken + ",tenant:globex=" + globexToken

// harness is an admin API served over loopback TCP on an embedded
// nats-server with JetStream.
type harness struct {
	t     *testing.T
	rt    *service.Runtime
	srv   *Server
	addr  string
	store *tenantkv.Store
	// operator, acme and globex are clients with the respective tokens.
	operator, acme, globex *client
	// anonymous sends no token.
	anonymous *client
}

// client bundles the admin clients of one connection and token.
type client struct {
	conn      *grpc.ClientConn
	token     string
	Tenants   adminv1.TenantServiceClient
	Sources   adminv1.SourceServiceClient
	Flows     adminv1.FlowServiceClient
	Schedules adminv1.ScheduleServiceClient
	DLQ       adminv1.DeadLetterServiceClient
}

func newHarness(t *testing.T) *harness {
	return newHarnessWith(t, natstest.RunServer(t).URL(), func(*Config) {})
}

func newHarnessWith(t *testing.T, natsURL string, edit func(*Config)) *harness {
	t.Helper()
	rt := servicetest.Runtime(t, natsURL, testEnv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := ParseTokens(testTokens)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listener: ln, ParsedTokens: ts, CallTimeout: 10 * time.Second, ReplayRate: 1000}
	edit(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := NewServer(ctx, rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := srv.GRPC()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	h := &harness{t: t, rt: rt, srv: srv, addr: ln.Addr().String(), store: srv.store}
	h.operator = h.dial(operatorToken)
	h.acme = h.dial(acmeToken)
	h.globex = h.dial(globexToken)
	h.anonymous = h.dial("")
	return h
}

// dial connects a client sending token ("" for none).
func (h *harness) dial(token string) *client {
	h.t.Helper()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	return &client{
		conn: conn, token: token,
		Tenants: adminv1.NewTenantServiceClient(conn), Sources: adminv1.NewSourceServiceClient(conn),
		Flows: adminv1.NewFlowServiceClient(conn), Schedules: adminv1.NewScheduleServiceClient(conn),
		DLQ: adminv1.NewDeadLetterServiceClient(conn),
	}
}

// ctx is a call context carrying the client's token, bounded to 10s.
func (c *client) ctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if c.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
	}
	return ctx
}

// wantCode fails unless err has code.
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

// wantField fails unless err is InvalidArgument with a BadRequest field
// violation naming field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("want InvalidArgument naming %s, got %v", field, err)
	}
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
				fields = append(fields, v.GetField())
			}
		}
	}
	t.Fatalf("want a field violation of %s, got fields %v in %v", field, fields, errors.New(st.Message()))
}
