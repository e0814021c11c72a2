// Package tenantkv stores tenant configuration in the JetStream KV buckets
// of the topology and keeps an in-memory tenant.Registry in step with them.
package tenantkv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant"
)

// Store reads and writes the configuration buckets.
type Store struct {
	tenants   jetstream.KeyValue
	sources   jetstream.KeyValue
	flows     jetstream.KeyValue
	schedules jetstream.KeyValue
}

// Open opens the configuration buckets of topo (they must exist: see Topology.Ensure).
func Open(ctx context.Context, js jetstream.JetStream, topo bus.Topology) (*Store, error) {
	s := &Store{}
	var err error
	if s.tenants, err = topo.KeyValue(ctx, js, bus.BucketTenants); err != nil {
		return nil, err
	}
	if s.sources, err = topo.KeyValue(ctx, js, bus.BucketSources); err != nil {
		return nil, err
	}
	if s.flows, err = topo.KeyValue(ctx, js, bus.BucketFlows); err != nil {
		return nil, err
	}
	if s.schedules, err = topo.KeyValue(ctx, js, bus.BucketSchedules); err != nil {
		return nil, err
	}
	return s, nil
}

// put writes value under key unless the stored value is already identical,
// so re-applying the same configuration creates no new revision.
func put(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) (bool, error) {
	cur, err := kv.Get(ctx, key)
	switch {
	case err == nil && bytes.Equal(cur.Value(), value):
		return false, nil
	case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound):
		return false, fmt.Errorf("read %s/%s: %w", kv.Bucket(), key, err)
	}
	if _, err := kv.Put(ctx, key, value); err != nil {
		return false, fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
	}
	return true, nil
}

// PutTenant stores a tenant; it reports whether anything changed.
func (s *Store) PutTenant(ctx context.Context, t tenant.Tenant) (bool, error) {
	if err := t.Validate(); err != nil {
		return false, err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return false, err
	}
	return put(ctx, s.tenants, t.ID, b)
}

// PutSource stores a webhook source; it reports whether anything changed.
func (s *Store) PutSource(ctx context.Context, src tenant.Source) (bool, error) {
	if err := src.Validate(); err != nil {
		return false, fmt.Errorf("source %s/%s: %w", src.Tenant, src.Name, err)
	}
	b, err := json.Marshal(src)
	if err != nil {
		return false, err
	}
	return put(ctx, s.sources, tenant.SourceKey(src.Tenant, src.Name), b)
}

// PutFlow stores the YAML document of a tenant's flow; it reports whether
// anything changed. Callers validate the flow first.
func (s *Store) PutFlow(ctx context.Context, tenantID, name string, doc []byte) (bool, error) {
	if err := bus.ValidateTenant(tenantID); err != nil {
		return false, err
	}
	if err := bus.ValidateName("flow", name); err != nil {
		return false, err
	}
	return put(ctx, s.flows, tenant.FlowKey(tenantID, name), doc)
}

// FlowEntry is one change of the flows bucket.
type FlowEntry struct {
	Tenant, Name string
	Doc          []byte
	Revision     uint64
	Deleted      bool
}

// WatchFlows calls apply for every stored flow and then for every change
// until ctx ends; synced is called once the stored flows have been applied.
func (s *Store) WatchFlows(ctx context.Context, log *slog.Logger, apply func(FlowEntry), synced func()) error {
	return watch(ctx, s.flows, synced, func(e jetstream.KeyValueEntry) {
		t, n, ok := tenant.SplitKey(e.Key())
		if !ok {
			log.Warn("ignoring flow with malformed key", "key", e.Key())
			return
		}
		apply(FlowEntry{Tenant: t, Name: n, Doc: e.Value(), Revision: e.Revision(), Deleted: e.Operation() != jetstream.KeyValuePut})
	})
}

// PutSchedule stores an ad-hoc schedule; it reports whether anything changed.
func (s *Store) PutSchedule(ctx context.Context, sc schedule.Schedule) (bool, error) {
	if err := sc.Validate(); err != nil {
		return false, err
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return false, err
	}
	return put(ctx, s.schedules, sc.Key(), b)
}

// DeleteSchedule removes an ad-hoc schedule; removing one that does not
// exist is not an error.
func (s *Store) DeleteSchedule(ctx context.Context, tenantID, name string) error {
	if err := s.schedules.Delete(ctx, tenantID+"."+name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete %s/%s.%s: %w", s.schedules.Bucket(), tenantID, name, err)
	}
	return nil
}

// ScheduleEntry is one change of the schedules bucket. Schedule is set on
// a put; on a delete only Tenant and Name are.
type ScheduleEntry struct {
	Tenant, Name string
	Schedule     schedule.Schedule
	Revision     uint64
	Deleted      bool
}

// WatchSchedules calls apply for every stored schedule and then for every
// change until ctx ends; synced is called once the stored ones have been
// applied. A stored value that does not decode or validate is logged and
// applied as a delete, so a broken schedule never fires.
func (s *Store) WatchSchedules(ctx context.Context, log *slog.Logger, apply func(ScheduleEntry), synced func()) error {
	return watch(ctx, s.schedules, synced, func(e jetstream.KeyValueEntry) {
		t, n, ok := tenant.SplitKey(e.Key())
		if !ok {
			log.Warn("ignoring schedule with malformed key", "key", e.Key())
			return
		}
		se := ScheduleEntry{Tenant: t, Name: n, Revision: e.Revision(), Deleted: e.Operation() != jetstream.KeyValuePut}
		if !se.Deleted {
			err := json.Unmarshal(e.Value(), &se.Schedule)
			if err == nil {
				err = se.Schedule.Validate()
			}
			if err == nil && (se.Schedule.Tenant != t || se.Schedule.Name != n) {
				err = fmt.Errorf("stored under %s but names %s", e.Key(), se.Schedule.Key())
			}
			if err != nil {
				log.Error("stored schedule is not valid, not firing it", "key", e.Key(), "revision", e.Revision(), "err", err)
				se = ScheduleEntry{Tenant: t, Name: n, Revision: e.Revision(), Deleted: true}
			}
		}
		apply(se)
	})
}

// WatchRegistry keeps reg in step with the tenants and sources buckets
// until ctx ends; synced is called once both have been loaded.
func (s *Store) WatchRegistry(ctx context.Context, reg *tenant.Registry, log *slog.Logger, synced func()) error {
	// A failed watch stops the other, so the caller learns of it at once
	// rather than when ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var loaded atomic.Int32
	markLoaded := func() {
		if loaded.Add(1) == 2 && synced != nil {
			synced()
		}
	}
	errc := make(chan error, 2)
	go func() {
		errc <- watch(ctx, s.tenants, markLoaded, func(e jetstream.KeyValueEntry) {
			if e.Operation() != jetstream.KeyValuePut {
				reg.DeleteTenant(e.Key())
				return
			}
			var t tenant.Tenant
			if err := json.Unmarshal(e.Value(), &t); err != nil || t.Validate() != nil || t.ID != e.Key() {
				log.Warn("ignoring malformed tenant", "key", e.Key(), "revision", e.Revision())
				return
			}
			reg.PutTenant(t)
		})
	}()
	go func() {
		errc <- watch(ctx, s.sources, markLoaded, func(e jetstream.KeyValueEntry) {
			t, n, ok := tenant.SplitKey(e.Key())
			if !ok {
				log.Warn("ignoring source with malformed key", "key", e.Key())
				return
			}
			if e.Operation() != jetstream.KeyValuePut {
				reg.DeleteSource(t, n)
				return
			}
			var src tenant.Source
			if err := json.Unmarshal(e.Value(), &src); err != nil || src.Validate() != nil || src.Tenant != t || src.Name != n {
				log.Warn("ignoring malformed source", "key", e.Key(), "revision", e.Revision())
				return
			}
			reg.PutSource(src)
		})
	}()
	err := <-errc
	cancel()
	if err2 := <-errc; err == nil {
		err = err2
	}
	return err
}

// watch applies every entry of kv, then every change, until ctx ends.
func watch(ctx context.Context, kv jetstream.KeyValue, synced func(), apply func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	once := sync.Once{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch %s: closed", kv.Bucket())
			}
			if e == nil {
				if synced != nil {
					once.Do(synced)
				}
				continue
			}
			apply(e)
		}
	}
}

// Errors of the revision-checked operations.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConflict means the stored revision is not the one expected: someone
	// else changed the item since it was read.
	ErrConflict = errors.New("revision conflict")
)

// Entry is one stored item with its KV revision.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Created  time.Time // when this revision was written
}

func (s *Store) bucket(b bus.Bucket) (jetstream.KeyValue, error) {
	switch b {
	case bus.BucketTenants:
		return s.tenants, nil
	case bus.BucketSources:
		return s.sources, nil
	case bus.BucketFlows:
		return s.flows, nil
	case bus.BucketSchedules:
		return s.schedules, nil
	}
	return nil, fmt.Errorf("tenantkv: bucket %q is not a configuration bucket", b)
}

// Get reads one item; ErrNotFound if it does not exist.
func (s *Store) Get(ctx context.Context, b bus.Bucket, key string) (Entry, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return Entry{}, err
	}
	e, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Entry{}, ErrNotFound
	case err != nil:
		return Entry{}, fmt.Errorf("read %s/%s: %w", kv.Bucket(), key, err)
	}
	return Entry{Key: key, Value: e.Value(), Revision: e.Revision(), Created: e.Created()}, nil
}

// Create stores a new item; ErrExists if the key holds one already.
func (s *Store) Create(ctx context.Context, b bus.Bucket, key string, value []byte) (uint64, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Create(ctx, key, value)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return 0, ErrExists
	case err != nil:
		return 0, fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
	}
	return rev, nil
}

// Delete removes an item; with rev > 0 only if it is still at that
// revision (ErrConflict otherwise). ErrNotFound if it does not exist.
func (s *Store) Delete(ctx context.Context, b bus.Bucket, key string, rev uint64) error {
	cur, err := s.Get(ctx, b, key)
	if err != nil {
		return err
	}
	if rev == 0 {
		rev = cur.Revision
	} else if rev != cur.Revision {
		return ErrConflict
	}
	kv, _ := s.bucket(b)
	// A purge leaves one marker per key instead of the key's history.
	if err := kv.Purge(ctx, key, jetstream.LastRevision(rev)); err != nil {
		if isWrongRevision(err) {
			return ErrConflict
		}
		return fmt.Errorf("delete %s/%s: %w", kv.Bucket(), key, err)
	}
	return nil
}

// List returns the items whose key starts with prefix ("" for all), in key
// order.
func (s *Store) List(ctx context.Context, b bus.Bucket, prefix string) ([]Entry, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return nil, err
	}
	filter := ">"
	if prefix != "" {
		filter = prefix + ">"
	}
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	var out []Entry
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list %s: watcher closed", kv.Bucket())
			}
			if e == nil {
				slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
				return out, nil
			}
			out = append(out, Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created()})
		}
	}
}

// isWrongRevision reports the server's answer to a write whose expected
// revision is not the stored one.
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || errors.Is(err, jetstream.ErrKeyExists)
}

// modifyAttempts bounds the rounds of a Modify that loses races with other
// writers.
const modifyAttempts = 5

// Modify writes what change makes of the stored item over the revision it
// read: change gets the stored entry (exists false when there is none) and
// returns the new value, or an error to refuse, which Modify returns as is.
// With rev non-zero the item must be stored at exactly that revision
// (ErrNotFound, ErrConflict). With rev zero, a write that loses a race with
// another writer reads again and calls change again, a few times. An
// identical value is not rewritten. It returns the entry stored.
func (s *Store) Modify(ctx context.Context, b bus.Bucket, key string, rev uint64, change func(cur Entry, exists bool) ([]byte, error)) (Entry, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return Entry{}, err
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.Get(ctx, b, key)
		exists := err == nil
		switch {
		case err != nil && !errors.Is(err, ErrNotFound):
			return Entry{}, err
		case rev != 0 && !exists:
			return Entry{}, ErrNotFound
		case rev != 0 && cur.Revision != rev:
			return Entry{}, ErrConflict
		}
		value, err := change(cur, exists)
		if err != nil {
			return Entry{}, err
		}
		if exists && bytes.Equal(value, cur.Value) {
			return cur, nil
		}
		var n uint64
		if exists {
			n, err = kv.Update(ctx, key, value, cur.Revision)
		} else {
			n, err = kv.Create(ctx, key, value)
		}
		if isWrongRevision(err) {
			if rev == 0 && attempt < modifyAttempts {
				continue // someone else wrote in between: start over from what is stored
			}
			return Entry{}, ErrConflict
		}
		if err != nil {
			return Entry{}, fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
		}
		if e, err := s.Get(ctx, b, key); err == nil && e.Revision == n {
			return e, nil
		}
		// Changed again since: report what this call wrote.
		return Entry{Key: key, Value: value, Revision: n, Created: time.Now()}, nil
	}
}
