package ingress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
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

// eventIDFor is the event id of a delivery: {source}:{delivery id}, or
// {source}:d-{digest} when that is no valid event id. Event ids must be
// unique per tenant, and two senders' ids (order 1001 of a shop, contact
// 1001 of a CRM) are not; the source makes them so. The same delivery
// always gets the same id, so concurrent redeliveries meet in the stream's
// Nats-Msg-Id de-duplication.
func eventIDFor(source, deliveryID string) string {
	if id := source + ":" + deliveryID; event.ValidateID(id) == nil {
		return id
	}
	sum := sha256.Sum256([]byte(deliveryID))
	return source + ":d-" + hex.EncodeToString(sum[:16])
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

// StreamEvents reads events back from the events stream.
type StreamEvents struct{ Stream jetstream.Stream }

// StoredEvent implements StoredEvents.
func (s StreamEvents) StoredEvent(ctx context.Context, seq uint64) (*eventsv1.Event, error) {
	m, err := s.Stream.GetMsg(ctx, seq)
	if err != nil {
		return nil, err
	}
	return event.Unmarshal(m.Data)
}
