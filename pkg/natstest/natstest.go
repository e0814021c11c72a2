// Package natstest starts real in-process nats-server instances with
// JetStream for tests and benchmarks: a single server, or a cluster of
// three for fault tests.
package natstest

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an in-process nats-server with JetStream.
type Server struct {
	*server.Server
	opts *server.Options
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.ClientURL() }

// Start runs a JetStream server storing under storeDir on a free loopback port.
func Start(storeDir string) (*Server, error) {
	return start(&server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   storeDir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	})
}

func start(opts *server.Options) (*Server, error) {
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("new nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats server %s not ready", opts.ServerName)
	}
	return &Server{Server: srv, opts: opts}, nil
}

// StartTemp runs a JetStream server storing in a new temporary directory
// (named after prefix) and connects to it, for benchmarks and other
// programs that are not tests. stop closes the connection, stops the
// server and removes the directory.
func StartTemp(prefix string) (srv *Server, nc *nats.Conn, stop func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, nil, err
	}
	if srv, err = Start(dir); err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	if nc, err = nats.Connect(srv.ClientURL()); err != nil {
		srv.Stop()
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	return srv, nc, func() {
		nc.Close()
		srv.Stop()
		os.RemoveAll(dir)
	}, nil
}

// Stop shuts the server down and waits until it has stopped.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Restart stops the server and starts it again on the same port with the same
// store, as a crashed and restarted process would come back.
func (s *Server) Restart() error {
	s.Stop()
	opts := *s.opts
	if opts.Port == server.RANDOM_PORT {
		opts.Port = s.Addr().(*net.TCPAddr).Port
	}
	ns, err := start(&opts)
	if err != nil {
		return err
	}
	*s = *ns
	return nil
}

// RunServer starts a single JetStream server for the test and stops it at cleanup.
func RunServer(t testing.TB) *Server {
	t.Helper()
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Connect opens a client connection closed at cleanup.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Cluster is a JetStream cluster of in-process servers.
type Cluster struct {
	Servers []*Server
}

// URLs is a comma-separated list of every member's client URL, for nats.Connect.
func (c *Cluster) URLs() string {
	var out string
	for i, s := range c.Servers {
		if i > 0 {
			out += ","
		}
		out += "nats://" + s.opts.Host + ":" + strconv.Itoa(s.opts.Port)
	}
	return out
}

// RunCluster starts an n-node JetStream cluster (n >= 3 for R3 streams),
// waits until it has a meta leader and stops it at cleanup.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	var routes []string
	for i := 0; i < n; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		opts := &server.Options{
			ServerName: fmt.Sprintf("natstest-%d", i),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "natstest",
				Host: "127.0.0.1",
				Port: ports[n+i],
			},
			Routes: server.RoutesFromStr(joinExcept(routes, i)),
		}
		s, err := start(opts)
		if err != nil {
			t.Fatal(err)
		}
		c.Servers = append(c.Servers, s)
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			s.Stop()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Servers {
			if s.JetStreamIsLeader() {
				return c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("cluster elected no JetStream meta leader within 20s")
	return nil
}

func joinExcept(items []string, skip int) string {
	var out string
	for i, it := range items {
		if i == skip {
			continue
		}
		if out != "" {
			out += ","
		}
		out += it
	}
	return out
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// Eventually polls cond every 10ms until it holds, failing the test with
// what if it does not within timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
