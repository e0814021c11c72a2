package signature

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every header parser. Each asserts that nothing panics,
// that every error wraps one of the package's sentinel errors, and that an
// input verifies only when it carries the genuine signature (which random
// input never does). Seeds live in f.Add and in testdata/fuzz/<FuzzName>/,
// and run as ordinary tests.

const (
	fuzzSecret = "fuzz-secret"
	fuzzSWKey  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// fuzzNow is the fixed clock of the fuzz targets, so seeds with genuine
// signatures keep verifying.
var fuzzNow = time.Unix(1_700_000_000, 0)

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []error{ErrMissing, ErrMalformed, ErrMismatch, ErrExpired} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %q wraps no sentinel", err)
}

func checkNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error %q contains secret material", err)
		}
	}
}

func FuzzGitHub(f *testing.F) {
	f.Add([]byte(`{"a":1}`), SignGitHub([]byte(`{"a":1}`), fuzzSecret))
	f.Add([]byte(githubDocPayload), githubDocSignature)
	f.Add([]byte(``), "sha256=")
	f.Add([]byte(`x`), "sha1=0000000000000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		err := VerifyGitHub(body, header, []string{"other-secret", fuzzSecret})
		checkSentinel(t, err)
		checkNoSecret(t, err, fuzzSecret)
		if err == nil {
			got, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
			want := strings.TrimPrefix(SignGitHub(body, fuzzSecret), "sha256=")
			if !ok || !strings.EqualFold(got, want) {
				t.Fatalf("header %q verified for body %q", header, body)
			}
		}
	})
}

func FuzzStripeHeader(f *testing.F) {
	body := []byte(`{"id":"evt_1","object":"event"}`)
	good := SignStripe(body, fuzzSecret, fuzzNow)
	f.Add(body, good)
	f.Add(body, good+",v0=abc")
	f.Add(body, "t=1700000000,v1=00,v1="+strings.Repeat("ab", 32))
	f.Add(body, "t=,v1=")
	f.Add(body, "t=1,t=2")
	f.Add(body, ",,,===")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		ts, err := VerifyStripe(body, header, []string{"whsec_other", fuzzSecret}, 5*time.Minute, fuzzNow)
		checkSentinel(t, err)
		checkNoSecret(t, err, fuzzSecret)
		if err != nil {
			if !ts.IsZero() {
				t.Fatalf("timestamp %v returned with error %v", ts, err)
			}
			return
		}
		if d := fuzzNow.Sub(ts); d > 5*time.Minute || d < -5*time.Minute {
			t.Fatalf("timestamp %v outside the tolerance verified", ts)
		}
		want := SignStripe(body, fuzzSecret, ts)
		v1 := want[strings.Index(want, ",v1=")+1:]
		if !strings.Contains(strings.ToLower(header), v1) {
			t.Fatalf("header %q verified without the genuine v1 %s", header, v1)
		}
	})
}

func FuzzStandardWebhooksHeader(f *testing.F) {
	body := []byte(`{"type":"x"}`)
	good, _ := SignStandardWebhooks("msg_1", fuzzNow, body, fuzzSWKey)
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	f.Add("msg_1", ts, good, body)
	f.Add("msg_1", ts, "v1a,AAAA v2,BBBB "+good, body)
	f.Add("msg_1", ts, "v1,", body)
	f.Add("", "", "", []byte{})
	f.Add("msg_1", "99999999999999999999", good, body)
	f.Add("a.b", "1.2", "v1,v1,v1", body)
	f.Fuzz(func(t *testing.T, id, timestamp, sig string, body []byte) {
		err := VerifyStandardWebhooks(id, timestamp, sig, body, []string{"whsec_AAAAAAAAAAAAAAAAAAAAAA==", fuzzSWKey}, 5*time.Minute, fuzzNow)
		checkSentinel(t, err)
		checkNoSecret(t, err, strings.TrimPrefix(fuzzSWKey, "whsec_"))
		if err != nil {
			return
		}
		n, ok := parseUnixSeconds(strings.TrimSpace(timestamp))
		if !ok {
			t.Fatalf("timestamp %q verified", timestamp)
		}
		want, _ := SignStandardWebhooks(id, time.Unix(n, 0), body, fuzzSWKey)
		if !strings.Contains(sig, want) {
			t.Fatalf("signature header %q verified without the genuine %s", sig, want)
		}
	})
}

func FuzzTwilio(f *testing.F) {
	const u = "https://events.example.com/hooks/twilio?x=1"
	form := "Body=hi&From=%2B15005550006&Body=ho"
	params, _ := url.ParseQuery(form)
	f.Add(u, form, SignTwilio(u, params, fuzzSecret))
	f.Add("https://events.example.com:443/hooks/twilio", "", SignTwilio("https://events.example.com/hooks/twilio", nil, fuzzSecret))
	f.Add("http://[::1]:8080/x", "a=1", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("%zz", "%zz", "!!!!")
	body := `{"a":1}`
	sum := sha256.Sum256([]byte(body))
	ju := "https://events.example.com/j?bodySHA256=" + hex.EncodeToString(sum[:])
	f.Add(ju, body, SignTwilio(ju, nil, fuzzSecret))
	f.Fuzz(func(t *testing.T, fullURL, body, header string) {
		tokens := []string{"other-token", fuzzSecret}
		genuine := func(params url.Values) bool {
			h := strings.TrimSpace(header)
			for _, v := range []string{fullURL, twilioAddPort(fullURL), twilioRemovePort(fullURL)} {
				if h == SignTwilio(v, params, fuzzSecret) {
					return true
				}
			}
			return false
		}

		params, _ := url.ParseQuery(body)
		err := VerifyTwilio(fullURL, params, header, tokens)
		checkSentinel(t, err)
		checkNoSecret(t, err, fuzzSecret)
		if err == nil && !genuine(params) {
			t.Fatalf("VerifyTwilio accepted %q for %q %q", header, fullURL, body)
		}

		err = VerifyTwilioJSON(fullURL, []byte(body), header, tokens)
		checkSentinel(t, err)
		checkNoSecret(t, err, fuzzSecret)
		if err == nil {
			u, perr := url.Parse(fullURL)
			if perr != nil {
				t.Fatalf("unparsable URL %q verified", fullURL)
			}
			got, _ := hex.DecodeString(u.Query().Get("bodySHA256"))
			sum := sha256.Sum256([]byte(body))
			if string(got) != string(sum[:]) || !genuine(nil) {
				t.Fatalf("VerifyTwilioJSON accepted %q for %q %q", header, fullURL, body)
			}
		}
	})
}

func FuzzSendGrid(f *testing.F) {
	key, err := ParseSendGridPublicKey(sendGridVectorKey)
	if err != nil {
		f.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	keys := []*ecdsa.PublicKey{nil, &other.PublicKey, key}
	now := time.Unix(1600112502, 0)
	f.Add([]byte(sendGridVectorPayload), sendGridVectorTimestamp, sendGridVectorSignature)
	f.Add([]byte(sendGridVectorPayload), sendGridVectorTimestamp, "MAYCAQECAQE=")
	f.Add([]byte("x"), "1600112502", "MEUCIQ==")
	f.Add([]byte(""), "", "")
	f.Fuzz(func(t *testing.T, body []byte, timestamp, sig string) {
		err := VerifySendGrid(body, timestamp, sig, keys, 5*time.Minute, now)
		checkSentinel(t, err)
		if err == nil && (string(body) != sendGridVectorPayload || timestamp != sendGridVectorTimestamp) {
			t.Fatalf("signature %q verified for %q at %q", sig, body, timestamp)
		}
	})
}

func FuzzSendGridPublicKey(f *testing.F) {
	f.Add(sendGridVectorKey)
	f.Add("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSendGridPublicKey(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if k == nil || k.Curve != elliptic.P256() || !k.Curve.IsOnCurve(k.X, k.Y) {
			t.Fatalf("accepted a key that is not a P-256 point")
		}
	})
}

func FuzzBearer(f *testing.F) {
	f.Add("Bearer " + fuzzSecret)
	f.Add("bearer  " + fuzzSecret + " ")
	f.Add("Basic Zm9vOmJhcg==")
	f.Add("Bearer")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		err := VerifyBearer(header, []string{"", "other-token", fuzzSecret})
		checkSentinel(t, err)
		checkNoSecret(t, err, fuzzSecret)
		if err == nil {
			fields := strings.Fields(header)
			if len(fields) != 2 || !strings.EqualFold(fields[0], "bearer") || fields[1] != fuzzSecret {
				t.Fatalf("header %q verified", header)
			}
		}
	})
}
