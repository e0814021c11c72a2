package ingress

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// Credentials of the scheme tests; each source has two, so a rotation can
// be exercised by signing with the second.
var (
	scHMACSecrets   = []string{"hmac-secret-one-0123", "hmac-secret-two-4567"}
	scSWSecrets     = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + base64.StdEncoding.EncodeToString([]byte("second-standard-webhooks"))}
	scGitHubSecrets = []string{"github-secret-one-0123", "github-secret-two-4567"}
	scStripeSecrets = []string{"whsec_stripe_secret_one_0123456789", "whsec_stripe_secret_two_0123456789"}
	scTwilioTokens  = []string{"12345678901234567890123456789012", "abcdefabcdefabcdefabcdefabcdef12"}
	scBearerTokens  = []string{"bearer-token-one-0123456789", "bearer-token-two-0123456789"}
)

const (
	scTwilioPublicURL = "https://hooks.example.com/twilio/demo"
	mediaJSON         = "application/json"
	mediaText         = "text/plain"
)

func hmacSource() tenant.Source {
	return tenant.Source{
		Tenant: "demo", Name: "hmac", Scheme: tenant.SchemeHMACSHA256, Secrets: scHMACSecrets,
		Signature: tenant.Signature{Header: "X-Signature", Encoding: "hex", Prefix: "sha256="},
		EventType: tenant.ValueFrom{Field: "type"},
		EventID:   tenant.ValueFrom{Field: "id"},
	}
}

func swSource() tenant.Source {
	return tenant.Source{Tenant: "demo", Name: "sw", Scheme: tenant.SchemeStandardWebhooks, Secrets: scSWSecrets}
}

func githubSource() tenant.Source {
	return tenant.Source{Tenant: "demo", Name: "github", Scheme: tenant.SchemeGitHub, Secrets: scGitHubSecrets}
}

func stripeSource() tenant.Source {
	return tenant.Source{Tenant: "demo", Name: "stripe", Scheme: tenant.SchemeStripe, Secrets: scStripeSecrets}
}

func twilioSource() tenant.Source {
	return tenant.Source{Tenant: "demo", Name: "twilio", Scheme: tenant.SchemeTwilio, Secrets: scTwilioTokens}
}

// twilioPublicSource is a Twilio source reached through a proxy: Twilio
// signs its public URL, not the one the ingress sees.
func twilioPublicSource() tenant.Source {
	s := twilioSource()
	s.Name, s.URL = "twilio-public", scTwilioPublicURL
	return s
}

func sendgridSource(keys ...*ecdsa.PrivateKey) tenant.Source {
	s := tenant.Source{Tenant: "demo", Name: "sendgrid", Scheme: tenant.SchemeSendGrid}
	for _, k := range keys {
		s.PublicKeys = append(s.PublicKeys, scPublicKey(k))
	}
	return s
}

func bearerSource() tenant.Source {
	return tenant.Source{
		Tenant: "demo", Name: "bearer", Scheme: tenant.SchemeBearer, Secrets: scBearerTokens,
		EventType: tenant.ValueFrom{Header: "X-Event-Type"},
		EventID:   tenant.ValueFrom{Header: "X-Event-Id"},
	}
}

func noneSource() tenant.Source {
	return tenant.Source{
		Tenant: "demo", Name: "none", Scheme: tenant.SchemeNone,
		EventType: tenant.ValueFrom{Value: "form.submitted"},
		EventID:   tenant.ValueFrom{Field: "id"},
	}
}

// scKey is a new SendGrid signing key (P-256).
func scKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// scPublicKey is the verification key as SendGrid shows it: base64 DER PKIX.
func scPublicKey(k *ecdsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// setupSources runs the ingress (through Serve, as in production) on an
// embedded JetStream with tenant "demo" and the given sources.
func setupSources(t *testing.T, sources ...tenant.Source) *fixture {
	t.Helper()
	return setupTenants(t, []tenant.Tenant{{ID: "demo"}}, sources...)
}

// setupTenants is setupSources with the given tenants.
func setupTenants(t *testing.T, tenants []tenant.Tenant, sources ...tenant.Source) *fixture {
	t.Helper()
	return startIngress(t, 5*time.Second, tenants, sources...)
}

// startIngress stores the tenants and sources, serves the ingress with the
// publish timeout, and returns once it knows every source.
func startIngress(t *testing.T, publishTimeout time.Duration, tenants []tenant.Tenant, sources ...tenant.Source) *fixture {
	t.Helper()
	srv := natstest.RunServer(t)
	rt := servicetest.Runtime(t, srv.URL(), "dev")
	ctx := context.Background()
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if _, err := store.PutTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sources {
		if _, err := store.PutSource(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listener: ln, PublishTimeout: publishTimeout, MaxBodyBytes: 4 << 20, RetryAfter: 5 * time.Second, MaxEventsPerRequest: 100}
	servicetest.Go(t, func(ctx context.Context) error { return Serve(ctx, rt, cfg) })
	f := &fixture{base: "http://" + ln.Addr().String(), rt: rt, srv: srv}
	// Ready once every source is known: a text/plain body is refused by its
	// content type (415), or as disabled or suspended (403), rather than as
	// an unknown source (404); nothing is verified, counted or stored.
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range sources {
		for {
			a := f.scSend(t, "/v1/webhooks/"+s.Tenant+"/"+s.Name, mediaText, []byte("probe"), nil)
			if (a.status == http.StatusUnsupportedMediaType || a.status == http.StatusForbidden) && len(rt.Ready.Check(ctx)) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ingress not ready for source %s/%s: %d %s %v", s.Tenant, s.Name, a.status, a.raw, rt.Ready.Check(ctx))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return f
}

// setupDirect serves a Handler built with NewHandler on the real JetStream
// publisher, deliveries bucket and events stream, with now as its clock: for providers'
// published vectors, whose timestamps are long past.
func setupDirect(t *testing.T, now func() time.Time, sources ...tenant.Source) *fixture {
	t.Helper()
	srv := natstest.RunServer(t)
	rt := servicetest.Runtime(t, srv.URL(), "dev")
	kv, err := rt.Topology.KeyValue(context.Background(), rt.JS, bus.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	reg := tenant.NewRegistry()
	reg.PutTenant(tenant.Tenant{ID: "demo"})
	for _, s := range sources {
		if err := s.Validate(); err != nil {
			t.Fatalf("source %s: %v", s.Name, err)
		}
		reg.PutSource(s)
	}
	stream, err := rt.JS.Stream(context.Background(), rt.Topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Config{PublishTimeout: 5 * time.Second, MaxBodyBytes: 4 << 20, RetryAfter: 5 * time.Second, MaxEventsPerRequest: 100},
		Deps{Registry: reg, Publisher: rt.Publisher, Deliveries: KVDeliveries{KV: kv}, Stored: StreamEvents{Stream: stream}})
	if err != nil {
		t.Fatal(err)
	}
	h.now = now
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return &fixture{base: hs.URL, rt: rt, srv: srv}
}

// scClient sends every request on a connection of its own, so no test
// depends on connection reuse.
var scClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

// scAnswer is an answer of the ingress.
type scAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// scSend posts body with the content type ct (none when empty) to path
// (which may carry a query string).
func (f *fixture) scSend(t *testing.T, path, ct string, body []byte, hdr map[string]string) scAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := scClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %d is not a JSON object: %q", resp.StatusCode, raw)
	}
	return scAnswer{status: resp.StatusCode, header: resp.Header, body: out, raw: string(raw)}
}

// accepted checks a 202 answer for one event.
func (a scAnswer) accepted(t *testing.T, wantID, wantType string, duplicate bool) {
	t.Helper()
	if a.status != http.StatusAccepted {
		t.Fatalf("got %d %s, want 202", a.status, a.raw)
	}
	checkAccepted(t, a.body, wantID, wantType, duplicate)
}

// acceptedBatch checks a 202 answer for a batch, {"events":[...]} in order.
func (a scAnswer) acceptedBatch(t *testing.T, want ...Accepted) {
	t.Helper()
	if a.status != http.StatusAccepted {
		t.Fatalf("got %d %s, want 202", a.status, a.raw)
	}
	var got AcceptedBatch
	if err := json.Unmarshal([]byte(a.raw), &got); err != nil {
		t.Fatalf("answer %s: %v", a.raw, err)
	}
	if len(got.Events) != len(want) {
		t.Fatalf("answer %s has %d events, want %d", a.raw, len(got.Events), len(want))
	}
	for i := range want {
		if got.Events[i] != want[i] {
			t.Errorf("event %d of the answer = %+v, want %+v", i, got.Events[i], want[i])
		}
	}
}

func checkAccepted(t *testing.T, body map[string]any, wantID, wantType string, duplicate bool) {
	t.Helper()
	if wantID != "" && body["event_id"] != wantID {
		t.Errorf("event_id = %v, want %s (answer %v)", body["event_id"], wantID, body)
	}
	if id, _ := body["event_id"].(string); event.ValidateID(id) != nil {
		t.Errorf("event_id %q is no valid event id", id)
	}
	if body["event_type"] != wantType {
		t.Errorf("event_type = %v, want %s (answer %v)", body["event_type"], wantType, body)
	}
	if body["duplicate"] != duplicate {
		t.Errorf("duplicate = %v, want %v (answer %v)", body["duplicate"], duplicate, body)
	}
}

// rejected checks an error answer: status, code, a message that contains
// every one of mention, and that no credential leaks into the answer.
func (a scAnswer) rejected(t *testing.T, status int, code string, mention []string, secrets ...string) {
	t.Helper()
	if a.status != status || errorCode(a.body) != code {
		t.Fatalf("got %d %s, want %d with error code %s and a message", a.status, a.raw, status, code)
	}
	msg := a.message()
	for _, m := range mention {
		if !strings.Contains(msg, m) {
			t.Errorf("message %q does not mention %q", msg, m)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(a.raw, s) {
			t.Errorf("answer %s contains a credential", a.raw)
		}
	}
	if a.header.Get("Content-Type") != "application/json" {
		t.Errorf("error Content-Type = %q", a.header.Get("Content-Type"))
	}
}

func (a scAnswer) message() string {
	e, _ := a.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func (a scAnswer) eventID(t *testing.T) string {
	t.Helper()
	id, _ := a.body["event_id"].(string)
	if id == "" {
		t.Fatalf("answer %s has no event_id", a.raw)
	}
	return id
}

// scEvents reads every event in the events stream, in stream order.
func (f *fixture) scEvents(t *testing.T) []*eventsv1.Event {
	t.Helper()
	ctx := context.Background()
	s, err := f.rt.JS.Stream(ctx, f.rt.Topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.Event
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Unmarshal(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if want := "greentic.events.dev." + ev.Tenant + "." + ev.EventType; m.Subject != want || ev.Subject != want {
			t.Errorf("event %s stored on %s (event subject %s), want %s", ev.Id, m.Subject, ev.Subject, want)
		}
		if m.Header.Get(bus.HeaderMsgID) != bus.MsgID(ev.Tenant, ev.Id) {
			t.Errorf("event %s has Nats-Msg-Id %q", ev.Id, m.Header.Get(bus.HeaderMsgID))
		}
		out = append(out, ev)
	}
	return out
}

// scEvent is the one stored event with id.
func (f *fixture) scEvent(t *testing.T, id string) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	for _, ev := range f.scEvents(t) {
		if ev.Id == id {
			if found != nil {
				t.Fatalf("event %s stored twice", id)
			}
			found = ev
		}
	}
	if found == nil {
		t.Fatalf("event %s not stored", id)
	}
	return found
}

// checkEvent checks the common fields of an event stored from a source.
func checkEvent(t *testing.T, ev *eventsv1.Event, source, eventType string, payload []byte) {
	t.Helper()
	if ev.Tenant != "demo" || ev.Env != "dev" || ev.EventType != eventType || ev.Source != "webhook/"+source {
		t.Errorf("event tenant %q env %q type %q source %q, want demo dev %s webhook/%s", ev.Tenant, ev.Env, ev.EventType, ev.Source, eventType, source)
	}
	if payload != nil && !bytes.Equal(ev.Payload, payload) {
		t.Errorf("payload %q, want %q", ev.Payload, payload)
	}
	if ev.Metadata[metadataSource] != source {
		t.Errorf("metadata %v: source is not %s", ev.Metadata, source)
	}
	if ev.Timestamp <= 0 {
		t.Errorf("timestamp %d", ev.Timestamp)
	}
	if !event.ValidTraceparent(ev.Traceparent) {
		t.Errorf("traceparent %q", ev.Traceparent)
	}
}

// wantID is the event id the intake gives a delivery of a source:
// {source}:{delivery id} (or {source}:d-{digest} when that is no valid
// event id).
func wantID(source, deliveryID string) string { return eventIDFor(source, deliveryID) }

// githubID is the event id of a GitHub delivery: GitHub signs only the
// body, so the delivery is identified by a digest of it, not by
// X-GitHub-Delivery.
func githubID(source string, body []byte) string { return wantID(source, bodyDigest(body)) }

// scDelivery is the event id the deliveries bucket holds for a delivery,
// whose key is the tenant, the source and the raw delivery id.
func (f *fixture) scDelivery(t *testing.T, tenantID, source, deliveryID string) (string, bool) {
	t.Helper()
	ctx := context.Background()
	kv, err := f.rt.Topology.KeyValue(ctx, f.rt.JS, bus.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	if kv.Bucket() != "greentic_dev_deliveries" {
		t.Fatalf("deliveries bucket is %s", kv.Bucket())
	}
	e, err := kv.Get(ctx, deliveryKey(tenantID, source, deliveryID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Value()), true
}

// wantDelivery checks that the deliveries bucket remembers the raw
// delivery id deliveryID of a source as the event eventID.
func (f *fixture) wantDelivery(t *testing.T, source, deliveryID, eventID string) {
	t.Helper()
	got, ok := f.scDelivery(t, "demo", source, deliveryID)
	if !ok || got != eventID {
		t.Errorf("deliveries bucket: %s/%s delivery %q = %q (found %v), want event %s", "demo", source, deliveryID, got, ok, eventID)
	}
}

func (f *fixture) wantStored(t *testing.T, n uint64) {
	t.Helper()
	if got := f.storedMsgs(t); got != n {
		t.Fatalf("%d events stored, want %d", got, n)
	}
}

// counterValue is the value of a counter of reg with exactly these labels,
// and whether it exists.
func counterValue(t *testing.T, f *fixture, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := f.rt.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
