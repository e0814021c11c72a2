package signature

import (
	"errors"
	"testing"
)

func TestVerifyHMACSHA256(t *testing.T) {
	body := []byte(`{"type":"order.created","id":"o-1"}`)
	good := SignHMACSHA256(body, "demo-secret", EncodingHex)
	goodB64 := SignHMACSHA256(body, "demo-secret", EncodingBase64)
	tests := []struct {
		name     string
		got      string
		prefix   string
		encoding string
		secrets  []string
		want     error
	}{
		{"hex with prefix", "sha256=" + good, "sha256=", "", []string{"demo-secret"}, nil},
		{"prefix is case-insensitive", "SHA256=" + good, "sha256=", "hex", []string{"demo-secret"}, nil},
		{"base64", goodB64, "", EncodingBase64, []string{"demo-secret"}, nil},
		{"second secret during rotation", "sha256=" + good, "sha256=", "", []string{"new-secret-1", "demo-secret"}, nil},
		{"wrong secret", "sha256=" + good, "sha256=", "", []string{"other-secret"}, ErrMismatch},
		{"missing", "", "sha256=", "", []string{"demo-secret"}, ErrMissing},
		{"missing prefix", good, "sha256=", "", []string{"demo-secret"}, ErrMalformed},
		{"not hex", "sha256=zz" + good[2:], "sha256=", "", []string{"demo-secret"}, ErrMalformed},
		{"truncated", "sha256=" + good[:20], "sha256=", "", []string{"demo-secret"}, ErrMalformed},
		{"no secrets", "sha256=" + good, "sha256=", "", nil, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyHMACSHA256(body, tt.got, tt.prefix, tt.encoding, tt.secrets)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyHMACSHA256 = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyHMACSHA256BodyTampered(t *testing.T) {
	sig := SignHMACSHA256([]byte(`{"amount":1}`), "demo-secret", "")
	if err := VerifyHMACSHA256([]byte(`{"amount":100}`), sig, "", "", []string{"demo-secret"}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("tampered body verified: %v", err)
	}
}

func FuzzVerifyHMACSHA256(f *testing.F) {
	f.Add([]byte(`{}`), "sha256=00")
	f.Add([]byte(`{"a":1}`), "sha256="+SignHMACSHA256([]byte(`{"a":1}`), "demo-secret", ""))
	f.Add([]byte(``), "")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		err := VerifyHMACSHA256(body, header, "sha256=", "hex", []string{"demo-secret"})
		if err == nil && header != "sha256="+SignHMACSHA256(body, "demo-secret", "") && header[:7] == "sha256=" {
			// Only the exact digest (in either hex case) may verify.
			if len(header) != 7+64 {
				t.Fatalf("header %q verified", header)
			}
		}
	})
}
