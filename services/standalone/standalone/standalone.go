// Package standalone runs the whole of Greentic Events in one process: an
// embedded nats-server with JetStream and every service on one shared
// connection, metrics registry and ops server. It is what `make run` starts
// and what small installs use.
package standalone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/greentic/events/pkg/bundle"
	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant/tenantkv"
	"github.com/greentic/events/services/admin-api/adminapi"
	"github.com/greentic/events/services/email-sender/emailsender"
	"github.com/greentic/events/services/flow-executor/executor"
	"github.com/greentic/events/services/ingress-webhook/ingress"
	"github.com/greentic/events/services/sms-sender/smssender"
	"github.com/greentic/events/services/timer/timer"
)

// Name is the program name.
const Name = "greentic-events"

// Config of standalone mode.
type Config struct {
	Env             string
	DataDir         string
	NATSAddr        string // client listen address of the embedded nats-server
	OpsAddr         string
	Bundle          string // bundle applied at start; empty for none
	LogLevel        string
	ShutdownTimeout time.Duration

	Ingress  ingress.Config
	Executor executor.Config
	Timer    timer.Config
	Email    emailsender.Config
	SMS      smssender.Config
	Admin    adminapi.Config

	// OpsListener, when set, is used instead of OpsAddr (tests).
	OpsListener net.Listener
	// Started, when set, is called once everything serves.
	Started func(Endpoints)
}

// Endpoints are the addresses standalone serves on.
type Endpoints struct {
	NATSURL string
	Ingress string
	Ops     string
	Admin   string
	// AdminTokenFile holds the generated operator token when no admin
	// token is configured.
	AdminTokenFile string
}

// RegisterFlags defines the flags of standalone, including those of the
// services it runs, with local defaults.
func (c *Config) RegisterFlags(f *service.Flags) {
	f.String(&c.Env, "env", "dev", "environment name; selects subjects, streams and buckets")
	f.String(&c.DataDir, "data-dir", ".greentic/data", "directory of the embedded JetStream store")
	f.String(&c.NATSAddr, "nats-addr", "127.0.0.1:4222", "client listen address of the embedded nats-server")
	f.String(&c.OpsAddr, "ops-addr", "127.0.0.1:9100", "listen address of /metrics, /healthz and /readyz")
	f.String(&c.Bundle, "bundle", "examples/bundle.yaml", "configuration bundle applied at start (empty: none)")
	f.String(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.Duration(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long shutdown may take")
	c.Ingress.RegisterFlags(f)
	c.Executor.RegisterFlags(f)
	c.Timer.RegisterFlags(f)
	// Local mode: without provider credentials, emails and messages are
	// captured (logged and published as events), never sent.
	c.Email.RegisterFlags(f, emailsender.ProviderAuto)
	c.SMS.RegisterFlags(f, smssender.ProviderAuto)
	c.Admin.RegisterFlags(f, "127.0.0.1:9090")
	_ = f.SetDefault("http-addr", "127.0.0.1:8080")
}

// adminConfig is the admin API's configuration: without a configured
// token, an operator token is generated into the data directory.
func (c Config) adminConfig() adminapi.Config {
	a := c.Admin
	a.GeneratedTokenFile = filepath.Join(c.DataDir, "admin-token")
	return a
}

// Validate names the first unusable setting.
func (c Config) Validate() error {
	if err := bus.ValidateEnv(c.Env); err != nil {
		return fmt.Errorf("%s: %w", service.EnvName("env"), err)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%s must not be empty", service.EnvName("data-dir"))
	}
	if err := service.ValidateListenAddr("nats-addr", c.NATSAddr); err != nil {
		return err
	}
	if c.OpsListener == nil {
		if err := service.ValidateListenAddr("ops-addr", c.OpsAddr); err != nil {
			return err
		}
	}
	if _, err := service.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("%s: %w", service.EnvName("log-level"), err)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("%s must be positive, got %s", service.EnvName("shutdown-timeout"), c.ShutdownTimeout)
	}
	if err := c.Ingress.Validate(); err != nil {
		return err
	}
	if err := c.Executor.Validate(); err != nil {
		return err
	}
	if err := c.Timer.Validate(); err != nil {
		return err
	}
	if err := c.Email.Validate(); err != nil {
		return err
	}
	if err := c.SMS.Validate(); err != nil {
		return err
	}
	return c.adminConfig().Validate()
}

// Run starts the embedded bus and every service, and runs until ctx ends.
func Run(ctx context.Context, cfg Config, stdout io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	level, _ := service.ParseLevel(cfg.LogLevel)
	log := service.NewLogger(stdout, level).With("service", Name, "env", cfg.Env)

	srv, err := startNATS(cfg)
	if err != nil {
		return err
	}
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name(Name), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to embedded nats: %w", err)
	}
	defer func() { _ = nc.Drain() }()

	reg := service.NewRegistry()
	topo := bus.DefaultTopology(cfg.Env)
	rt, err := service.NewRuntime(topo, nc, log, reg, service.NewReadiness())
	if err != nil {
		return err
	}
	rt.ShutdownTimeout = cfg.ShutdownTimeout
	if err := rt.EnsureTopology(ctx); err != nil {
		return err
	}
	if err := applyBundle(ctx, rt, cfg.Bundle, log); err != nil {
		return err
	}

	opsLn := cfg.OpsListener
	if opsLn == nil {
		if opsLn, err = net.Listen("tcp", cfg.OpsAddr); err != nil {
			return fmt.Errorf("listen on %s (%s): %w", cfg.OpsAddr, service.EnvName("ops-addr"), err)
		}
	}
	ingLn := cfg.Ingress.Listener
	if ingLn == nil {
		if ingLn, err = net.Listen("tcp", cfg.Ingress.HTTPAddr); err != nil {
			_ = opsLn.Close()
			return fmt.Errorf("listen on %s (%s): %w", cfg.Ingress.HTTPAddr, service.EnvName("http-addr"), err)
		}
	}
	ingCfg := cfg.Ingress
	ingCfg.Listener = ingLn
	adminCfg := cfg.adminConfig()
	if adminCfg.Listener == nil {
		if adminCfg.Listener, err = net.Listen("tcp", adminCfg.GRPCAddr); err != nil {
			_ = opsLn.Close()
			_ = ingLn.Close()
			return fmt.Errorf("listen on %s (%s): %w", adminCfg.GRPCAddr, service.EnvName("admin-grpc-addr"), err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return service.Serve(gctx, opsLn, service.OpsHandler(reg, rt.Ready), cfg.ShutdownTimeout, log)
	})
	g.Go(func() error { return ingress.Serve(gctx, rt, ingCfg) })
	g.Go(func() error { return executor.Serve(gctx, rt, cfg.Executor) })
	g.Go(func() error { return timer.Serve(gctx, rt, cfg.Timer) })
	g.Go(func() error { return emailsender.Serve(gctx, rt, cfg.Email) })
	g.Go(func() error { return smssender.Serve(gctx, rt, cfg.SMS) })
	g.Go(func() error { return adminapi.Serve(gctx, rt, adminCfg) })
	ep := Endpoints{NATSURL: srv.ClientURL(), Ingress: ingLn.Addr().String(), Ops: opsLn.Addr().String(), Admin: adminCfg.Listener.Addr().String()}
	if adminCfg.Tokens == "" && adminCfg.TokensFile == "" && adminCfg.ParsedTokens == nil {
		ep.AdminTokenFile = adminCfg.GeneratedTokenFile
	}
	log.Info("standalone started", "nats_url", ep.NATSURL, "ingress_addr", ep.Ingress, "ops_addr", ep.Ops, "admin_addr", ep.Admin, "admin_token_file", ep.AdminTokenFile, "data_dir", cfg.DataDir)
	if cfg.Started != nil {
		cfg.Started(ep)
	}
	err = g.Wait()
	log.Info("standalone stopped", "err", errText(err))
	return err
}

func startNATS(cfg Config) (*server.Server, error) {
	host, portStr, _ := net.SplitHostPort(cfg.NATSAddr)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid port %q", service.EnvName("nats-addr"), portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats-server did not start on %s (is the port in use? set %s)", cfg.NATSAddr, service.EnvName("nats-addr"))
	}
	return srv, nil
}

func applyBundle(ctx context.Context, rt *service.Runtime, path string, log *slog.Logger) error {
	if path == "" {
		return nil
	}
	b, err := bundle.Load(path)
	if err != nil {
		return fmt.Errorf("%s: %w", service.EnvName("bundle"), err)
	}
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		return err
	}
	a, err := bundle.Apply(ctx, store, b)
	if err != nil {
		return err
	}
	log.Info("bundle applied", "bundle", path, "changed", a.Changed, "unchanged", a.Unchanged)
	return nil
}

func errText(err error) string {
	if err == nil || errors.Is(err, context.Canceled) {
		return ""
	}
	return err.Error()
}
