package signature

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-github/v75/github"
)

// GitHub's documented example ("Validating webhook deliveries"): this secret
// and payload give this X-Hub-Signature-256.
const (
	githubDocSecret    = "It's a Secret to Everybody"
	githubDocPayload   = "Hello, World!"
	githubDocSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestSignGitHubMatchesDocExample(t *testing.T) {
	if got := SignGitHub([]byte(githubDocPayload), githubDocSecret); got != githubDocSignature {
		t.Fatalf("SignGitHub = %s, want %s", got, githubDocSignature)
	}
	if err := VerifyGitHub([]byte(githubDocPayload), githubDocSignature, []string{githubDocSecret}); err != nil {
		t.Fatalf("doc example rejected: %v", err)
	}
}

func TestSignGitHubAcceptedByGoGitHub(t *testing.T) {
	body := []byte(`{"action":"opened","number":1}`)
	secret := "gh-webhook-secret"
	sig := SignGitHub(body, secret)
	if err := github.ValidateSignature(sig, body, []byte(secret)); err != nil {
		t.Fatalf("go-github ValidateSignature rejected our signature: %v", err)
	}
	payload, err := github.ValidatePayloadFromBody("application/json", bytes.NewReader(body), sig, []byte(secret))
	if err != nil || !bytes.Equal(payload, body) {
		t.Fatalf("go-github ValidatePayloadFromBody = %q, %v", payload, err)
	}
	// And the doc example, through go-github.
	if err := github.ValidateSignature(githubDocSignature, []byte(githubDocPayload), []byte(githubDocSecret)); err != nil {
		t.Fatalf("go-github rejected the doc example: %v", err)
	}
}

func TestVerifyGitHub(t *testing.T) {
	body := []byte(`{"zen":"Design for failure."}`)
	good := SignGitHub(body, "current")
	hexPart := strings.TrimPrefix(good, "sha256=")
	tests := []struct {
		name    string
		body    []byte
		header  string
		secrets []string
		want    error
	}{
		{"valid", body, good, []string{"current"}, nil},
		{"surrounding whitespace trimmed", body, "  " + good + " ", []string{"current"}, nil},
		{"upper-case hex digits", body, "sha256=" + strings.ToUpper(hexPart), []string{"current"}, nil},
		{"rotation: second secret matches", body, good, []string{"next", "current"}, nil},
		{"tampered body", []byte(`{"zen":"Design for success."}`), good, []string{"current"}, ErrMismatch},
		{"wrong secret", body, good, []string{"other"}, ErrMismatch},
		{"no secrets configured", body, good, nil, ErrMismatch},
		{"empty secret never matches", []byte("x"), SignGitHub([]byte("x"), ""), []string{""}, ErrMismatch},
		{"missing header", body, "", []string{"current"}, ErrMissing},
		{"blank header", body, "   ", []string{"current"}, ErrMissing},
		{"no prefix", body, hexPart, []string{"current"}, ErrMalformed},
		{"legacy sha1 header", body, "sha1=" + hexPart[:40], []string{"current"}, ErrMalformed},
		{"upper-case prefix", body, "SHA256=" + hexPart, []string{"current"}, ErrMalformed},
		{"prefix only", body, "sha256=", []string{"current"}, ErrMalformed},
		{"truncated", body, good[:len(good)-2], []string{"current"}, ErrMalformed},
		{"too long", body, good + "00", []string{"current"}, ErrMalformed},
		{"not hex", body, "sha256=" + strings.Repeat("zz", 32), []string{"current"}, ErrMalformed},
		{"huge header", body, "sha256=" + strings.Repeat("a", 1<<20), []string{"current"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyGitHub(tt.body, tt.header, tt.secrets)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyGitHub = %v, want %v", err, tt.want)
			}
		})
	}
}
