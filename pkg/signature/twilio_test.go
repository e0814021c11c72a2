package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"
)

// Test vectors of Twilio's helper libraries: twilio-go
// client/request_validator_test.go (v1.31.0), twilio-python
// tests/unit/test_request_validator.py and twilio-php
// tests/Twilio/Unit/RequestValidatorTest.php. All use auth token "12345".
const (
	twilioToken    = "12345"
	twilioURL      = "https://mycompany.com/myapp.php?foo=1&bar=2"
	twilioBodyHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	twilioJSONBody = `{"property": "value", "boolean": true}`
)

// twilioGoParams are twilio-go's test parameters.
func twilioGoParams() url.Values {
	return url.Values{
		"Digits":                {"1234"},
		"CallSid":               {"CA1234567890ABCDE"},
		"To":                    {"+18005551212"},
		"Caller":                {"+14158675309"},
		"From":                  {"+14158675309"},
		"ReasonConferenceEnded": {"test"},
		"Reason":                {"Participant"},
	}
}

// twilioDocParams are the parameters of Twilio's documented example (also
// twilio-python's and twilio-php's tests).
func twilioDocParams() url.Values {
	return url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675309"},
		"Digits":  {"1234"},
		"From":    {"+14158675309"},
		"To":      {"+18005551212"},
	}
}

func TestTwilioLibraryVectors(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		params url.Values
		sig    string
	}{
		{"twilio-go: valid", twilioURL, twilioGoParams(), "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{"twilio-go: https with port, signed without", strings.Replace(twilioURL, ".com", ".com:1234", 1), twilioGoParams(), "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{"twilio-go: http, signed without port", strings.Replace(twilioURL, "https", "http", 1), twilioGoParams(), "n2xBNyzSW7rfYStDtOFiFMv7qNo="},
		{"twilio-go: http with port, signed without", strings.Replace(strings.Replace(twilioURL, ".com", ".com:1234", 1), "https", "http", 1), twilioGoParams(), "n2xBNyzSW7rfYStDtOFiFMv7qNo="},
		{"twilio-go: form body", twilioURL, url.Values{"property": {"value"}, "boolean": {"true"}}, "NBdBDr/T/lgjI+tlgpXjKZQZs/k="},
		{"docs: valid", twilioURL, twilioDocParams(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"python/php: https signed with :443", twilioURL, twilioDocParams(), "kvajT1Ptam85bY51eRf/AJRuM3w="},
		{"python/php: http signed with :80", strings.Replace(twilioURL, "https", "http", 1), twilioDocParams(), "0ZXoZLH/DfblKGATFgpif+LLRf4="},
		{"python/php: http with :1234 signed with it", strings.Replace(strings.Replace(twilioURL, ".com", ".com:1234", 1), "https", "http", 1), twilioDocParams(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="},
		{"php: basic-auth credentials are signed", "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", twilioDocParams(), "CukzLTc1tT5dXEDIHm/tKBanW10="},
		{"php: credentials with :443", "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", twilioDocParams(), "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="},
		{"php: user only", "https://user@mycompany.com/myapp.php?foo=1&bar=2", twilioDocParams(), "2YRLlVAflCqxaNicjMpJcSTgzSs="},
		{"python/php: repeated name, values sorted and de-duplicated", twilioURL, url.Values{"Sid": {"CA123"}, "SidAccount": {"AC123"}, "Digits": {"5678", "1234", "1234"}}, "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyTwilio(tt.url, tt.params, tt.sig, []string{twilioToken}); err != nil {
				t.Fatalf("VerifyTwilio rejected a library vector: %v", err)
			}
			if err := VerifyTwilio(tt.url, tt.params, tt.sig, []string{"54321"}); !errors.Is(err, ErrMismatch) {
				t.Fatalf("VerifyTwilio with another token = %v", err)
			}
		})
	}
	// twilio-go: parameters sorted the wrong way round are rejected.
	if err := VerifyTwilio(twilioURL, twilioGoParams(), "95+Bu0JVPi0r/SsESZCVf0dWAjw=", []string{twilioToken}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrongly sorted signature: %v", err)
	}
	// The documented example is exactly what SignTwilio produces.
	if got := SignTwilio(twilioURL, twilioDocParams(), twilioToken); got != "RSOYDt4T1cUTdK1PDd93/VVr8B8=" {
		t.Fatalf("SignTwilio = %s", got)
	}
}

func TestTwilioJSONLibraryVectors(t *testing.T) {
	tests := []struct{ name, url, sig string }{
		{"twilio-go/php/python: with other params", twilioURL + "&bodySHA256=" + twilioBodyHash, "a9nBmqA0ju/hNViExpshrM61xv4="},
		{"twilio-go: bodySHA256 only", "https://mycompany.com/myapp.php?bodySHA256=" + twilioBodyHash, "y77kIzt2vzLz71DgmJGsen2scGs="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyTwilioJSON(tt.url, []byte(twilioJSONBody), tt.sig, []string{twilioToken}); err != nil {
				t.Fatalf("VerifyTwilioJSON rejected a library vector: %v", err)
			}
		})
	}
	sum := sha256.Sum256([]byte(twilioJSONBody))
	if hex.EncodeToString(sum[:]) != twilioBodyHash {
		t.Fatal("body hash vector does not match")
	}
}

func TestSignTwilioAcceptedByTwilioGo(t *testing.T) {
	v := client.NewRequestValidator("auth-token-1")
	params := url.Values{"From": {"+15005550006"}, "Body": {"Hello & good bye"}, "MessageSid": {"SM123"}}
	for _, u := range []string{
		"https://events.example.com/hooks/twilio?tenant=t1",
		"https://events.example.com:443/hooks/twilio",
		"http://localhost:8080/hooks/twilio",
	} {
		sig := SignTwilio(u, params, "auth-token-1")
		single := map[string]string{}
		for k, vs := range params {
			single[k] = vs[0]
		}
		if !v.Validate(u, single, sig) {
			t.Errorf("twilio-go Validate rejected our signature for %s", u)
		}
		if !v.ValidateBody(u, []byte(params.Encode()), sig) {
			t.Errorf("twilio-go ValidateBody (form) rejected our signature for %s", u)
		}
		if err := VerifyTwilio(u, params, sig, []string{"auth-token-1"}); err != nil {
			t.Errorf("VerifyTwilio rejected our own signature for %s: %v", u, err)
		}
	}

	// JSON: bodySHA256 in the URL, URL signed alone.
	body := []byte(`{"event":"message.delivered"}`)
	sum := sha256.Sum256(body)
	u := "https://events.example.com/hooks/twilio?bodySHA256=" + hex.EncodeToString(sum[:])
	sig := SignTwilio(u, nil, "auth-token-1")
	if !v.ValidateBody(u, body, sig) {
		t.Fatal("twilio-go ValidateBody (JSON) rejected our signature")
	}
	if err := VerifyTwilioJSON(u, body, sig, []string{"auth-token-1"}); err != nil {
		t.Fatalf("VerifyTwilioJSON rejected our own signature: %v", err)
	}
}

func TestVerifyTwilio(t *testing.T) {
	const u = "https://events.example.com/hooks/twilio"
	params := url.Values{"MessageSid": {"SM1"}, "Body": {"hi"}, "To": {"+15005550006"}}
	good := SignTwilio(u, params, "primary")
	withPort := SignTwilio("https://events.example.com:443/hooks/twilio", params, "primary")
	with := func(k, v string) url.Values {
		p := url.Values{}
		for kk, vv := range params {
			p[kk] = append([]string(nil), vv...)
		}
		p.Set(k, v)
		return p
	}
	tests := []struct {
		name   string
		url    string
		params url.Values
		header string
		tokens []string
		want   error
	}{
		{"valid", u, params, good, []string{"primary"}, nil},
		{"rotation: secondary token matches", u, params, good, []string{"secondary", "primary"}, nil},
		{"signed with :443, configured without", u, params, withPort, []string{"primary"}, nil},
		{"signed without port, configured with :443", "https://events.example.com:443/hooks/twilio", params, good, []string{"primary"}, nil},
		{"repeated values in any order", u, url.Values{"a": {"2", "1"}}, SignTwilio(u, url.Values{"a": {"1", "2"}}, "primary"), []string{"primary"}, nil},
		{"tampered value", u, with("Body", "bye"), good, []string{"primary"}, ErrMismatch},
		{"added parameter", u, with("Extra", "1"), good, []string{"primary"}, ErrMismatch},
		{"dropped parameter", u, url.Values{"MessageSid": {"SM1"}, "Body": {"hi"}}, good, []string{"primary"}, ErrMismatch},
		{"value moved to another name", u, url.Values{"MessageSid": {"SM1"}, "Bod": {"yhi"}, "To": {"+15005550006"}}, good, []string{"primary"}, nil}, // inherent to Twilio's delimiter-free scheme
		{"other path", "https://events.example.com/hooks/twilio2", params, good, []string{"primary"}, ErrMismatch},
		{"other scheme", "http://events.example.com/hooks/twilio", params, good, []string{"primary"}, ErrMismatch},
		{"other host", "https://evil.example.com/hooks/twilio", params, good, []string{"primary"}, ErrMismatch},
		{"wrong token", u, params, good, []string{"other"}, ErrMismatch},
		{"no tokens", u, params, good, nil, ErrMismatch},
		{"empty token never matches", u, params, SignTwilio(u, params, ""), []string{""}, ErrMismatch},
		{"missing", u, params, "", []string{"primary"}, ErrMissing},
		{"not base64", u, params, "not base64 at all!!!!!!!!!!!", []string{"primary"}, ErrMalformed},
		{"truncated", u, params, good[:20], []string{"primary"}, ErrMalformed},
		{"line break inside", u, params, good[:10] + "\n" + good[10:27], []string{"primary"}, ErrMalformed},
		{"SHA-256 length", u, params, SignHMACSHA256([]byte(u), "primary", EncodingBase64), []string{"primary"}, ErrMalformed},
		{"huge header", u, params, strings.Repeat("A", 10000), []string{"primary"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyTwilio(tt.url, tt.params, tt.header, tt.tokens)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyTwilio = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyTwilioJSON(t *testing.T) {
	body := []byte(`{"event":"call.completed"}`)
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	u := "https://events.example.com/hooks/twilio?bodySHA256=" + h
	good := SignTwilio(u, nil, "primary")
	tests := []struct {
		name   string
		url    string
		body   []byte
		header string
		tokens []string
		want   error
	}{
		{"valid", u, body, good, []string{"primary"}, nil},
		{"rotation", u, body, good, []string{"old", "primary"}, nil},
		{"upper-case hash", "https://events.example.com/hooks/twilio?bodySHA256=" + strings.ToUpper(h), body, SignTwilio("https://events.example.com/hooks/twilio?bodySHA256="+strings.ToUpper(h), nil, "primary"), []string{"primary"}, nil},
		{"tampered body", u, []byte(`{"event":"call.failed"}`), good, []string{"primary"}, ErrMismatch},
		{"hash swapped in URL", "https://events.example.com/hooks/twilio?bodySHA256=" + strings.Repeat("0", 64), body, good, []string{"primary"}, ErrMismatch},
		{"wrong token", u, body, good, []string{"other"}, ErrMismatch},
		{"missing header", u, body, "", []string{"primary"}, ErrMissing},
		{"malformed header", u, body, "abc", []string{"primary"}, ErrMalformed},
		{"no bodySHA256", "https://events.example.com/hooks/twilio", body, SignTwilio("https://events.example.com/hooks/twilio", nil, "primary"), []string{"primary"}, ErrMalformed},
		{"two bodySHA256", u + "&bodySHA256=" + h, body, SignTwilio(u+"&bodySHA256="+h, nil, "primary"), []string{"primary"}, ErrMalformed},
		{"bodySHA256 not hex", "https://events.example.com/hooks/twilio?bodySHA256=xyz", body, good, []string{"primary"}, ErrMalformed},
		{"URL does not parse", "https://events.example.com/%zz?bodySHA256=" + h, body, good, []string{"primary"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyTwilioJSON(tt.url, tt.body, tt.header, tt.tokens)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyTwilioJSON = %v, want %v", err, tt.want)
			}
		})
	}
}
