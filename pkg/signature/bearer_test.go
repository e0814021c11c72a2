package signature

import (
	"errors"
	"strings"
	"testing"
)

func TestVerifyBearer(t *testing.T) {
	const tok = "gte_live_9f8e7d6c5b4a"
	tests := []struct {
		name   string
		header string
		tokens []string
		want   error
	}{
		{"valid", "Bearer " + tok, []string{tok}, nil},
		{"scheme is case-insensitive", "bearer " + tok, []string{tok}, nil},
		{"upper-case scheme", "BEARER " + tok, []string{tok}, nil},
		{"several spaces after the scheme", "Bearer   " + tok, []string{tok}, nil},
		{"surrounding whitespace", "  Bearer " + tok + " ", []string{tok}, nil},
		{"rotation: second token matches", "Bearer " + tok, []string{"gte_live_new", tok}, nil},
		{"base64 token characters", "Bearer abc+/=._~-", []string{"abc+/=._~-"}, nil},
		{"wrong token", "Bearer nope", []string{tok}, ErrMismatch},
		{"prefix of the token", "Bearer " + tok[:10], []string{tok}, ErrMismatch},
		{"token with extra suffix", "Bearer " + tok + "x", []string{tok}, ErrMismatch},
		{"token is case-sensitive", "Bearer " + strings.ToUpper(tok), []string{tok}, ErrMismatch},
		{"no tokens configured", "Bearer " + tok, nil, ErrMismatch},
		{"empty configured token never matches", "Bearer x", []string{""}, ErrMismatch},
		{"missing", "", []string{tok}, ErrMissing},
		{"blank", "   ", []string{tok}, ErrMissing},
		{"scheme only", "Bearer", []string{tok}, ErrMalformed},
		{"scheme and space only", "Bearer ", []string{tok}, ErrMalformed},
		{"Basic scheme", "Basic dXNlcjpwYXNz", []string{"dXNlcjpwYXNz"}, ErrMalformed},
		{"token without scheme", tok, []string{tok}, ErrMalformed},
		{"scheme glued to token", "Bearer" + tok, []string{tok}, ErrMalformed},
		{"tab instead of space", "Bearer\t" + tok, []string{tok}, ErrMalformed},
		{"two tokens", "Bearer " + tok + " " + tok, []string{tok}, ErrMalformed},
		{"huge header", "Bearer " + strings.Repeat("a", 5000), []string{tok}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyBearer(tt.header, tt.tokens)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyBearer = %v, want %v", err, tt.want)
			}
		})
	}
}
