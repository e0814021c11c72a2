package natstest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRestartKeepsJetStreamData(t *testing.T) {
	s := RunServer(t)
	url := s.URL()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "keep.one", []byte("survives")); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	if err := s.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if s.URL() != url {
		t.Errorf("restarted on %s, want the same URL %s", s.URL(), url)
	}

	_, js2 := Connect(t, s.URL())
	var st jetstream.Stream
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err = js2.Stream(ctx, "KEEP")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	msg, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("message after restart: %v", err)
	}
	if string(msg.Data) != "survives" || msg.Subject != "keep.one" {
		t.Fatalf("message after restart = %s %q", msg.Subject, msg.Data)
	}
}

func TestConnectClosesAtCleanup(t *testing.T) {
	s := RunServer(t)
	var nc *nats.Conn
	t.Run("inner", func(t *testing.T) {
		nc, _ = Connect(t, s.URL())
		if !nc.IsConnected() {
			t.Fatal("not connected")
		}
	})
	if !nc.IsClosed() {
		t.Fatal("connection still open after the subtest's cleanup")
	}
}

func TestClusterOfThree(t *testing.T) {
	c := RunCluster(t, 3)
	if len(c.Servers) != 3 {
		t.Fatalf("cluster has %d servers", len(c.Servers))
	}
	leaders := 0
	for _, s := range c.Servers {
		if s.JetStreamIsLeader() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("cluster has %d meta leaders, want 1", leaders)
	}
	if got := strings.Count(c.URLs(), ",") + 1; got != 3 {
		t.Fatalf("URLs() = %q, want 3 URLs", c.URLs())
	}

	// The cluster really is one JetStream: an R3 stream can be created and used.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	_, js := Connect(t, c.URLs())
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; {
		_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	if _, err := js.Publish(ctx, "r3.x", []byte("x")); err != nil {
		t.Fatalf("publish to R3 stream: %v", err)
	}
	for _, s := range c.Servers {
		_, js := Connect(t, s.URL())
		st, err := js.Stream(ctx, "R3")
		if err != nil {
			t.Fatalf("stream via %s: %v", s.Name(), err)
		}
		if n := st.CachedInfo().Config.Replicas; n != 3 {
			t.Fatalf("replicas = %d", n)
		}
	}
}
