package adminapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/greentic/events/pkg/bus"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// Server holds what the admin services share.
type Server struct {
	cfg    Config
	rt     *service.Runtime
	store  *tenantkv.Store
	tokens *Tokens
	log    *slog.Logger
	now    func() time.Time
}

// NewServer opens the configuration buckets (they must exist: see
// Runtime.EnsureTopology).
func NewServer(ctx context.Context, rt *service.Runtime, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tokens, err := cfg.LoadTokens()
	if err != nil {
		return nil, err
	}
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, rt: rt, store: store, tokens: tokens, log: rt.Log.With("component", Name), now: time.Now}, nil
}

// GRPC builds the gRPC server with every admin service, health and
// reflection registered.
func (s *Server) GRPC() (*grpc.Server, *health.Server, error) {
	m, err := newRPCMetrics(s.rt.Registry)
	if err != nil {
		return nil, nil, err
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryInterceptor(m)),
		grpc.ChainStreamInterceptor(s.streamInterceptor(m)),
		grpc.MaxRecvMsgSize(8 << 20),
	}
	if s.cfg.TLSCert != "" {
		tc, err := s.cfg.tlsConfig()
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	g := grpc.NewServer(opts...)
	adminv1.RegisterTenantServiceServer(g, &tenantServer{Server: s})
	adminv1.RegisterSourceServiceServer(g, &sourceServer{Server: s})
	adminv1.RegisterFlowServiceServer(g, &flowServer{Server: s})
	adminv1.RegisterScheduleServiceServer(g, &scheduleServer{Server: s})
	adminv1.RegisterDeadLetterServiceServer(g, &deadLetterServer{Server: s})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	return g, hs, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", service.EnvName("admin-tls-cert"), service.EnvName("admin-tls-key"), err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLSClientCA != "" {
		pem, err := os.ReadFile(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", service.EnvName("admin-tls-client-ca"), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in %s", service.EnvName("admin-tls-client-ca"), c.TLSClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Serve runs the admin API until ctx ends, then stops gracefully within
// the runtime's shutdown timeout.
func Serve(ctx context.Context, rt *service.Runtime, cfg Config) error {
	s, err := NewServer(ctx, rt, cfg)
	if err != nil {
		return err
	}
	g, hs, err := s.GRPC()
	if err != nil {
		return err
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			return fmt.Errorf("listen on %s (%s): %w", cfg.GRPCAddr, service.EnvName("admin-grpc-addr"), err)
		}
	}
	rt.Ready.Add("admin_grpc", func(context.Context) error { return nil })
	s.log.Info("admin api serving", "addr", ln.Addr().String(), "tls", cfg.TLSCert != "", "mtls", cfg.TLSClientCA != "", "tokens", s.tokens.Len())
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin api: %w", err)
	case <-ctx.Done():
	}
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(rt.ShutdownTimeout):
		s.log.Warn("admin api: calls still running at the shutdown timeout; stopping them")
		g.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// topo is the bus topology of the environment served.
func (s *Server) topo() bus.Topology { return s.rt.Topology }
