package signature

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
)

// The test vector of sendgrid-go helpers/eventwebhook/eventwebhook_test.go
// (v3.16.1): SendGrid's public key, a signature and timestamp it produced,
// and the exact payload bytes, which end in "\r\n".
const (
	sendGridVectorKey       = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
	sendGridVectorSignature = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
	sendGridVectorTimestamp = "1600112502"
	sendGridVectorPayload   = `[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]` + "\r\n"
)

// TestSendGridVectorPayloadBytes rebuilds the payload the way sendgrid-go's
// test does, so the literal above is provably the same bytes.
func TestSendGridVectorPayloadBytes(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode([]map[string]any{{
		"email":         "hello@world.com",
		"event":         "dropped",
		"reason":        "Bounced Address",
		"sg_event_id":   "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
		"sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
		"smtp-id":       "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
		"timestamp":     1600112492,
	}}); err != nil {
		t.Fatal(err)
	}
	payload := append(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), '\r', '\n')
	if string(payload) != sendGridVectorPayload {
		t.Fatalf("payload differs:\n%q\n%q", payload, sendGridVectorPayload)
	}
}

func TestSendGridVector(t *testing.T) {
	key, err := ParseSendGridPublicKey(sendGridVectorKey)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1600112502, 0)
	keys := []*ecdsa.PublicKey{key}
	if err := VerifySendGrid([]byte(sendGridVectorPayload), sendGridVectorTimestamp, sendGridVectorSignature, keys, 10*time.Minute, at); err != nil {
		t.Fatalf("sendgrid-go vector rejected: %v", err)
	}
	// The trailing CRLF is part of what SendGrid signs.
	trimmed := strings.TrimSuffix(sendGridVectorPayload, "\r\n")
	if err := VerifySendGrid([]byte(trimmed), sendGridVectorTimestamp, sendGridVectorSignature, keys, 10*time.Minute, at); !errors.Is(err, ErrMismatch) {
		t.Fatalf("payload without CRLF: %v", err)
	}
	// Cross-check: sendgrid-go agrees on the same vector.
	theirKey, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(sendGridVectorKey)
	if err != nil {
		t.Fatal(err)
	}
	if !theirKey.Equal(key) {
		t.Fatal("ParseSendGridPublicKey and sendgrid-go parse different keys")
	}
	ok, err := eventwebhook.VerifySignature(theirKey, []byte(sendGridVectorPayload), sendGridVectorSignature, sendGridVectorTimestamp)
	if err != nil || !ok {
		t.Fatalf("sendgrid-go rejects its own vector: %v %v", ok, err)
	}
}

func TestSignSendGridAcceptedBySendGridGo(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(der)
	body := []byte(`[{"email":"a@example.com","event":"delivered"}]` + "\r\n")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := SignSendGrid(body, ts, priv)
	if err != nil {
		t.Fatal(err)
	}
	theirKey, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(b64)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := eventwebhook.VerifySignature(theirKey, body, sig, ts)
	if err != nil || !ok {
		t.Fatalf("sendgrid-go rejected our signature: %v %v", ok, err)
	}
	ok, _ = eventwebhook.VerifySignature(theirKey, []byte("tampered"), sig, ts)
	if ok {
		t.Fatal("sendgrid-go accepted a tampered body")
	}
	ourKey, err := ParseSendGridPublicKey(b64)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySendGrid(body, ts, sig, []*ecdsa.PublicKey{ourKey}, 0, time.Time{}); err != nil {
		t.Fatalf("VerifySendGrid (default tolerance, real clock): %v", err)
	}
}

func TestVerifySendGrid(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	mustKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1, k2 := mustKey(), mustKey()
	body := []byte(`[{"event":"open"}]` + "\r\n")
	sign := func(body []byte, ts string, k *ecdsa.PrivateKey) string {
		s, err := SignSendGrid(body, ts, k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(body, ts, k1)
	trailing := func(sig string) string {
		b, _ := base64.StdEncoding.DecodeString(sig)
		return base64.StdEncoding.EncodeToString(append(b, 0, 0))
	}
	tol := 5 * time.Minute
	tests := []struct {
		name string
		body []byte
		ts   string
		sig  string
		keys []*ecdsa.PublicKey
		now  time.Time
		want error
	}{
		{"valid", body, ts, good, []*ecdsa.PublicKey{&k1.PublicKey}, now, nil},
		{"rotation: second key matches", body, ts, good, []*ecdsa.PublicKey{&k2.PublicKey, &k1.PublicKey}, now, nil},
		{"nil key skipped", body, ts, good, []*ecdsa.PublicKey{nil, &k1.PublicKey}, now, nil},
		{"just inside the tolerance", body, ts, good, []*ecdsa.PublicKey{&k1.PublicKey}, now.Add(tol), nil},
		{"tampered body", []byte(`[{"event":"click"}]` + "\r\n"), ts, good, []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMismatch},
		{"tampered timestamp", body, strconv.FormatInt(now.Unix()+1, 10), good, []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMismatch},
		{"wrong key", body, ts, good, []*ecdsa.PublicKey{&k2.PublicKey}, now, ErrMismatch},
		{"no keys", body, ts, good, nil, now, ErrMismatch},
		{"expired", body, ts, good, []*ecdsa.PublicKey{&k1.PublicKey}, now.Add(tol + time.Second), ErrExpired},
		{"from the future", body, ts, good, []*ecdsa.PublicKey{&k1.PublicKey}, now.Add(-tol - time.Second), ErrExpired},
		{"missing signature", body, ts, "", []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMissing},
		{"missing timestamp", body, "", good, []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMissing},
		{"timestamp not a number", body, "now", good, []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMalformed},
		{"timestamp with spaces", body, " " + ts, good, []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMalformed},
		{"signature not base64", body, ts, "!!!" + good, []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMalformed},
		{"signature not DER", body, ts, base64.StdEncoding.EncodeToString([]byte("definitely not DER")), []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMalformed},
		{"signature DER garbage", body, ts, base64.StdEncoding.EncodeToString([]byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00}), []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMismatch},
		{"bytes after the DER signature", body, ts, trailing(good), []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMismatch},
		{"signature too long", body, ts, strings.Repeat("MEUC", 100), []*ecdsa.PublicKey{&k1.PublicKey}, now, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySendGrid(tt.body, tt.ts, tt.sig, tt.keys, tol, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifySendGrid = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseSendGridPublicKey(t *testing.T) {
	pkix := func(pub any) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct{ name, in, wantMsg string }{
		{"SendGrid key", sendGridVectorKey, ""},
		{"surrounding whitespace", "\n " + sendGridVectorKey + "\n", ""},
		{"not base64", "-----BEGIN PUBLIC KEY-----", "not valid base64"},
		{"empty", "", "not a DER PKIX public key"},
		{"truncated", sendGridVectorKey[:40], "not a DER PKIX public key"},
		{"P-384", pkix(&p384.PublicKey), "want P-256"},
		{"RSA", pkix(&rsaKey.PublicKey), "want an ECDSA P-256 key"},
		{"Ed25519", pkix(edPub), "want an ECDSA P-256 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseSendGridPublicKey(tt.in)
			if tt.wantMsg == "" {
				if err != nil || k == nil {
					t.Fatalf("ParseSendGridPublicKey = %v, %v", k, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ParseSendGridPublicKey error = %v, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestSignSendGridRejectsOtherCurves(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := SignSendGrid(nil, "1", p384); err == nil {
		t.Fatal("P-384 key accepted")
	}
	if _, err := SignSendGrid(nil, "1", nil); err == nil {
		t.Fatal("nil key accepted")
	}
}
