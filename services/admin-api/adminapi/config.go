// Package adminapi is the admin API: the gRPC services through which
// tenants, their webhook sources, flows and schedules enter the
// configuration buckets, and through which operators inspect, replay and
// purge dead letters.
package adminapi

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/greentic/events/pkg/service"
)

// Name is the service name in logs and metrics.
const Name = "admin-api"

// Config of the admin API. Its flags carry an admin- prefix (standalone
// registers them next to the other services').
type Config struct {
	GRPCAddr string
	// Tokens are the bearer tokens (see ParseTokens); TokensFile names a
	// file holding them (a mounted Kubernetes Secret). Both may be set.
	Tokens     string
	TokensFile string
	// TLS: a server certificate and key; with ClientCA, clients must present
	// a certificate it signed (mTLS).
	TLSCert, TLSKey, TLSClientCA string
	// CallTimeout is the deadline of a call that sets none, and the longest
	// one a call may set.
	CallTimeout time.Duration
	// ReplayRate is the default number of dead letters replayed per second.
	ReplayRate float64

	// Listener, when set, is used instead of GRPCAddr (tests, standalone).
	Listener net.Listener
	// ParsedTokens, when set, is used instead of Tokens and TokensFile.
	ParsedTokens *Tokens
	// GeneratedTokenFile, when set and no token is configured, holds an
	// operator token generated on first start and reused after (standalone:
	// greenticctl reads it from there).
	GeneratedTokenFile string
}

// RegisterFlags defines the admin API's flags; grpcAddr is the default
// listen address.
func (c *Config) RegisterFlags(f *service.Flags, grpcAddr string) {
	f.String(&c.GRPCAddr, "admin-grpc-addr", grpcAddr, "listen address of the admin gRPC API")
	f.String(&c.Tokens, "admin-tokens", "", "bearer tokens: operator=TOKEN and tenant:ID=TOKEN, comma separated; prefer the file or the environment to the command line")
	f.String(&c.TokensFile, "admin-tokens-file", "", "file of bearer tokens, one per line (e.g. a mounted Kubernetes Secret)")
	f.String(&c.TLSCert, "admin-tls-cert", "", "TLS certificate file (PEM); empty serves plaintext")
	f.String(&c.TLSKey, "admin-tls-key", "", "TLS key file (PEM)")
	f.String(&c.TLSClientCA, "admin-tls-client-ca", "", "CA file (PEM) of client certificates; set, every client must present one (mTLS)")
	f.Duration(&c.CallTimeout, "admin-call-timeout", 30*time.Second, "deadline of a call that sets none, and the longest allowed")
	f.Float64(&c.ReplayRate, "admin-replay-rate", 50, "dead letters replayed per second when a replay asks for no rate")
}

// Validate names the first unusable setting.
func (c Config) Validate() error {
	if c.Listener == nil {
		if err := service.ValidateListenAddr("admin-grpc-addr", c.GRPCAddr); err != nil {
			return err
		}
	}
	if !c.hasTokens() && c.GeneratedTokenFile == "" {
		return fmt.Errorf("no bearer tokens: set %s or %s (every call needs a token)", service.EnvName("admin-tokens"), service.EnvName("admin-tokens-file"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%s and %s go together", service.EnvName("admin-tls-cert"), service.EnvName("admin-tls-key"))
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return fmt.Errorf("%s needs %s and %s: client certificates are checked over TLS only", service.EnvName("admin-tls-client-ca"), service.EnvName("admin-tls-cert"), service.EnvName("admin-tls-key"))
	}
	if c.CallTimeout < time.Second || c.CallTimeout > 10*time.Minute {
		return fmt.Errorf("%s must be between 1s and 10m, got %s", service.EnvName("admin-call-timeout"), c.CallTimeout)
	}
	if c.ReplayRate <= 0 || c.ReplayRate > 10000 {
		return fmt.Errorf("%s must be above 0 and at most 10000, got %g", service.EnvName("admin-replay-rate"), c.ReplayRate)
	}
	return nil
}

func (c Config) hasTokens() bool {
	return c.ParsedTokens != nil || c.Tokens != "" || c.TokensFile != ""
}

// LoadTokens parses the configured tokens, or reads (or generates) the
// operator token of GeneratedTokenFile when none is configured.
func (c Config) LoadTokens() (*Tokens, error) {
	if c.ParsedTokens != nil {
		return c.ParsedTokens, nil
	}
	if !c.hasTokens() && c.GeneratedTokenFile != "" {
		tok, err := generatedToken(c.GeneratedTokenFile)
		if err != nil {
			return nil, err
		}
		return ParseTokens("standalone@operator=" + tok)
	}
	spec := c.Tokens
	if c.TokensFile != "" {
		b, err := os.ReadFile(c.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", service.EnvName("admin-tokens-file"), err)
		}
		spec += "\n" + string(b)
	}
	ts, err := ParseTokens(spec)
	if err != nil {
		return nil, errors.New("admin tokens: " + err.Error())
	}
	return ts, nil
}

// generatedToken reads the operator token kept in path, creating it (mode
// 0600) with 32 random bytes the first time.
func generatedToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < MinTokenLength {
			return "", fmt.Errorf("admin token file %s: shorter than %d characters; delete it to generate a new one", path, MinTokenLength)
		}
		return tok, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return generatedToken(path) // another process wrote it first
		}
		return "", fmt.Errorf("admin token file: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("admin token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	return tok, nil
}
