package ingress

import (
	"net/http"
	"testing"
	"time"

	"github.com/greentic/events/pkg/signature"
)

// TestBatchWithABadEventStoresNothing sends a signed SendGrid batch whose
// second event has an event name that is no valid type: the request is
// refused, naming the event, and the valid first event is not stored either.
func TestBatchWithABadEventStoresNothing(t *testing.T) {
	k := scKey(t)
	f := setupSources(t, sendgridSource(k))
	body := sgBatch(
		`{"event":"delivered","sg_event_id":"ok-1"}`,
		`{"event":"bad name","sg_event_id":"bad-1"}`,
	)
	ts := unix(time.Now())
	sig, err := signature.SignSendGrid(body, ts, k)
	if err != nil {
		t.Fatal(err)
	}
	a := f.scSend(t, "/v1/webhooks/demo/sendgrid", mediaJSON, body, map[string]string{
		"X-Twilio-Email-Event-Webhook-Signature": sig, "X-Twilio-Email-Event-Webhook-Timestamp": ts,
	})
	a.rejected(t, http.StatusBadRequest, codeInvalidEvent, []string{"event 1"})
	f.wantStored(t, 0)
}
