package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
)

// connect resolves the address, token and TLS settings and creates the
// clients; nothing is dialled until the first call.
func (c *cli) connect() error {
	if c.g.addr == "" {
		c.g.addr = c.getenv(EnvAddr)
	}
	if c.g.addr == "" {
		c.g.addr = DefaultAddr
	}
	tok, err := c.readToken()
	if err != nil {
		return err
	}
	c.token = tok
	creds := insecure.NewCredentials()
	if c.g.useTLS || c.g.ca != "" || c.g.cert != "" {
		tc, err := c.tlsConfig()
		if err != nil {
			return err
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(c.g.addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithUnaryInterceptor(c.intercept),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
	)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", c.g.addr, err)
	}
	c.conn = conn
	c.tenants = adminv1.NewTenantServiceClient(conn)
	c.sources = adminv1.NewSourceServiceClient(conn)
	c.flows = adminv1.NewFlowServiceClient(conn)
	c.schedules = adminv1.NewScheduleServiceClient(conn)
	c.dlq = adminv1.NewDeadLetterServiceClient(conn)
	return nil
}

func (c *cli) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.g.ca != "" {
		pem, err := os.ReadFile(c.g.ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca: no PEM certificate in %s", c.g.ca)
		}
		tc.RootCAs = pool
	}
	if c.g.cert != "" {
		cert, err := tls.LoadX509KeyPair(c.g.cert, c.g.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// intercept gives every call the token and its own deadline. The token
// travels as call metadata rather than per-RPC credentials so that
// plaintext loopback (standalone) works as well as TLS.
func (c *cli) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if c.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
	}
	ctx, cancel := context.WithTimeout(ctx, c.g.timeout)
	defer cancel()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// fieldViolations are the google.rpc.BadRequest details of st.
func fieldViolations(st *status.Status) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

// hint suggests what to do about the common failures.
func (c *cli) hint(st *status.Status) string {
	switch st.Code() {
	case codes.Unauthenticated:
		if c.token == "" {
			return "no token given: pass --token or --token-file, or set " + EnvToken + " (standalone writes its operator token to " + DefaultTokenFile + ")"
		}
	case codes.Unavailable:
		// grpc-go's wording for a failed connection, as opposed to a
		// server that answered Unavailable itself.
		if !strings.Contains(st.Message(), "connection error") {
			return ""
		}
		return fmt.Sprintf("is the admin API running at %s? (--addr, %s; --tls if it serves TLS)", c.g.addr, EnvAddr)
	case codes.DeadlineExceeded:
		return fmt.Sprintf("the call took longer than --timeout %s", c.g.timeout)
	case codes.Unimplemented:
		return "the server does not offer this method: is it an older admin API?"
	}
	return ""
}
