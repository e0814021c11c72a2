package ingress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/event"
)

// Deliveries remembers which provider delivery ids were stored, and as
// which event, for the delivery window (24h by default). It backs the
// stream's own Nats-Msg-Id de-duplication, whose window is shorter: a
// provider that redelivers the next day still produces no second event.
type Deliveries interface {
	// Lookup returns the event id stored for a delivery, if any.
	Lookup(ctx context.Context, key string) (eventID string, found bool, err error)
	// Record remembers a stored delivery.
	Record(ctx context.Context, key, eventID string) error
}

// deliveryKey is the KV key of a delivery id of a tenant's source. The id
// is hashed: providers' ids may hold characters KV keys cannot.
func deliveryKey(tenantID, source, deliveryID string) string {
	sum := sha256.Sum256([]byte(deliveryID))
	return tenantID + "." + source + "." + hex.EncodeToString(sum[:20])
}

// eventIDFor is the event id of a delivery: the provider's own id when it
// is a valid event id (so people can correlate), else a digest of it. The
// same delivery always gets the same id, so concurrent redeliveries meet
// in the stream's Nats-Msg-Id de-duplication.
func eventIDFor(source, deliveryID string) string {
	if event.ValidateID(deliveryID) == nil {
		return deliveryID
	}
	sum := sha256.Sum256([]byte(source + "\x00" + deliveryID))
	return "d-" + hex.EncodeToString(sum[:16])
}

// KVDeliveries keeps deliveries in the environment's deliveries bucket,
// whose TTL is the delivery window.
type KVDeliveries struct{ KV jetstream.KeyValue }

// Lookup implements Deliveries.
func (d KVDeliveries) Lookup(ctx context.Context, key string) (string, bool, error) {
	e, err := d.KV.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return string(e.Value()), true, nil
}

// Record implements Deliveries.
func (d KVDeliveries) Record(ctx context.Context, key, eventID string) error {
	_, err := d.KV.Put(ctx, key, []byte(eventID))
	return err
}
