package sender

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// States of a command in the sends bucket.
const (
	StateSending = "sending" // a send attempt started; its answer is not recorded yet
	StateRetry   = "retry"   // the last attempt failed in a way worth retrying
	StateSent    = "sent"    // the provider accepted it
	StateFailed  = "failed"  // it will not be sent
)

// Reasons a command failed, in failed events and dead letters.
const (
	ReasonRejected       = "provider_rejected"  // the provider refused it (4xx other than 429)
	ReasonExhausted      = "retries_exhausted"  // every attempt failed with a retryable error
	ReasonUnknown        = "outcome_unknown"    // the sender stopped between the provider's answer and its record
	ReasonInvalidCommand = "invalid_command"    // no provider could send it
	ReasonTenant         = "tenant_unavailable" // its tenant is unknown or suspended
)

// Record is the state of one command in the sends bucket.
type Record struct {
	Tenant     string    `json:"tenant"`
	ID         string    `json:"id"`
	State      string    `json:"state"`
	Attempts   int       `json:"attempts"`
	Provider   string    `json:"provider,omitempty"`
	ProviderID string    `json:"provider_message_id,omitempty"`
	Status     string    `json:"provider_status,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Replay is the replay marker of the dead letter whose replay claimed
	// the command again after it had failed; the attempts, the outcome and
	// the failed event since are that replay's.
	Replay string `json:"replay,omitempty"`
}

// RecordKey is the key of a command in the sends bucket:
// {channel}.{hash of tenant and id}. Command ids hold characters KV keys do
// not allow, and two tenants may produce the same id.
func RecordKey(channel, tenantID, id string) string {
	sum := sha256.Sum256([]byte(tenantID + "\n" + id))
	return channel + "." + hex.EncodeToString(sum[:16])
}

// errConflict is a revision-checked write that lost against another writer.
var errConflict = errors.New("the command's record changed concurrently")

type states struct {
	kv jetstream.KeyValue
}

// get returns the record and its revision; revision 0 when there is none.
func (s states) get(ctx context.Context, key string) (Record, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, 0, nil
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("read send record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, 0, fmt.Errorf("decode send record %s: %w", key, err)
	}
	return r, e.Revision(), nil
}

// put writes r if the record is still at revision rev (0: absent) and
// returns the new revision; errConflict when another writer came first.
func (s states) put(ctx context.Context, key string, r Record, rev uint64) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	var n uint64
	if rev == 0 {
		n, err = s.kv.Create(ctx, key, b)
	} else {
		n, err = s.kv.Update(ctx, key, b, rev)
	}
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, jetstream.ErrKeyExists),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return 0, errConflict
	}
	return 0, fmt.Errorf("write send record: %w", err)
}
