package timer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// stateStore keeps, in the timers bucket under {tenant}.{schedule id}, the
// scheduled unix time of the last tick of each schedule that was handled
// (published, or dropped by the missed policy or because the tenant is
// suspended). A schedule that has fired nothing yet holds the time it was
// first loaded, so that ticks falling while every replica is down are
// found even before its first fire.
//
// Writes are coalesced per key and flushed every interval (or made at once
// when the interval is 0). A write lost in a crash leaves an older value:
// the restarted timer then publishes again the ticks of at most the last
// interval, with the same event ids, and the stream drops them as
// duplicates (as long as it comes back within the duplicate window).
type stateStore struct {
	kv       jetstream.KeyValue
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	pending  map[string]int64 // key -> unix seconds; tombstone: delete
	inflight map[string]int64 // the batch being written
}

const tombstone = int64(-1 << 62)

func newStateStore(kv jetstream.KeyValue, interval, timeout time.Duration, log *slog.Logger) *stateStore {
	return &stateStore{kv: kv, interval: interval, timeout: timeout, log: log, pending: map[string]int64{}}
}

// loadAll reads every stored state.
func (s *stateStore) loadAll(ctx context.Context) (map[string]time.Time, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("read %s: watch closed", s.kv.Bucket())
			}
			if e == nil {
				return out, nil
			}
			if t, ok := s.decode(e.Key(), e.Value()); ok {
				out[e.Key()] = t
			}
		}
	}
}

// lookup returns the state of key: a write not flushed yet wins over the bucket.
func (s *stateStore) lookup(ctx context.Context, key string) (time.Time, bool, error) {
	s.mu.Lock()
	v, ok := s.pending[key]
	if !ok {
		v, ok = s.inflight[key]
	}
	s.mu.Unlock()
	if ok {
		if v == tombstone {
			return time.Time{}, false, nil
		}
		return time.Unix(v, 0).UTC(), true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read %s/%s: %w", s.kv.Bucket(), key, err)
	}
	t, ok := s.decode(key, e.Value())
	return t, ok, nil
}

func (s *stateStore) decode(key string, v []byte) (time.Time, bool) {
	u, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || u < 0 {
		s.log.Warn("ignoring malformed timer state", "key", key)
		return time.Time{}, false
	}
	return time.Unix(u, 0).UTC(), true
}

// set records t as the last tick handled for key.
func (s *stateStore) set(key string, t time.Time) { s.write(key, t.Unix()) }

// remove deletes the state of key.
func (s *stateStore) remove(key string) { s.write(key, tombstone) }

func (s *stateStore) write(key string, v int64) {
	if s.interval > 0 {
		s.mu.Lock()
		s.pending[key] = v
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.apply(ctx, key, v); err != nil {
		s.log.Warn("timer state not saved", "key", key, "err", err)
	}
}

func (s *stateStore) apply(ctx context.Context, key string, v int64) error {
	if v == tombstone {
		if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("delete %s/%s: %w", s.kv.Bucket(), key, err)
		}
		return nil
	}
	if _, err := s.kv.Put(ctx, key, strconv.AppendInt(nil, v, 10)); err != nil {
		return fmt.Errorf("write %s/%s: %w", s.kv.Bucket(), key, err)
	}
	return nil
}

// run flushes every interval until stop is closed, then flushes once more.
func (s *stateStore) run(stop <-chan struct{}) {
	if s.interval <= 0 {
		return
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			s.flush()
			return
		case <-t.C:
			s.flush()
		}
	}
}

// flushWorkers bounds the writes of one flush in flight at once.
const flushWorkers = 32

// flush writes the pending states. Batches are written one after the
// other, so the writes of one key reach the bucket in order; a failed
// write is retried with the next batch unless a newer one replaced it.
func (s *stateStore) flush() {
	s.mu.Lock()
	batch := s.pending
	if len(batch) == 0 {
		s.mu.Unlock()
		return
	}
	s.pending = make(map[string]int64, len(batch))
	s.inflight = batch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	type item struct {
		key string
		v   int64
	}
	work := make(chan item)
	var wg sync.WaitGroup
	var failMu sync.Mutex
	var failed []item
	var firstErr error
	for range min(flushWorkers, len(batch)) {
		wg.Go(func() {
			for it := range work {
				if err := s.apply(ctx, it.key, it.v); err != nil {
					failMu.Lock()
					failed = append(failed, it)
					if firstErr == nil {
						firstErr = err
					}
					failMu.Unlock()
				}
			}
		})
	}
	for k, v := range batch {
		work <- item{k, v}
	}
	close(work)
	wg.Wait()
	if len(failed) == 0 {
		return
	}
	s.log.Warn("timer state not saved, retrying", "keys", len(failed), "err", firstErr)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range failed {
		if _, newer := s.pending[it.key]; !newer {
			s.pending[it.key] = it.v
		}
	}
}
