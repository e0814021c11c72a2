package bus

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxParked is ConsumerConfig.MaxParked when a Key is set and
// MaxParked is left 0.
const DefaultMaxParked = 10000

// maxFetchBatch bounds one pull request beyond Concurrency: a replica with
// room to park thousands of messages asks for them in several requests
// rather than allocating buffers for all of them on every (often idle) pull.
const maxFetchBatch = 1000

// TenantKey is a ConsumerConfig.Key that schedules by tenant: the fourth
// token of a greentic.{kind}.{env}.{tenant}... subject, or "" when subject
// is not a greentic subject of at least four tokens. It does not allocate.
func TenantKey(subject string) string {
	const prefix = "greentic."
	if !strings.HasPrefix(subject, prefix) {
		return ""
	}
	rest := subject[len(prefix):]
	for range 2 { // skip {kind}. and {env}.
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return ""
		}
		rest = rest[i+1:]
	}
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// scheduler decides which fetched message runs next on one replica. A
// message starts at once when a handler slot is free and its key runs fewer
// than keyConcurrency handlers; otherwise it is parked in its key's FIFO
// queue. A finishing handler starts the next parked message round-robin over
// the keys, so a key with a long backlog cannot hold back the others.
//
// Invariant (under mu): while running < concurrency, every key with parked
// messages runs keyConcurrency handlers. A fetched message whose key has
// parked messages is therefore parked behind them, keeping each key FIFO.
type scheduler struct {
	ctx            context.Context // Run's context: once done, nothing new starts
	concurrency    int
	keyConcurrency int
	capacity       int // concurrency + max parked: messages held at most
	key            func(subject string) string
	// start runs msg's handler in a goroutine that calls finished(ks) when
	// it is done. It is called without mu held.
	start       func(msg jetstream.Msg, ks *keyState)
	parkedGauge prometheus.Gauge

	wake chan struct{} // signalled (without blocking) when room may have grown

	mu      sync.Mutex
	running int
	parked  int
	keys    map[string]*keyState // keys running or parking messages
	ring    []*keyState          // keys with parked messages, in round-robin order
	next    int                  // index in ring of the key to try first
	closed  bool
}

type keyState struct {
	name    string
	running int
	queue   []jetstream.Msg // parked, oldest first
}

func newScheduler(ctx context.Context, cfg ConsumerConfig, parkedGauge prometheus.Gauge) *scheduler {
	return &scheduler{
		ctx:            ctx,
		concurrency:    cfg.Concurrency,
		keyConcurrency: cfg.KeyConcurrency,
		capacity:       cfg.Concurrency + cfg.MaxParked,
		key:            cfg.Key,
		parkedGauge:    parkedGauge,
		wake:           make(chan struct{}, 1),
		keys:           map[string]*keyState{},
	}
}

// room is how many more messages the replica may fetch, and free how many
// handler slots are idle.
func (s *scheduler) room() (room, free int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.capacity - s.running - s.parked, s.concurrency - s.running
}

// dispatch starts or parks a fetched message. After shutdown has begun
// nothing new starts: the message is parked, to be handed back by closeAndTake.
func (s *scheduler) dispatch(msg jetstream.Msg) (started bool) {
	name := ""
	if s.key != nil {
		name = s.key(msg.Subject())
	}
	s.mu.Lock()
	ks := s.keys[name]
	if ks == nil {
		ks = &keyState{name: name}
		s.keys[name] = ks
	}
	if !s.closed && s.ctx.Err() == nil && s.running < s.concurrency && ks.running < s.keyConcurrency && len(ks.queue) == 0 {
		s.running++
		ks.running++
		s.mu.Unlock()
		s.start(msg, ks)
		return true
	}
	ks.queue = append(ks.queue, msg)
	if len(ks.queue) == 1 {
		s.ring = append(s.ring, ks)
	}
	s.parked++
	s.parkedGauge.Inc()
	s.mu.Unlock()
	return false
}

// finished records the end of a handler of ks, starts the parked messages
// that may now run and wakes the fetch loop.
func (s *scheduler) finished(ks *keyState) {
	var toStart []jetstream.Msg
	var toStartKeys []*keyState
	s.mu.Lock()
	s.running--
	ks.running--
	if !s.closed && s.ctx.Err() == nil {
		for s.running < s.concurrency {
			msg, next, ok := s.pickLocked()
			if !ok {
				break
			}
			s.running++
			next.running++
			toStart = append(toStart, msg)
			toStartKeys = append(toStartKeys, next)
		}
	}
	if ks.running == 0 && len(ks.queue) == 0 {
		delete(s.keys, ks.name)
	}
	s.mu.Unlock()
	for i, msg := range toStart {
		s.start(msg, toStartKeys[i])
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pickLocked unparks the oldest message of the first key, after the one
// served last, that runs fewer than keyConcurrency handlers.
func (s *scheduler) pickLocked() (jetstream.Msg, *keyState, bool) {
	n := len(s.ring)
	for i := range n {
		idx := (s.next + i) % n
		ks := s.ring[idx]
		if ks.running >= s.keyConcurrency {
			continue
		}
		msg := ks.queue[0]
		ks.queue[0] = nil
		ks.queue = ks.queue[1:]
		if len(ks.queue) == 0 {
			ks.queue = nil
			copy(s.ring[idx:], s.ring[idx+1:])
			s.ring[len(s.ring)-1] = nil
			s.ring = s.ring[:len(s.ring)-1]
			s.next = idx // the key after it moved to idx
		} else {
			s.next = idx + 1
		}
		if s.next >= len(s.ring) {
			s.next = 0
		}
		s.parked--
		s.parkedGauge.Dec()
		return msg, ks, true
	}
	return nil, nil, false
}

// parkedMsgs copies the parked messages, for progress signals sent without mu.
func (s *scheduler) parkedMsgs(buf []jetstream.Msg) []jetstream.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf = buf[:0]
	for _, ks := range s.ring {
		buf = append(buf, ks.queue...)
	}
	return buf
}

// closeAndTake stops the scheduler (nothing starts from then on) and
// returns every parked message, which the caller hands back.
func (s *scheduler) closeAndTake() []jetstream.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var out []jetstream.Msg
	for _, ks := range s.ring {
		out = append(out, ks.queue...)
		ks.queue = nil
		if ks.running == 0 {
			delete(s.keys, ks.name)
		}
	}
	s.ring = nil
	s.next = 0
	s.parkedGauge.Sub(float64(s.parked))
	s.parked = 0
	return out
}

// keepParkedAlive tells the server every AckWait/3 that each parked message
// is being worked on, so it is not redelivered while it waits; once started,
// handle's own progress signals take over. It returns when stop is closed.
func (s *scheduler) keepParkedAlive(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var buf []jetstream.Msg
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		buf = s.parkedMsgs(buf)
		for i, msg := range buf {
			select {
			case <-stop:
				return
			default:
			}
			_ = msg.InProgress()
			buf[i] = nil
		}
		if cap(buf) > 4*len(buf)+64 {
			buf = nil // do not keep a backlog's buffer once it has drained
		}
	}
}
