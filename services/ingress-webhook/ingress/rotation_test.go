package ingress

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
)

// TestRotatedSecretGracePeriod: after a rotation the replaced secret is
// accepted until its deadline and refused from then on; the new one is
// accepted throughout.
func TestRotatedSecretGracePeriod(t *testing.T) {
	const (
		newSecret       = "hmac-secret-new-0123"
		oldSecret       = "hmac-secret-old-0123"
		oldStripeSecret = "whsec_stripe_secret_old_0123456789"
		newStripeSecret = "whsec_stripe_secret_new_0123456789"
	)
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	until := start.Add(24 * time.Hour)
	hmacSrc := hmacSource()
	hmacSrc.Secrets = []string{newSecret}
	hmacSrc.RetiringSecrets = []tenant.RetiringSecret{{Secret: oldSecret, Until: until}}
	stripeSrc := stripeSource()
	stripeSrc.Secrets = []string{newStripeSecret}
	stripeSrc.RetiringSecrets = []tenant.RetiringSecret{{Secret: oldStripeSecret, Until: until}}

	var clock atomic.Int64
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	f := setupDirect(t, now, hmacSrc, stripeSrc)

	n := 0
	hmacSend := func(secret string) scAnswer {
		n++
		body := fmt.Appendf(nil, `{"type":"order.created","id":"rot-%d"}`, n)
		return f.scSend(t, "/v1/webhooks/demo/hmac", mediaJSON, body,
			map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(body, secret, "hex")})
	}
	stripeSend := func(secret string) scAnswer {
		n++
		body := fmt.Appendf(nil, `{"id":"evt_rot_%d","type":"customer.created","data":{}}`, n)
		return f.scSend(t, "/v1/webhooks/demo/stripe", mediaJSON, body,
			map[string]string{"Stripe-Signature": signature.SignStripe(body, secret, now())})
	}
	all := []string{newSecret, oldSecret, newStripeSecret, oldStripeSecret}

	for _, at := range []time.Time{start, until.Add(-time.Second)} {
		clock.Store(at.UnixNano())
		for _, a := range []scAnswer{hmacSend(oldSecret), hmacSend(newSecret), stripeSend(oldStripeSecret), stripeSend(newStripeSecret)} {
			if a.status != http.StatusAccepted {
				t.Fatalf("at %s: got %d %s, want 202", at, a.status, a.raw)
			}
		}
	}
	clock.Store(until.UnixNano())
	invalid(t, hmacSend(oldSecret), "X-Signature", all)
	invalid(t, stripeSend(oldStripeSecret), "Stripe-Signature", all)
	if a := hmacSend(newSecret); a.status != http.StatusAccepted {
		t.Fatalf("new secret after the grace period: %d %s", a.status, a.raw)
	}
	if a := stripeSend(newStripeSecret); a.status != http.StatusAccepted {
		t.Fatalf("new stripe secret after the grace period: %d %s", a.status, a.raw)
	}
	f.wantStored(t, 10)
}
