package bus

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestDbgThroughput(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.Concurrency = 16
	cfg.AckWait = 30 * time.Second
	const n = 5000
	ctx := testCtx(t)
	for i := range n {
		e := testEvent("acme", "evt-"+strconv.Itoa(i))
		if _, err := b.pub.PublishEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var c atomic.Int32
	t0 := time.Now()
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error { c.Add(1); return nil })
	eventually(t, 60*time.Second, "all", func() bool { return c.Load() == n })
	t.Logf("%d msgs in %s: %.0f/s", n, time.Since(t0), n/time.Since(t0).Seconds())
}
