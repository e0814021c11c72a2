package cloudevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// The fuzz targets check that Parse never panics, that it is
// deterministic, and that whatever it returns is usable downstream: every
// event has a valid id and event type, the route's tenant, and only the
// metadata keys the mapping defines. Seeds are added here and checked in
// under testdata/fuzz/<Name>/.

// checkResult asserts the invariants of one Parse call.
func checkResult(t *testing.T, evs []*eventsv1.Event, err error, max int) {
	t.Helper()
	if err != nil {
		if evs != nil {
			t.Fatalf("events returned with error %v", err)
		}
		var perr *Error
		if !errors.As(err, &perr) && !errors.Is(err, ErrUnsupportedMedia) {
			t.Fatalf("error %T %v is neither *Error nor ErrUnsupportedMedia", err, err)
		}
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
		return
	}
	if len(evs) == 0 || len(evs) > max {
		t.Fatalf("got %d events, want 1..%d", len(evs), max)
	}
	for i, ev := range evs {
		if err := event.ValidateID(ev.GetId()); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if err := bus.ValidateEventType(ev.GetEventType()); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.GetTenant() != testTenant || ev.GetEnv() != "" || ev.GetSource() == "" {
			t.Fatalf("event %d: tenant %q env %q source %q", i, ev.GetTenant(), ev.GetEnv(), ev.GetSource())
		}
		if tp := ev.GetTraceparent(); tp != "" && !event.ValidTraceparent(tp) {
			t.Fatalf("event %d: invalid traceparent %q", i, tp)
		}
		for k := range ev.GetMetadata() {
			switch k {
			case "datacontenttype", "dataschema", "tracestate", "subject":
				continue
			}
			name, ok := strings.CutPrefix(k, ExtensionPrefix)
			if !ok || checkExtensionName(name) != nil || name == attrTraceparent || name == attrTracestate {
				t.Fatalf("event %d: unexpected metadata key %q", i, k)
			}
		}
		if _, err := proto.Marshal(ev); err != nil { // fails on invalid UTF-8 in string fields
			t.Fatalf("event %d does not marshal: %v", i, err)
		}
	}
}

func checkDeterministic(t *testing.T, parse func() ([]*eventsv1.Event, error)) {
	t.Helper()
	evs1, err1 := parse()
	evs2, err2 := parse()
	if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
		t.Fatalf("errors differ: %v / %v", err1, err2)
	}
	if len(evs1) != len(evs2) {
		t.Fatalf("event counts differ: %d / %d", len(evs1), len(evs2))
	}
	for i := range evs1 {
		if !proto.Equal(evs1[i], evs2[i]) {
			t.Fatalf("event %d differs", i)
		}
	}
}

var structuredSeeds = []string{
	obj(),
	obj("subject", `"s"`, "time", `"2018-04-05T17:31:00Z"`, "datacontenttype", `"application/json"`, "data", `{"a":[1,2,{"b":null}]}`),
	obj("datacontenttype", `"text/plain; charset=utf-8"`, "data", `"h\u00e9llo"`),
	obj("datacontenttype", `"application/octet-stream"`, "data_base64", `"AAEC"`),
	obj("traceparent", `"`+testTraceparent+`"`, "tracestate", `"a=1"`, "n", `7`, "b", `true`),
	obj("specversion", `"0.3"`),
	obj("id", `1`, "type", `null`),
	obj("data", `1`, "data_base64", `"AA=="`),
	`{"specversion":"1.0","id":"e","id":"f"}`,
	`{"id":`,
	`[]`,
	"\xff",
}

func FuzzParseStructured(f *testing.F) {
	for _, s := range structuredSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		parse := func() ([]*eventsv1.Event, error) {
			return Parse(structured(), body, testTenant, testNow, Limits{})
		}
		evs, err := parse()
		checkResult(t, evs, err, 1)
		if err == nil && !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		checkDeterministic(t, parse)
	})
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range structuredSeeds {
		f.Add([]byte(batchOf(s)), 0)
	}
	f.Add([]byte(batchOf(obj(), obj("id", `"e2"`), obj("id", `"e3"`))), 2)
	f.Add([]byte(batchOf(obj(), `42`, `null`)), 5)
	f.Add([]byte(`[]`), 1)
	f.Add([]byte(`[[]]`), 1)
	f.Add([]byte(`{}`), 1)
	f.Fuzz(func(t *testing.T, body []byte, maxBatch int) {
		maxBatch %= 200 // keep the limit in a realistic range (negative means default)
		effective := maxBatch
		if effective <= 0 {
			effective = DefaultMaxBatch
		}
		parse := func() ([]*eventsv1.Event, error) {
			return Parse(batchHeader(), body, testTenant, testNow, Limits{MaxBatch: maxBatch})
		}
		evs, err := parse()
		checkResult(t, evs, err, effective)
		if err == nil && !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var perr *Error
		if errors.As(err, &perr) && perr.inBatch && (perr.Index < 0 || perr.Index >= effective) {
			t.Fatalf("index %d out of range: %v", perr.Index, err)
		}
		checkDeterministic(t, parse)
	})
}

func FuzzParseBinary(f *testing.F) {
	f.Add("1.0", "e1", "/src", "order.created", "", "", "", "", "", []byte(nil))
	f.Add("1.0", "A234-1234-1234", "https://example.com/x", "com.example.someevent", "2018-04-05T03:56:24Z",
		"comexampleext", "Euro%20%E2%82%AC", "application/json", testTraceparent, []byte(`{"a":1}`))
	f.Add("1.0", "e1", "/src", "t", "", "Traceparent", testTraceparent, "text/plain", "", []byte("hi"))
	f.Add("1.0", "e1", "/src", "t", "", "ce-ID", "dup", "", "", []byte{})
	f.Add("1.0", "e1", "/src", "t", "", "ce-ext", `"quoted \" value"`, "", "bogus", []byte{})
	f.Add("0.3", "", "", "", "yesterday", "ce-Bad_Name", "%C0%A0", "not a type", "", []byte{0xff})
	f.Add("1.0", "e1", "/src", "t", "", "Content-Type", "application/cloudevents+json", "", "", []byte(obj()))
	f.Fuzz(func(t *testing.T, specversion, id, source, typ, tm, hdrName, hdrVal, ct, traceparent string, body []byte) {
		h := http.Header{}
		for k, v := range map[string]string{"Ce-Specversion": specversion, "Ce-Id": id, "Ce-Source": source, "Ce-Type": typ,
			"Ce-Time": tm, "Content-Type": ct, "Traceparent": traceparent} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		// A header as given: the name is not canonicalized, so it may
		// duplicate one of the above under another case.
		if hdrName != "" {
			if strings.HasPrefix(strings.ToLower(hdrName), "ce-") {
				h[hdrName] = append(h[hdrName], hdrVal)
			} else {
				h["Ce-"+hdrName] = []string{hdrVal}
			}
		}
		parse := func() ([]*eventsv1.Event, error) {
			return Parse(h, body, testTenant, testNow, Limits{})
		}
		evs, err := parse()
		checkResult(t, evs, err, 1)
		if err == nil && Mode(h) == ModeBinary && !bytes.Equal(evs[0].Payload, body) {
			t.Fatalf("payload %q, want the body %q", evs[0].Payload, body)
		}
		checkDeterministic(t, parse)
	})
}
