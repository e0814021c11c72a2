package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names a configuration KV bucket (without its environment prefix).
type Bucket string

// Configuration buckets written by admin-api (or a bundle) and watched by the services.
const (
	BucketTenants   Bucket = "tenants"
	BucketSources   Bucket = "sources"
	BucketFlows     Bucket = "flows"
	BucketSchedules Bucket = "schedules"
	// BucketDeliveries is not configuration: the ingress records there each
	// provider delivery id it has stored, for DeliveryWindow, so a
	// redelivery long after the stream's duplicate window still produces no
	// second event.
	BucketDeliveries Bucket = "deliveries"
	// BucketTimers is not configuration either: the timer keeps there, per
	// schedule, the scheduled time of the last tick it fired, so ticks
	// missed while every timer replica was down can be found.
	BucketTimers Bucket = "timers"
	// BucketSends is not configuration either: the senders record there
	// what they did with each command (sending, sent with the provider's
	// id, failed), so a redelivered command is never sent twice. Records
	// live as long as the commands they describe (OutboundMaxAge).
	BucketSends Bucket = "sends"
)

// AllBuckets lists every configuration bucket the topology creates.
var AllBuckets = []Bucket{BucketTenants, BucketSources, BucketFlows, BucketSchedules}

// Topology is the one definition of the streams and buckets of an
// environment. Replicas, max age and the duplicate window are configuration.
type Topology struct {
	Env             string
	Replicas        int           // 1 in dev, 3 in prod
	EventsMaxAge    time.Duration // events and flow results
	OutboundMaxAge  time.Duration // sender commands
	DLQMaxAge       time.Duration // dead letters
	DuplicateWindow time.Duration // Nats-Msg-Id de-duplication window
	DeliveryWindow  time.Duration // how long the ingress remembers provider delivery ids
	Memory          bool          // memory storage (tests, benchmarks); file storage otherwise
}

// DefaultTopology returns the settings for a development environment.
func DefaultTopology(env string) Topology {
	return Topology{
		Env:             env,
		Replicas:        1,
		EventsMaxAge:    7 * 24 * time.Hour,
		OutboundMaxAge:  7 * 24 * time.Hour,
		DLQMaxAge:       14 * 24 * time.Hour,
		DuplicateWindow: 2 * time.Hour,
		DeliveryWindow:  24 * time.Hour,
	}
}

// Validate reports the first setting that cannot work, by name.
func (t Topology) Validate() error {
	if err := ValidateEnv(t.Env); err != nil {
		return err
	}
	if t.Replicas < 1 || t.Replicas > 5 {
		return fmt.Errorf("stream replicas must be between 1 and 5, got %d", t.Replicas)
	}
	if t.DuplicateWindow <= 0 {
		return fmt.Errorf("duplicate window must be positive, got %s", t.DuplicateWindow)
	}
	for _, age := range []struct {
		name string
		d    time.Duration
	}{{"events max age", t.EventsMaxAge}, {"outbound max age", t.OutboundMaxAge}, {"dlq max age", t.DLQMaxAge}} {
		if age.d <= 0 {
			return fmt.Errorf("%s must be positive, got %s", age.name, age.d)
		}
		if t.DuplicateWindow > age.d {
			return fmt.Errorf("duplicate window %s must not exceed %s %s", t.DuplicateWindow, age.name, age.d)
		}
	}
	if t.DeliveryWindow < t.DuplicateWindow {
		return fmt.Errorf("delivery window %s must not be shorter than the duplicate window %s", t.DeliveryWindow, t.DuplicateWindow)
	}
	return nil
}

func upper(env string) string { return strings.ToUpper(strings.ReplaceAll(env, "-", "_")) }

// EventsStream is the stream holding events and flow results of the environment.
func (t Topology) EventsStream() string { return "GREENTIC_EVENTS_" + upper(t.Env) }

// OutboundStream is the stream holding commands for the senders.
func (t Topology) OutboundStream() string { return "GREENTIC_OUTBOUND_" + upper(t.Env) }

// DLQStream is the stream holding dead letters.
func (t Topology) DLQStream() string { return "GREENTIC_DLQ_" + upper(t.Env) }

// BucketName is the KV bucket name of b in the environment.
func (t Topology) BucketName(b Bucket) string { return "greentic_" + t.Env + "_" + string(b) }

// Durable is the durable consumer name shared by every replica of a service stage.
func (t Topology) Durable(stage string) string { return "greentic-" + t.Env + "-" + stage }

func (t Topology) storage() jetstream.StorageType {
	if t.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// Streams returns the stream configurations of the environment.
func (t Topology) Streams() []jetstream.StreamConfig {
	base := func(name, desc, subject string, age time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subject},
			Retention:   jetstream.LimitsPolicy,
			Storage:     t.storage(),
			Replicas:    t.Replicas,
			MaxAge:      age,
			Duplicates:  t.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
		}
	}
	return []jetstream.StreamConfig{
		base(t.EventsStream(), "Greentic events and flow results", EventFilter(t.Env), t.EventsMaxAge),
		base(t.OutboundStream(), "Greentic outbound commands for the senders", outboundRoot+"."+t.Env+".>", t.OutboundMaxAge),
		base(t.DLQStream(), "Greentic dead letters", DLQFilter(t.Env), t.DLQMaxAge),
	}
}

// Buckets returns the KV bucket configurations of the environment.
func (t Topology) Buckets() []jetstream.KeyValueConfig {
	out := make([]jetstream.KeyValueConfig, 0, len(AllBuckets)+3)
	for _, b := range AllBuckets {
		out = append(out, jetstream.KeyValueConfig{
			Bucket:      t.BucketName(b),
			Description: "Greentic " + string(b) + " configuration",
			History:     5,
			Storage:     t.storage(),
			Replicas:    t.Replicas,
		})
	}
	return append(out, jetstream.KeyValueConfig{
		Bucket:      t.BucketName(BucketDeliveries),
		Description: "Greentic provider delivery ids already stored, kept for the delivery window",
		History:     1,
		TTL:         t.DeliveryWindow,
		Storage:     t.storage(),
		Replicas:    t.Replicas,
	}, jetstream.KeyValueConfig{
		Bucket:      t.BucketName(BucketTimers),
		Description: "Greentic timer state: the last tick fired per schedule",
		History:     1,
		Storage:     t.storage(),
		Replicas:    t.Replicas,
	}, jetstream.KeyValueConfig{
		Bucket:      t.BucketName(BucketSends),
		Description: "Greentic sender state: what was done with each email and sms command",
		History:     1,
		TTL:         t.OutboundMaxAge,
		Storage:     t.storage(),
		Replicas:    t.Replicas,
	})
}

// Ensure creates or updates every stream and bucket; it is idempotent and
// safe to run from every replica of every service at start.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	if err := t.Validate(); err != nil {
		return err
	}
	// Every replica of every service runs this at start: a stream or bucket
	// already as configured is left alone rather than updated, since an
	// update rewrites the stream's store configuration under consumers
	// other replicas are creating at that moment.
	for _, sc := range t.Streams() {
		if s, err := js.Stream(ctx, sc.Name); err == nil && sameStream(s.CachedInfo().Config, sc) {
			continue
		}
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range t.Buckets() {
		if kv, err := js.KeyValue(ctx, kc.Bucket); err == nil {
			if st, err := kv.Status(ctx); err == nil && sameBucket(st, kc) {
				continue
			}
		}
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("ensure bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// sameStream reports whether a stream's configuration has every setting
// the topology gives it.
func sameStream(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description && slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention && have.Storage == want.Storage && have.Replicas == want.Replicas &&
		have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates && have.Discard == want.Discard
}

// sameBucket reports whether a bucket has every setting the topology gives it.
func sameBucket(st jetstream.KeyValueStatus, want jetstream.KeyValueConfig) bool {
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return false
	}
	cfg := bs.StreamInfo().Config
	return st.History() == int64(max(want.History, 1)) && st.TTL() == want.TTL &&
		cfg.Description == want.Description && cfg.Storage == want.Storage && cfg.Replicas == max(want.Replicas, 1)
}

// Check reports whether every stream and bucket exists, without creating them.
func (t Topology) Check(ctx context.Context, js jetstream.JetStream) error {
	for _, sc := range t.Streams() {
		if _, err := js.Stream(ctx, sc.Name); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range t.Buckets() {
		if _, err := js.KeyValue(ctx, kc.Bucket); err != nil {
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return fmt.Errorf("bucket %s does not exist", kc.Bucket)
			}
			return fmt.Errorf("bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// KeyValue opens a configuration bucket of the environment.
func (t Topology) KeyValue(ctx context.Context, js jetstream.JetStream, b Bucket) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, t.BucketName(b))
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", t.BucketName(b), err)
	}
	return kv, nil
}
