package signature

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestErrorsNeverContainSecrets drives every verifier into each of its
// failures with a recognizable secret and checks no error text contains it.
func TestErrorsNeverContainSecrets(t *testing.T) {
	const secret = "S3cr3tValue-DoNotLeak"
	swSecretB64 := "whsec_UzNjcjN0VmFsdWUtRG9Ob3RMZWFr" // base64 of the secret
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{}`)
	var errs []error
	for _, h := range []string{"", "x", SignGitHub([]byte("other"), secret), SignGitHub(body, secret) + "0"} {
		errs = append(errs, VerifyGitHub(body, h, []string{secret}))
	}
	for _, h := range []string{"", "t=1", SignStripe(body, secret, now.Add(time.Hour)), SignStripe([]byte("x"), secret, now)} {
		_, err := VerifyStripe(body, h, []string{secret}, time.Minute, now)
		errs = append(errs, err)
	}
	good, _ := SignStandardWebhooks("m", now, []byte("x"), swSecretB64)
	for _, h := range []string{"", "v1", good} {
		errs = append(errs, VerifyStandardWebhooks("m", ts, h, body, []string{swSecretB64, "whsec_" + secret}, time.Minute, now))
	}
	errs = append(errs, VerifyStandardWebhooks("m", "1", good, body, []string{swSecretB64}, time.Minute, now))
	_, err := SignStandardWebhooks("m", now, body, "whsec_"+secret)
	errs = append(errs, err, ValidStandardWebhooksSecret(secret), ValidStandardWebhooksSecret("whsec_"+secret), ValidStandardWebhooksSecret("whsec_QUJD"))
	for _, h := range []string{"", "x", SignTwilio("https://a.example/", nil, secret)} {
		errs = append(errs, VerifyTwilio("https://b.example/", url.Values{"a": {"b"}}, h, []string{secret}))
		errs = append(errs, VerifyTwilioJSON("https://b.example/?bodySHA256=00", body, h, []string{secret}))
	}
	for _, h := range []string{"", "Bearer", "Basic " + secret, "Bearer " + secret + "x", "Bearer " + secret[:5]} {
		errs = append(errs, VerifyBearer(h, []string{secret}))
	}
	for i, err := range errs {
		if err == nil {
			t.Fatalf("case %d: expected an error", i)
		}
		msg := err.Error()
		if strings.Contains(msg, secret) || strings.Contains(msg, "UzNjcjN0") {
			t.Errorf("case %d: error %q contains the secret", i, msg)
		}
	}
}

// TestErrorsWrapSentinels checks errors.Is works through the added detail.
func TestErrorsWrapSentinels(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	_, err := VerifyStripe(nil, SignStripe(nil, "s", now.Add(-time.Hour)), []string{"s"}, time.Minute, now)
	if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "stripe") {
		t.Fatalf("VerifyStripe = %v", err)
	}
	if err := VerifyGitHub(nil, "sha256=zz", nil); !errors.Is(err, ErrMalformed) || err.Error() == ErrMalformed.Error() {
		t.Fatalf("VerifyGitHub = %v, want wrapped detail", err)
	}
}
