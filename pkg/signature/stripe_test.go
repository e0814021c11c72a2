package signature

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v84/webhook"
)

const stripeSecret = "whsec_test_secret_0123456789"

// stripeNow is a fixed clock for the table tests.
var stripeNow = time.Unix(1_700_000_000, 0)

func TestStripeAcceptsStripeGoTestPayload(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}`)
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload:   body,
		Secret:    stripeSecret,
		Timestamp: stripeNow,
	})
	got, err := VerifyStripe(body, signed.Header, []string{stripeSecret}, 5*time.Minute, stripeNow)
	if err != nil {
		t.Fatalf("VerifyStripe rejected stripe-go's header %q: %v", signed.Header, err)
	}
	if !got.Equal(stripeNow) {
		t.Fatalf("timestamp = %v, want %v", got, stripeNow)
	}
	if want := SignStripe(body, stripeSecret, stripeNow); signed.Header != want {
		t.Fatalf("SignStripe = %q, stripe-go = %q", want, signed.Header)
	}
}

func TestSignStripeAcceptedByStripeGo(t *testing.T) {
	body := []byte(`{"id":"evt_2","object":"event","api_version":"2020-08-27","type":"customer.created","data":{"object":{}}}`)
	header := SignStripe(body, stripeSecret, time.Now())
	if err := webhook.ValidatePayloadWithTolerance(body, header, stripeSecret, 300*time.Second); err != nil {
		t.Fatalf("stripe-go ValidatePayloadWithTolerance rejected %q: %v", header, err)
	}
	ev, err := webhook.ConstructEventWithOptions(body, header, stripeSecret, webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		t.Fatalf("stripe-go ConstructEventWithOptions: %v", err)
	}
	if ev.ID != "evt_2" {
		t.Fatalf("event id = %q", ev.ID)
	}
	// Our signature with another secret is rejected by stripe-go too.
	if err := webhook.ValidatePayloadWithTolerance(body, SignStripe(body, "whsec_other", time.Now()), stripeSecret, 300*time.Second); err == nil {
		t.Fatal("stripe-go accepted a signature made with another secret")
	}
}

func TestVerifyStripe(t *testing.T) {
	body := []byte(`{"id":"evt_3","object":"event"}`)
	ts := strconv.FormatInt(stripeNow.Unix(), 10)
	good := SignStripe(body, stripeSecret, stripeNow)
	v1 := strings.TrimPrefix(good, "t="+ts+",v1=")
	other := strings.TrimPrefix(SignStripe(body, "whsec_other", stripeNow), "t="+ts+",v1=")
	tol := 5 * time.Minute
	tests := []struct {
		name    string
		body    []byte
		header  string
		secrets []string
		now     time.Time
		want    error
	}{
		{"valid", body, good, []string{stripeSecret}, stripeNow, nil},
		{"rotation: second secret matches", body, good, []string{"whsec_new", stripeSecret}, stripeNow, nil},
		{"several v1, the second matches", body, "t=" + ts + ",v1=" + other + ",v1=" + v1, []string{stripeSecret}, stripeNow, nil},
		{"v0 ignored", body, "t=" + ts + ",v1=" + v1 + ",v0=" + other, []string{stripeSecret}, stripeNow, nil},
		{"unknown scheme before v1 ignored", body, "t=" + ts + ",v2=abc,v1=" + v1, []string{stripeSecret}, stripeNow, nil},
		{"invalid v1 ignored when another matches", body, "t=" + ts + ",v1=nothex,v1=" + v1, []string{stripeSecret}, stripeNow, nil},
		{"spaces after commas", body, "t=" + ts + ", v1=" + v1, []string{stripeSecret}, stripeNow, nil},
		{"upper-case hex", body, "t=" + ts + ",v1=" + strings.ToUpper(v1), []string{stripeSecret}, stripeNow, nil},
		{"t last", body, "v1=" + v1 + ",t=" + ts, []string{stripeSecret}, stripeNow, nil},
		{"just inside the tolerance (old)", body, good, []string{stripeSecret}, stripeNow.Add(tol), nil},
		{"just inside the tolerance (future)", body, good, []string{stripeSecret}, stripeNow.Add(-tol), nil},
		{"zero tolerance means the default", body, good, []string{stripeSecret}, stripeNow.Add(4 * time.Minute), nil},
		{"tampered body", []byte(`{"id":"evt_4","object":"event"}`), good, []string{stripeSecret}, stripeNow, ErrMismatch},
		{"timestamp changed", body, "t=" + strconv.FormatInt(stripeNow.Unix()+1, 10) + ",v1=" + v1, []string{stripeSecret}, stripeNow, ErrMismatch},
		{"wrong secret", body, good, []string{"whsec_other"}, stripeNow, ErrMismatch},
		{"secret must not be base64-decoded", body, SignStripe(body, "abcd", stripeNow), []string{"i\xb7\x1d"}, stripeNow, ErrMismatch},
		{"no secrets", body, good, nil, stripeNow, ErrMismatch},
		{"only v0 matches", body, "t=" + ts + ",v1=" + other + ",v0=" + v1, []string{stripeSecret}, stripeNow, ErrMismatch},
		{"expired", body, good, []string{stripeSecret}, stripeNow.Add(tol + time.Second), ErrExpired},
		{"from the future", body, good, []string{stripeSecret}, stripeNow.Add(-tol - time.Second), ErrExpired},
		{"expired and wrong secret", body, good, []string{"whsec_other"}, stripeNow.Add(time.Hour), ErrExpired},
		{"t=0", body, SignStripe(body, stripeSecret, time.Unix(0, 0)), []string{stripeSecret}, stripeNow, ErrExpired},
		{"missing", body, "", []string{stripeSecret}, stripeNow, ErrMissing},
		{"blank", body, " \t", []string{stripeSecret}, stripeNow, ErrMissing},
		{"no t", body, "v1=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"no v1", body, "t=" + ts, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"only v0", body, "t=" + ts + ",v0=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"only invalid v1", body, "t=" + ts + ",v1=xyz", []string{stripeSecret}, stripeNow, ErrMalformed},
		{"truncated v1", body, "t=" + ts + ",v1=" + v1[:62], []string{stripeSecret}, stripeNow, ErrMalformed},
		{"t not a number", body, "t=abc,v1=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"negative t", body, "t=-1,v1=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"t with sign", body, "t=+" + ts + ",v1=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"huge t", body, "t=99999999999999999999999,v1=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"empty t", body, "t=,v1=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"two t", body, "t=" + ts + ",t=" + ts + ",v1=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"element without =", body, "t=" + ts + ",v1", []string{stripeSecret}, stripeNow, ErrMalformed},
		{"element with two =", body, "t=" + ts + ",v1=" + v1 + "=", []string{stripeSecret}, stripeNow, ErrMalformed},
		{"trailing comma", body, good + ",", []string{stripeSecret}, stripeNow, ErrMalformed},
		{"garbage", body, "not a stripe header", []string{stripeSecret}, stripeNow, ErrMalformed},
		{"17 v1 values", body, "t=" + ts + strings.Repeat(",v1="+other, 16) + ",v1=" + v1, []string{stripeSecret}, stripeNow, ErrMalformed},
		{"header over 4 KiB", body, good + strings.Repeat(",v0="+other, 70), []string{stripeSecret}, stripeNow, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tolerance := tol
			if strings.HasPrefix(tt.name, "zero tolerance") {
				tolerance = 0
			}
			got, err := VerifyStripe(tt.body, tt.header, tt.secrets, tolerance, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyStripe = %v, want %v", err, tt.want)
			}
			if err == nil && !got.Equal(stripeNow) {
				t.Fatalf("timestamp = %v, want %v", got, stripeNow)
			}
			if err != nil && !got.IsZero() {
				t.Fatalf("timestamp %v returned with an error", got)
			}
		})
	}
}

func TestVerifyStripe16SignaturesAllowed(t *testing.T) {
	body := []byte(`{}`)
	good := SignStripe(body, stripeSecret, stripeNow)
	h := fmt.Sprintf("t=%d%s", stripeNow.Unix(), strings.Repeat(",v1="+strings.Repeat("0", 64), 15)) + "," + good[strings.Index(good, "v1="):]
	if _, err := VerifyStripe(body, h, []string{stripeSecret}, time.Minute, stripeNow); err != nil {
		t.Fatalf("16 signatures rejected: %v", err)
	}
}
