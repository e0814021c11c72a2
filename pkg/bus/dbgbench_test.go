package bus

import (
	"github.com/nats-io/nats.go"
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
	b.nc.SetErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) { t.Logf("ASYNC ERR %v", err) })
	var c atomic.Int32
	t0 := time.Now()
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error { c.Add(1); return nil })
	last := int32(-1)
	stallT := time.Now()
	eventually(t, 60*time.Second, "all", func() bool {
		cur := c.Load()
		if cur != last { last = cur; stallT = time.Now() }
		if time.Since(stallT) > 2*time.Second {
			info := b.consumerInfo(t, cfg.Durable)
			t.Logf("STALL at %d: waiting=%d ackpending=%d pending=%d delivered=%+v ackfloor=%+v", cur, info.NumWaiting, info.NumAckPending, info.NumPending, info.Delivered, info.AckFloor)
			stallT = time.Now()
		}
		return cur == n })
	t.Logf("%d msgs in %s: %.0f/s", n, time.Since(t0), n/time.Since(t0).Seconds())
}
