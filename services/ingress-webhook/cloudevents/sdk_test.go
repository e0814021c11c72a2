package cloudevents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// The receiving side of these tests is Parse behind an httptest.Server; the
// sending side is the official CloudEvents Go SDK.

const (
	testTenant      = "acme"
	testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type received struct {
	mode   string
	events []*eventsv1.Event
	err    error
}

type recorder struct {
	mu  sync.Mutex
	got []received
}

func (r *recorder) last(t *testing.T) received {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("the server received no request")
	}
	return r.got[len(r.got)-1]
}

// newServer starts a server whose handler calls Parse, records the result
// and answers 202, 400 or 415 as an ingress would.
func newServer(t *testing.T, lim Limits) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		evs, err := Parse(r.Header, body, testTenant, testNow, lim)
		rec.mu.Lock()
		rec.got = append(rec.got, received{mode: Mode(r.Header), events: evs, err: err})
		rec.mu.Unlock()
		switch {
		case errors.Is(err, ErrUnsupportedMedia):
			http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

// sdkEvent builds an event with every attribute the mapping covers.
func sdkEvent(t *testing.T, id string) ce.Event {
	t.Helper()
	e := ce.NewEvent()
	e.SetID(id)
	e.SetType("com.github.pull_request.opened")
	e.SetSource("https://github.com/greentic/events")
	e.SetSubject("pull/42")
	e.SetTime(time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC))
	e.SetDataSchema("https://schemas.example.com/pull_request.json")
	if err := e.SetData(ce.ApplicationJSON, map[string]any{"action": "opened", "number": 42}); err != nil {
		t.Fatal(err)
	}
	e.SetExtension("attempt", 3)
	e.SetExtension("redelivered", true)
	e.SetExtension("comexampleext", "some value")
	e.SetExtension("traceparent", testTraceparent)
	e.SetExtension("tracestate", "vendor=abc")
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	return e
}

const wantMillis = int64(1714979289123) // 2024-05-06T07:08:09.123456789Z

func wantEvent(id string, payload []byte) *eventsv1.Event {
	return &eventsv1.Event{
		Id:          id,
		EventType:   "com.github.pull_request.opened",
		Source:      "https://github.com/greentic/events",
		Timestamp:   wantMillis,
		Payload:     payload,
		Tenant:      testTenant,
		Traceparent: testTraceparent,
		Metadata: map[string]string{
			"datacontenttype":  "application/json",
			"dataschema":       "https://schemas.example.com/pull_request.json",
			"subject":          "pull/42",
			"ce_attempt":       "3",
			"ce_redelivered":   "true",
			"ce_comexampleext": "some value",
			"tracestate":       "vendor=abc",
		},
	}
}

func assertEvent(t *testing.T, got, want *eventsv1.Event) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("event mismatch\n got: %v\nwant: %v", got, want)
	}
	if got.GetEnv() != "" {
		t.Errorf("env = %q, want empty (the publisher fills it)", got.GetEnv())
	}
}

func sdkSend(t *testing.T, ctx context.Context, url string, e ce.Event) {
	t.Helper()
	c, err := ce.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	if res := c.Send(ce.ContextWithTarget(ctx, url), e); !ce.IsACK(res) {
		t.Fatalf("send: %v", res)
	}
}

func TestSDKBinaryMode(t *testing.T) {
	srv, rec := newServer(t, Limits{})
	e := sdkEvent(t, "evt-binary-1")
	sdkSend(t, context.Background(), srv.URL, e)

	got := rec.last(t)
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.mode != ModeBinary {
		t.Errorf("Mode = %q, want binary", got.mode)
	}
	if len(got.events) != 1 {
		t.Fatalf("got %d events, want 1", len(got.events))
	}
	assertEvent(t, got.events[0], wantEvent("evt-binary-1", e.Data()))
	if !json.Valid(got.events[0].Payload) || !bytes.Contains(got.events[0].Payload, []byte(`"number":42`)) {
		t.Errorf("payload = %s", got.events[0].Payload)
	}
}

func TestSDKStructuredMode(t *testing.T) {
	srv, rec := newServer(t, Limits{})
	for name, ctx := range map[string]context.Context{
		"WithEncodingStructured": ce.WithEncodingStructured(context.Background()),
		"WithForceStructured":    binding.WithForceStructured(context.Background()),
	} {
		t.Run(name, func(t *testing.T) {
			e := sdkEvent(t, "evt-structured-"+name)
			sdkSend(t, ctx, srv.URL, e)

			got := rec.last(t)
			if got.err != nil {
				t.Fatal(got.err)
			}
			if got.mode != ModeStructured {
				t.Errorf("Mode = %q, want structured", got.mode)
			}
			if len(got.events) != 1 {
				t.Fatalf("got %d events, want 1", len(got.events))
			}
			assertEvent(t, got.events[0], wantEvent("evt-structured-"+name, e.Data()))
		})
	}
}

// TestSDKDataKinds sends text and binary data in both modes: binary mode
// carries the bytes as the body, structured mode as a JSON string
// (text/plain) or as data_base64 ([]byte).
func TestSDKDataKinds(t *testing.T) {
	srv, rec := newServer(t, Limits{})
	for _, tc := range []struct {
		name, ct string
		data     any
		want     []byte
		// wantStructured, when set, is the payload in structured mode.
		wantStructured []byte
	}{
		{"text", "text/plain", "hello, world", []byte("hello, world"), nil},
		{"text-utf8-charset", "text/plain; charset=utf-8", "grüße €", []byte("grüße €"), nil},
		{"bytes", "application/octet-stream", []byte{0, 1, 2, 0xfe, 0xff}, []byte{0, 1, 2, 0xfe, 0xff}, nil},
		{"json-string", "application/json", "just a string", []byte(`"just a string"`), nil},
		// The SDK (v2.16.2) treats only application/json and text/json as
		// JSON and so writes +json data as a JSON string in structured
		// mode. The spec says */*+json declares JSON, so that string is a
		// JSON value and kept as such.
		{"json-suffix", "application/vnd.api+json", map[string]int{"a": 1}, []byte(`{"a":1}`), []byte(`"{\"a\":1}"`)},
	} {
		for mode, ctx := range map[string]context.Context{
			ModeBinary:     ce.WithEncodingBinary(context.Background()),
			ModeStructured: ce.WithEncodingStructured(context.Background()),
		} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				e := ce.NewEvent()
				e.SetID("evt-" + tc.name)
				e.SetType("com.example.data")
				e.SetSource("/tests")
				if err := e.SetData(tc.ct, tc.data); err != nil {
					t.Fatal(err)
				}
				sdkSend(t, ctx, srv.URL, e)
				got := rec.last(t)
				if got.err != nil {
					t.Fatal(got.err)
				}
				if got.mode != mode {
					t.Errorf("Mode = %q, want %q", got.mode, mode)
				}
				ev := got.events[0]
				want := tc.want
				if mode == ModeStructured && tc.wantStructured != nil {
					want = tc.wantStructured
				}
				if !bytes.Equal(ev.Payload, want) {
					t.Errorf("payload = %q, want %q", ev.Payload, want)
				}
				if ev.Metadata["datacontenttype"] != tc.ct {
					t.Errorf("datacontenttype = %q, want %q", ev.Metadata["datacontenttype"], tc.ct)
				}
				if ev.Metadata["subject"] != "" || ev.Traceparent != "" {
					t.Errorf("unexpected subject/traceparent: %v", ev)
				}
			})
		}
	}
}

func postBatch(t *testing.T, url string, body []byte) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/cloudevents-batch+json; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestSDKBatchMode(t *testing.T) {
	srv, rec := newServer(t, Limits{MaxBatch: 3})
	var evs []ce.Event
	var raws []json.RawMessage
	for _, id := range []string{"evt-batch-0", "evt-batch-1", "evt-batch-2"} {
		e := sdkEvent(t, id)
		b, err := json.Marshal(e) // the SDK's JSON event format
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
		raws = append(raws, b)
	}
	body, err := json.Marshal(raws)
	if err != nil {
		t.Fatal(err)
	}
	if resp := postBatch(t, srv.URL, body); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %v", resp.StatusCode, rec.last(t).err)
	}
	got := rec.last(t)
	if got.mode != ModeBatch {
		t.Errorf("Mode = %q, want batch", got.mode)
	}
	if len(got.events) != len(evs) {
		t.Fatalf("got %d events, want %d", len(got.events), len(evs))
	}
	for i, e := range evs {
		assertEvent(t, got.events[i], wantEvent(e.ID(), e.Data()))
	}

	// One more event than MaxBatch is refused as a whole.
	raws = append(raws, raws[0])
	body, _ = json.Marshal(raws)
	if resp := postBatch(t, srv.URL, body); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d for a batch over the limit, want 400", resp.StatusCode)
	}
	var perr *Error
	if got := rec.last(t); !errors.As(got.err, &perr) || perr.Attribute != "" || got.events != nil {
		t.Fatalf("over the limit: %v, %d events", got.err, len(got.events))
	}

	// A bad event in the batch is reported with its index and nothing is returned.
	bad := evs[1].Clone()
	bad.SetID("has space")
	b, _ := json.Marshal(bad)
	body, _ = json.Marshal([]json.RawMessage{raws[0], b, raws[2]})
	if resp := postBatch(t, srv.URL, body); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d for a bad event, want 400", resp.StatusCode)
	}
	got = rec.last(t)
	if !errors.As(got.err, &perr) || perr.Index != 1 || perr.Attribute != "id" || got.events != nil {
		t.Fatalf("bad event: %v, %d events", got.err, len(got.events))
	}
}

// TestHTTPNotACloudEvent: a plain JSON POST is not a CloudEvent and is answered 415.
func TestHTTPNotACloudEvent(t *testing.T) {
	srv, rec := newServer(t, Limits{})
	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader([]byte(`{"id":"1"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("status %d, want 415", resp.StatusCode)
	}
	if got := rec.last(t); got.mode != "" || !errors.Is(got.err, ErrUnsupportedMedia) {
		t.Errorf("mode %q, err %v", got.mode, got.err)
	}
}
