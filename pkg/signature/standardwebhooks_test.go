package signature

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The signing vector of the Standard Webhooks reference Go library
// (libraries/go/webhook_test.go, TestWebhookSign, module
// github.com/standard-webhooks/standard-webhooks/libraries v0.0.1).
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swPayload   = `{"test": 2432232314}`
	swExpected  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestStandardWebhooksSpecVector(t *testing.T) {
	ts := time.Unix(swTimestamp, 0)
	got, err := SignStandardWebhooks(swMsgID, ts, []byte(swPayload), swSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got != swExpected {
		t.Fatalf("SignStandardWebhooks = %s, want %s", got, swExpected)
	}
	for _, secret := range []string{swSecret, strings.TrimPrefix(swSecret, "whsec_")} {
		if err := VerifyStandardWebhooks(swMsgID, strconv.Itoa(swTimestamp), swExpected, []byte(swPayload), []string{secret}, 5*time.Minute, ts); err != nil {
			t.Fatalf("vector rejected with secret form %d: %v", len(secret), err)
		}
	}
}

func TestStandardWebhooksCrossLibrary(t *testing.T) {
	now := time.Now()
	id := "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	body := []byte(`{"type":"contact.created","data":{"id":"1f81eb52"}}`)
	wh, err := standardwebhooks.NewWebhook(swSecret)
	if err != nil {
		t.Fatal(err)
	}

	// Theirs → ours.
	theirs, err := wh.Sign(id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyStandardWebhooks(id, strconv.FormatInt(now.Unix(), 10), theirs, body, []string{swSecret}, 5*time.Minute, now); err != nil {
		t.Fatalf("library signature %q rejected: %v", theirs, err)
	}

	// Ours → theirs.
	ours, err := SignStandardWebhooks(id, now, body, swSecret)
	if err != nil {
		t.Fatal(err)
	}
	if ours != theirs {
		t.Fatalf("SignStandardWebhooks = %q, library = %q", ours, theirs)
	}
	h := http.Header{}
	h.Set(standardwebhooks.HeaderWebhookID, id)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, "v1a,AAAA "+ours)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("library rejected our signature: %v", err)
	}
	// Tampering is caught by the library as well: the two agree.
	if err := wh.Verify([]byte(`{}`), h); err == nil {
		t.Fatal("library accepted a tampered body")
	}
}

func TestVerifyStandardWebhooks(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	id := "msg_abc"
	body := []byte(`{"type":"invoice.paid"}`)
	other := "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	sign := func(id string, at time.Time, body []byte, secret string) string {
		s, err := SignStandardWebhooks(id, at, body, secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(id, now, body, swSecret)
	bad := sign(id, now, body, other)
	tol := 5 * time.Minute
	tests := []struct {
		name      string
		id, ts    string
		sig       string
		body      []byte
		secrets   []string
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"valid", id, ts, good, body, []string{swSecret}, now, tol, nil},
		{"secret without whsec_ prefix", id, ts, good, body, []string{strings.TrimPrefix(swSecret, "whsec_")}, now, tol, nil},
		{"rotation: second secret matches", id, ts, good, body, []string{other, swSecret}, now, tol, nil},
		{"undecodable secret skipped", id, ts, good, body, []string{"whsec_!!!", swSecret}, now, tol, nil},
		{"several signatures, one matches", id, ts, bad + " v1a,c2lnbmF0dXJl v2," + good[3:] + " " + good, body, []string{swSecret}, now, tol, nil},
		{"extra spaces between entries", id, ts, bad + "   " + good, body, []string{swSecret}, now, tol, nil},
		{"invalid v1 ignored when another matches", id, ts, "v1, v1,!!!! " + good, body, []string{swSecret}, now, tol, nil},
		{"just inside the tolerance", id, ts, good, body, []string{swSecret}, now.Add(tol), tol, nil},
		{"zero tolerance means the default", id, ts, good, body, []string{swSecret}, now.Add(-4 * time.Minute), 0, nil},
		{"tampered body", id, ts, good, []byte(`{"type":"invoice.unpaid"}`), []string{swSecret}, now, tol, ErrMismatch},
		{"tampered id", "msg_abd", ts, good, body, []string{swSecret}, now, tol, ErrMismatch},
		{"tampered timestamp", id, strconv.FormatInt(now.Unix()+1, 10), good, body, []string{swSecret}, now, tol, ErrMismatch},
		{"wrong secret", id, ts, good, body, []string{other}, now, tol, ErrMismatch},
		{"no usable secret", id, ts, good, body, []string{"whsec_***"}, now, tol, ErrMismatch},
		{"v1a is not checked", id, ts, "v1a," + good[3:], body, []string{swSecret}, now, tol, ErrMalformed},
		{"expired", id, ts, good, body, []string{swSecret}, now.Add(tol + time.Second), tol, ErrExpired},
		{"from the future", id, ts, good, body, []string{swSecret}, now.Add(-tol - time.Second), tol, ErrExpired},
		{"missing id", "", ts, good, body, []string{swSecret}, now, tol, ErrMissing},
		{"missing timestamp", id, "", good, body, []string{swSecret}, now, tol, ErrMissing},
		{"missing signature", id, ts, "", body, []string{swSecret}, now, tol, ErrMissing},
		{"timestamp not a number", id, "yesterday", good, body, []string{swSecret}, now, tol, ErrMalformed},
		{"timestamp in milliseconds is expired", id, ts + "000", good, body, []string{swSecret}, now, tol, ErrExpired},
		{"timestamp negative", id, "-" + ts, good, body, []string{swSecret}, now, tol, ErrMalformed},
		{"timestamp with fraction", id, ts + ".5", good, body, []string{swSecret}, now, tol, ErrMalformed},
		{"partial signature", id, ts, "v1,", body, []string{swSecret}, now, tol, ErrMalformed},
		{"entry without comma", id, ts, "v1" + good[3:], body, []string{swSecret}, now, tol, ErrMalformed},
		{"entry without version", id, ts, good[2:], body, []string{swSecret}, now, tol, ErrMalformed},
		{"not base64", id, ts, "v1,****************************************************", body, []string{swSecret}, now, tol, ErrMalformed},
		{"line break inside the base64", id, ts, good[:10] + "\n" + good[10:], body, []string{swSecret}, now, tol, ErrMalformed},
		{"truncated signature", id, ts, good[:len(good)-4], body, []string{swSecret}, now, tol, ErrMalformed},
		{"17 entries", id, ts, strings.Repeat(bad+" ", 16) + good, body, []string{swSecret}, now, tol, ErrMalformed},
		{"header over 4 KiB", id, ts, strings.Repeat(" ", 5000) + "x" + good, body, []string{swSecret}, now, tol, ErrMalformed},
		{"id over 1 KiB", strings.Repeat("i", 2000), ts, good, body, []string{swSecret}, now, tol, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyStandardWebhooks(tt.id, tt.ts, tt.sig, tt.body, tt.secrets, tt.tolerance, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyStandardWebhooks = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyStandardWebhooks16Entries(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	good, _ := SignStandardWebhooks("m", now, nil, swSecret)
	h := strings.Repeat("v1a,x ", 15) + good
	if err := VerifyStandardWebhooks("m", strconv.FormatInt(now.Unix(), 10), h, nil, []string{swSecret}, time.Minute, now); err != nil {
		t.Fatalf("16 entries rejected: %v", err)
	}
}

func TestSignStandardWebhooksBadSecret(t *testing.T) {
	_, err := SignStandardWebhooks("m", time.Now(), nil, "whsec_not*base64")
	if err == nil {
		t.Fatal("undecodable secret accepted")
	}
	if strings.Contains(err.Error(), "not*base64") {
		t.Fatalf("error echoes the secret: %v", err)
	}
}

func TestValidStandardWebhooksSecret(t *testing.T) {
	tests := []struct {
		name, secret, wantMsg string
	}{
		{"reference secret", swSecret, ""},
		{"16 bytes", "whsec_AAAAAAAAAAAAAAAAAAAAAA==", ""},
		{"no prefix", strings.TrimPrefix(swSecret, "whsec_"), "does not start with whsec_"},
		{"other prefix", "whsk_" + strings.TrimPrefix(swSecret, "whsec_"), "does not start with whsec_"},
		{"empty", "", "does not start with whsec_"},
		{"not base64", "whsec_S3cr3t!S3cr3t!S3cr3t!S3cr3t!", "not valid base64"},
		{"missing padding", "whsec_AAAAAAAAAAAAAAAAAAAAAA", "not valid base64"},
		{"15 bytes", "whsec_AAAAAAAAAAAAAAAAAAAA", "decodes to 15 bytes, want at least 16"},
		{"prefix only", "whsec_", "decodes to 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidStandardWebhooksSecret(tt.secret)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("ValidStandardWebhooksSecret = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ValidStandardWebhooksSecret = %v, want %q", err, tt.wantMsg)
			}
			if body := strings.TrimPrefix(tt.secret, "whsec_"); len(body) > 3 && strings.Contains(err.Error(), body) {
				t.Fatalf("error echoes the secret: %v", err)
			}
		})
	}
}
