package adminapi

import (
	"context"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greentic/events/pkg/bus"
)

type rpcMetrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRPCMetrics(reg prometheus.Registerer) (*rpcMetrics, error) {
	m := &rpcMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_admin_calls_total",
			Help: "Admin API calls by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greentic_admin_call_duration_seconds",
			Help:    "Duration of admin API calls by method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
	}
	var err error
	if m.calls, err = bus.Register(reg, m.calls); err != nil {
		return nil, err
	}
	if m.duration, err = bus.Register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// public methods need no token: health checks (Kubernetes probes) and
// reflection (the schema is no secret).
func public(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.")
}

// unaryInterceptor logs and measures every call, authenticates it, bounds
// its deadline and turns a panic into Internal.
func (s *Server) unaryInterceptor(m *rpcMetrics) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		p := Principal{}
		defer s.settle(m, info.FullMethod, &p, time.Now(), &err)
		if !public(info.FullMethod) {
			if p, err = s.tokens.authenticate(ctx); err != nil {
				return nil, err
			}
			ctx = withPrincipal(ctx, p)
		}
		ctx, cancel := s.bound(ctx)
		defer cancel()
		return handler(ctx, req)
	}
}

// streamInterceptor does the same for streams (reflection, health watch).
func (s *Server) streamInterceptor(m *rpcMetrics) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		p := Principal{}
		defer s.settle(m, info.FullMethod, &p, time.Now(), &err)
		if !public(info.FullMethod) {
			if p, err = s.tokens.authenticate(ss.Context()); err != nil {
				return err
			}
			ss = &principalStream{ServerStream: ss, ctx: withPrincipal(ss.Context(), p)}
		}
		return handler(srv, ss)
	}
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (p *principalStream) Context() context.Context { return p.ctx }

// settle ends a call: a panic of its handler becomes Internal (logged with
// its stack, never shown to the caller), and the call is logged and
// measured. It must be deferred directly, for recover to see the panic.
func (s *Server) settle(m *rpcMetrics, method string, p *Principal, start time.Time, err *error) {
	if r := recover(); r != nil {
		s.log.Error("admin call panicked", "method", method, "panic", r, "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "internal error")
	}
	s.observe(m, method, *p, start, *err)
}

// bound gives a call the configured deadline when it has none or a later one.
func (s *Server) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.cfg.CallTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.CallTimeout)
}

func (s *Server) observe(m *rpcMetrics, method string, p Principal, start time.Time, err error) {
	code := status.Code(err)
	elapsed := time.Since(start)
	m.calls.WithLabelValues(method, code.String()).Inc()
	m.duration.WithLabelValues(method).Observe(elapsed.Seconds())
	if public(method) && err == nil {
		return
	}
	attrs := []any{"method", method, "code", code.String(), "duration_ms", float64(elapsed.Microseconds()) / 1000, "principal", p.Name}
	switch code {
	case codes.OK:
		s.log.Info("admin call", attrs...)
	case codes.Internal, codes.Unknown, codes.Unavailable, codes.DataLoss:
		s.log.Error("admin call failed", append(attrs, "err", status.Convert(err).Message())...)
	default:
		s.log.Warn("admin call refused", append(attrs, "err", status.Convert(err).Message())...)
	}
}
