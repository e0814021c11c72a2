package cloudevents

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// obj builds a structured event from a valid base; mods are pairs of
// member name and raw JSON value, "-" removing the member. Members are
// written in base order, new ones after.
func obj(mods ...string) string {
	names := []string{"specversion", "id", "source", "type"}
	vals := map[string]string{"specversion": `"1.0"`, "id": `"e1"`, "source": `"/src"`, "type": `"order.created"`}
	for i := 0; i+1 < len(mods); i += 2 {
		if _, ok := vals[mods[i]]; !ok {
			names = append(names, mods[i])
		}
		vals[mods[i]] = mods[i+1]
	}
	var parts []string
	for _, n := range names {
		if v := vals[n]; v != "-" {
			parts = append(parts, fmt.Sprintf("%q:%s", n, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func structured() http.Header {
	return http.Header{"Content-Type": {"application/cloudevents+json"}}
}

func batchHeader() http.Header {
	return http.Header{"Content-Type": {"application/cloudevents-batch+json"}}
}

// bin builds binary-mode headers from a valid base; mods are pairs of
// header name and value, "-" removing the header.
func bin(mods ...string) http.Header {
	h := http.Header{}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", "e1")
	h.Set("ce-source", "/src")
	h.Set("ce-type", "order.created")
	for i := 0; i+1 < len(mods); i += 2 {
		if mods[i+1] == "-" {
			h.Del(mods[i])
		} else {
			h.Set(mods[i], mods[i+1])
		}
	}
	return h
}

func batchOf(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

func TestParseErrors(t *testing.T) {
	twoIDs := bin()
	twoIDs.Add("ce-id", "e2")
	dupCase := bin()
	dupCase["ce-id"] = []string{"e2"} // a second, non-canonical key
	bigBatch := batchOf(obj(), obj("id", `"e2"`), obj("id", `"e3"`))

	for _, tc := range []struct {
		name    string
		h       http.Header
		body    string
		lim     Limits
		attr    string // want *Error with this Attribute ("" included)
		index   int
		msg     string // substring of Error()
		exact   string // whole Error(), when set
		media   bool   // want errors.Is(err, ErrUnsupportedMedia)
		noError bool   // the error must not be a *Error
	}{
		// Required attributes.
		{name: "missing id", h: structured(), body: obj("id", "-"), attr: "id", exact: "id: is required"},
		{name: "null id", h: structured(), body: obj("id", "null"), attr: "id", msg: "is required"},
		{name: "empty id", h: structured(), body: obj("id", `""`), attr: "id", exact: "id: must not be empty"},
		{name: "id with space", h: structured(), body: obj("id", `"a b"`), attr: "id", msg: "printable ASCII"},
		{name: "id too long", h: structured(), body: obj("id", `"`+strings.Repeat("x", 257)+`"`), attr: "id", msg: "longer than 256"},
		{name: "id as number", h: structured(), body: obj("id", `42`), attr: "id", exact: "id: must be a JSON string, not a number"},
		{name: "id as object", h: structured(), body: obj("id", `{}`), attr: "id", msg: "not an object"},
		{name: "missing type", h: structured(), body: obj("type", "-"), attr: "type", msg: "is required"},
		{name: "empty type", h: structured(), body: obj("type", `""`), attr: "type", msg: "must not be empty"},
		{name: "type double dot", h: structured(), body: obj("type", `"com..example"`), attr: "type", msg: "double dot"},
		{name: "type with slash", h: structured(), body: obj("type", `"com/example"`), attr: "type", msg: "not a valid event type"},
		{name: "type ending in result", h: structured(), body: obj("type", `"flow.result"`), attr: "type", msg: "reserved"},
		{name: "type as bool", h: structured(), body: obj("type", `true`), attr: "type", msg: "not a boolean"},
		{name: "missing source", h: structured(), body: obj("source", "-"), attr: "source", msg: "is required"},
		{name: "empty source", h: structured(), body: obj("source", `""`), attr: "source", msg: "must not be empty"},
		{name: "source with space", h: structured(), body: obj("source", `"a b"`), attr: "source", msg: "URI-reference"},
		{name: "source bad percent", h: structured(), body: obj("source", `"/a%zz"`), attr: "source", msg: "URI-reference"},
		{name: "source control char", h: structured(), body: obj("source", `"/a\u0007"`), attr: "source", msg: "control character"},
		{name: "missing specversion", h: structured(), body: obj("specversion", "-"), attr: "specversion", msg: "is required"},
		{name: "specversion 0.3", h: structured(), body: obj("specversion", `"0.3"`), attr: "specversion",
			exact: `specversion: "0.3" is not supported, only 1.0`},
		{name: "specversion as number", h: structured(), body: obj("specversion", `1.0`), attr: "specversion", msg: "must be a JSON string"},
		{name: "specversion checked first", h: structured(), body: obj("specversion", `"0.3"`, "id", `7`, "Bad", `1`), attr: "specversion"},

		// Optional attributes.
		{name: "bad time", h: structured(), body: obj("time", `"yesterday"`), attr: "time", msg: "RFC 3339"},
		{name: "time without zone", h: structured(), body: obj("time", `"2024-05-06T07:08:09"`), attr: "time", msg: "RFC 3339"},
		{name: "time as number", h: structured(), body: obj("time", `1714979289`), attr: "time", msg: "not a number"},
		{name: "empty subject", h: structured(), body: obj("subject", `""`), attr: "subject", msg: "must not be empty"},
		{name: "subject newline", h: structured(), body: obj("subject", `"a\nb"`), attr: "subject", msg: "control character"},
		{name: "bad datacontenttype", h: structured(), body: obj("datacontenttype", `"not a type"`), attr: "datacontenttype", msg: "media type"},
		{name: "datacontenttype without subtype", h: structured(), body: obj("datacontenttype", `"text"`), attr: "datacontenttype"},
		{name: "relative dataschema", h: structured(), body: obj("dataschema", `"schemas/x.json"`), attr: "dataschema", msg: "absolute URI"},
		{name: "empty dataschema", h: structured(), body: obj("dataschema", `""`), attr: "dataschema"},

		// Data.
		{name: "data and data_base64", h: structured(), body: obj("data", `{}`, "data_base64", `"AA=="`), attr: "data", msg: "must not both"},
		{name: "bad base64", h: structured(), body: obj("data_base64", `"!!!"`), attr: "data_base64", msg: "base64"},
		{name: "data_base64 as number", h: structured(), body: obj("data_base64", `1`), attr: "data_base64", msg: "not a number"},
		{name: "text data as object", h: structured(), body: obj("datacontenttype", `"text/plain"`, "data", `{"a":1}`),
			attr: "data", msg: "must be a JSON string", media: true},
		{name: "text data in latin1", h: structured(), body: obj("datacontenttype", `"text/plain; charset=iso-8859-1"`, "data", `"grüße"`),
			attr: "data", msg: "charset", media: true},

		// Extensions.
		{name: "extension with upper case", h: structured(), body: obj("myExt", `"x"`), attr: "myExt", msg: "lower-case"},
		{name: "extension with dash", h: structured(), body: obj("my-ext", `"x"`), attr: "my-ext", msg: "lower-case"},
		{name: "extension too long", h: structured(), body: obj("abcdefghijklmnopqrstu", `"x"`), attr: "abcdefghijklmnopqrstu", msg: "at most 20"},
		{name: "extension empty name", h: structured(), body: obj("", `"x"`), attr: "", msg: "must not be empty"},
		{name: "extension name with quote", h: structured(), body: obj(`a"b`, `"x"`), attr: `"a\"b"`},
		{name: "extension object", h: structured(), body: obj("ext", `{"a":1}`), attr: "ext", msg: "not an object"},
		{name: "extension array", h: structured(), body: obj("ext", `[1]`), attr: "ext", msg: "not an array"},
		{name: "extension fraction", h: structured(), body: obj("ext", `1.5`), attr: "ext", msg: "Integer"},
		{name: "extension exponent", h: structured(), body: obj("ext", `1e3`), attr: "ext", msg: "Integer"},
		{name: "extension over int32", h: structured(), body: obj("ext", `2147483648`), attr: "ext", msg: "32-bit"},
		{name: "extension control char", h: structured(), body: obj("ext", `"\u0000"`), attr: "ext", msg: "control character"},
		{name: "duplicated member", h: structured(), body: `{"specversion":"1.0","id":"e1","id":"e2","source":"/s","type":"t"}`,
			attr: "id", msg: "more than once"},

		// Body and media type.
		{name: "malformed JSON", h: structured(), body: `{"id":`, attr: "", msg: "body is not valid JSON"},
		{name: "malformed JSON offset", h: structured(), body: `{"id": x}`, attr: "",
			exact: "body is not valid JSON: invalid character 'x' looking for beginning of value (at offset 8)"},
		{name: "trailing garbage", h: structured(), body: obj() + "x", attr: "", msg: "offset"},
		{name: "empty body", h: structured(), body: "", attr: "", msg: "not valid JSON"},
		{name: "invalid UTF-8", h: structured(), body: "{\"id\":\"\xff\"}", attr: "", msg: "invalid UTF-8 at offset 7"},
		{name: "structured array", h: structured(), body: batchOf(obj()), attr: "", msg: "must be a JSON object"},
		{name: "structured string", h: structured(), body: `"x"`, attr: "", msg: "must be a JSON object"},
		{name: "structured latin1", h: http.Header{"Content-Type": {"application/cloudevents+json; charset=iso-8859-1"}},
			body: obj(), media: true, noError: true},
		{name: "structured avro", h: http.Header{"Content-Type": {"application/cloudevents+avro"}}, body: obj(), media: true, noError: true},
		{name: "batch protobuf", h: http.Header{"Content-Type": {"application/cloudevents-batch+protobuf"}}, body: "x", media: true, noError: true},
		{name: "malformed content type", h: http.Header{"Content-Type": {"application/cloudevents+json; charset"}}, body: obj(), media: true, noError: true},
		{name: "not a cloudevent", h: http.Header{"Content-Type": {"application/json"}}, body: obj(), media: true, noError: true},
		{name: "no content type", h: http.Header{}, body: obj(), media: true, noError: true},

		// Batch.
		{name: "empty batch", h: batchHeader(), body: `[]`, attr: "", exact: "batch is empty: it must hold at least one event"},
		{name: "batch too big", h: batchHeader(), body: bigBatch, lim: Limits{MaxBatch: 2}, attr: "", msg: "more than 2 events"},
		{name: "batch is an object", h: batchHeader(), body: obj(), attr: "", msg: "JSON array"},
		{name: "batch malformed", h: batchHeader(), body: `[{"id":"x"},`, attr: "", msg: "not valid JSON"},
		{name: "batch element 2 empty type", h: batchHeader(), body: batchOf(obj(), obj(), obj("type", `""`)),
			attr: "type", index: 2, exact: "events[2].type: must not be empty"},
		{name: "batch element not an object", h: batchHeader(), body: batchOf(obj(), `42`), index: 1, attr: "",
			exact: "events[1]: must be a JSON object (an event in the JSON event format)"},
		{name: "batch first problem wins", h: batchHeader(), body: batchOf(obj(), obj("id", `1`), obj("specversion", `"0.3"`)),
			attr: "id", index: 1, msg: "events[1].id"},
		{name: "batch specversion 0.3", h: batchHeader(), body: batchOf(obj("specversion", `"0.3"`)), attr: "specversion",
			exact: `events[0].specversion: "0.3" is not supported, only 1.0`},
		{name: "batch element media", h: batchHeader(), body: batchOf(obj(), obj("datacontenttype", `"text/plain"`, "data", `1`)),
			attr: "data", index: 1, media: true},

		// Binary mode.
		{name: "binary missing id", h: bin("ce-id", "-"), attr: "id", msg: "is required"},
		{name: "binary empty type", h: bin("ce-type", ""), attr: "type", msg: "must not be empty"},
		{name: "binary specversion 0.3", h: bin("ce-specversion", "0.3"), attr: "specversion", exact: `specversion: "0.3" is not supported, only 1.0`},
		{name: "binary two ce-id", h: twoIDs, attr: "id", msg: "more than once"},
		{name: "binary ce-id twice by case", h: dupCase, attr: "id", msg: "more than once"},
		{name: "binary ce-datacontenttype", h: bin("ce-datacontenttype", "text/plain"), attr: "datacontenttype", msg: "Content-Type"},
		{name: "binary ce-data", h: bin("ce-data", "x"), attr: "data", msg: "body is the data"},
		{name: "binary bad extension name", h: bin("ce-bad_name", "x"), attr: "bad_name", msg: "lower-case"},
		{name: "binary extension too long", h: bin("ce-abcdefghijklmnopqrstu", "x"), attr: "abcdefghijklmnopqrstu", msg: "at most 20"},
		{name: "binary empty extension name", h: bin("ce-", "x"), attr: "", msg: "must not be empty"},
		{name: "binary overlong UTF-8", h: bin("ce-ext", "%C0%A0"), attr: "ext", msg: "UTF-8"},
		{name: "binary raw invalid UTF-8", h: bin("ce-subject", "\xff"), attr: "subject", msg: "UTF-8"},
		{name: "binary unterminated quote", h: bin("ce-subject", `"abc`), attr: "subject", msg: "quoted-string"},
		{name: "binary text after quote", h: bin("ce-subject", `"abc"def`), attr: "subject", msg: "quoted-string"},
		{name: "binary percent-encoded control", h: bin("ce-subject", "a%0Ab"), attr: "subject", msg: "control character"},
		{name: "binary bad time", h: bin("ce-time", "2024-13-01T00:00:00Z"), attr: "time", msg: "RFC 3339"},
		{name: "binary bad content type", h: bin("Content-Type", "not a type"), attr: "datacontenttype", msg: "media type"},
		{name: "binary two Content-Types", h: http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"e"}, "Ce-Source": {"/s"}, "Ce-Type": {"t"},
			"Content-Type": {"text/plain", "text/html"}}, attr: "datacontenttype", msg: "more than once"},
		{name: "binary bad source", h: bin("ce-source", "%20has space"), attr: "source", msg: "URI-reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Parse(tc.h, []byte(tc.body), testTenant, testNow, tc.lim)
			if err == nil {
				t.Fatalf("no error, got %d events", len(evs))
			}
			if evs != nil {
				t.Errorf("got %d events along with the error", len(evs))
			}
			if got := errors.Is(err, ErrUnsupportedMedia); got != tc.media {
				t.Errorf("errors.Is(ErrUnsupportedMedia) = %v, want %v (%v)", got, tc.media, err)
			}
			var perr *Error
			isErr := errors.As(err, &perr)
			if tc.noError {
				if isErr {
					t.Errorf("got *Error %v, want a request-level error", err)
				}
				return
			}
			if !isErr {
				t.Fatalf("got %T %v, want *Error", err, err)
			}
			if perr.Attribute != tc.attr || perr.Index != tc.index {
				t.Errorf("Attribute %q Index %d, want %q %d (%v)", perr.Attribute, perr.Index, tc.attr, tc.index, err)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if tc.exact != "" && err.Error() != tc.exact {
				t.Errorf("error %q, want %q", err, tc.exact)
			}
		})
	}
}

func parseOne(t *testing.T, h http.Header, body string) *eventsv1.Event {
	t.Helper()
	evs, err := Parse(h, []byte(body), testTenant, testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	return evs[0]
}

func TestParseStructuredMapping(t *testing.T) {
	body := `{
		"specversion": "1.0", "id": "C234-1234-1234", "source": "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
		"type": "com.example.someevent", "subject": "larger-context", "time": "2018-04-05T17:31:00.5+02:00",
		"datacontenttype": "application/json", "dataschema": "https://example.com/schema.json",
		"comexampleextension1": "value", "comexampleothervalue": -5, "flag": false, "unsetextension": null,
		"traceparent": "` + testTraceparent + `", "tracestate": "a=1,b=2",
		"data": { "appinfoA" : "abc", "appinfoB" : 123, "appinfoC" : true }
	}`
	got := parseOne(t, http.Header{"Content-Type": {"application/cloudevents+json; charset=UTF-8"}}, body)
	want := &eventsv1.Event{
		Id: "C234-1234-1234", EventType: "com.example.someevent", Source: "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
		Timestamp: 1522942260500, Tenant: testTenant, Traceparent: testTraceparent,
		Payload: []byte(`{ "appinfoA" : "abc", "appinfoB" : 123, "appinfoC" : true }`),
		Metadata: map[string]string{
			"datacontenttype": "application/json", "dataschema": "https://example.com/schema.json", "subject": "larger-context",
			"ce_comexampleextension1": "value", "ce_comexampleothervalue": "-5", "ce_flag": "false", "tracestate": "a=1,b=2",
		},
	}
	if !proto.Equal(got, want) {
		t.Errorf("\n got: %v\nwant: %v", got, want)
	}
}

func TestParseStructuredDefaultsAndData(t *testing.T) {
	for _, tc := range []struct {
		name        string
		body        string
		payload     []byte
		traceparent string
		md          map[string]string
	}{
		{name: "no data", body: obj()},
		{name: "null attributes are unset", body: obj("subject", "null", "time", "null", "datacontenttype", "null", "ext", "null")},
		{name: "JSON string data kept as JSON", body: obj("data", `"hi"`), payload: []byte(`"hi"`)},
		{name: "JSON null data", body: obj("data", `null`), payload: []byte(`null`)},
		{name: "JSON number data", body: obj("data", `12.5e3`), payload: []byte(`12.5e3`)},
		{name: "text/json is JSON", body: obj("datacontenttype", `"text/json"`, "data", `[1, 2]`), payload: []byte(`[1, 2]`),
			md: map[string]string{"datacontenttype": "text/json"}},
		{name: "+json is JSON", body: obj("datacontenttype", `"application/cloudevents+json"`, "data", `"s"`), payload: []byte(`"s"`),
			md: map[string]string{"datacontenttype": "application/cloudevents+json"}},
		{name: "text data", body: obj("datacontenttype", `"text/plain"`, "data", `"a\nb \u20ac"`), payload: []byte("a\nb €"),
			md: map[string]string{"datacontenttype": "text/plain"}},
		{name: "xml data", body: obj("datacontenttype", `"application/xml"`, "data", `"<much wow=\"xml\"/>"`), payload: []byte(`<much wow="xml"/>`),
			md: map[string]string{"datacontenttype": "application/xml"}},
		{name: "ascii text data", body: obj("datacontenttype", `"text/plain; charset=us-ascii"`, "data", `"abc"`), payload: []byte("abc"),
			md: map[string]string{"datacontenttype": "text/plain; charset=us-ascii"}},
		{name: "text null data", body: obj("datacontenttype", `"text/plain"`, "data", `null`),
			md: map[string]string{"datacontenttype": "text/plain"}},
		{name: "base64 data", body: obj("data_base64", `"AAEC/w=="`), payload: []byte{0, 1, 2, 0xff}},
		{name: "null data_base64 ignored", body: obj("data", `1`, "data_base64", `null`), payload: []byte(`1`)},
		{name: "invalid traceparent dropped", body: obj("traceparent", `"00-zz"`)},
		{name: "numeric traceparent dropped", body: obj("traceparent", `5`)},
		{name: "max int32 extension", body: obj("n", `2147483647`, "m", `-2147483648`),
			md: map[string]string{"ce_n": "2147483647", "ce_m": "-2147483648"}},
		{name: "20 character extension name", body: obj("abcdefghijklmnopqrst", `"v"`),
			md: map[string]string{"ce_abcdefghijklmnopqrst": "v"}},
		{name: "empty string extension", body: obj("ext", `""`), md: map[string]string{"ce_ext": ""}},
		{name: "deprecated 0.3 attribute is an extension", body: obj("schemaurl", `"x"`), md: map[string]string{"ce_schemaurl": "x"}},
		{name: "escaped member name", body: `{"specversion":"1.0","\u0069d":"e1","source":"/src","type":"order.created"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := parseOne(t, structured(), tc.body)
			if ev.Id != "e1" || ev.EventType != "order.created" || ev.Source != "/src" || ev.Tenant != testTenant {
				t.Errorf("attributes: %v", ev)
			}
			if ev.Timestamp != testNow.UnixMilli() {
				t.Errorf("timestamp %d, want now %d", ev.Timestamp, testNow.UnixMilli())
			}
			if !bytes.Equal(ev.Payload, tc.payload) {
				t.Errorf("payload %q, want %q", ev.Payload, tc.payload)
			}
			if ev.Traceparent != tc.traceparent || ev.Metadata["subject"] != "" {
				t.Errorf("traceparent %q subject %q", ev.Traceparent, ev.Metadata["subject"])
			}
			if len(ev.Metadata) != len(tc.md) {
				t.Errorf("metadata %v, want %v", ev.Metadata, tc.md)
			}
			for k, v := range tc.md {
				if got, ok := ev.Metadata[k]; !ok || got != v {
					t.Errorf("metadata[%q] = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestParseBinary(t *testing.T) {
	h := bin(
		"ce-subject", `"quoted \"subject\""`,
		"ce-comexampleext", "Euro%20%E2%82%ac%20%F0%9F%98%80",
		"ce-percent", "100%",
		"ce-lower", "%7e%41",
		"ce-time", "2018-04-05T03:56:24Z",
		"ce-dataschema", "https://example.com/s.json",
		"Content-Type", "application/xml; charset=utf-8",
		"Traceparent", testTraceparent,
		"Tracestate", "k=v",
	)
	body := []byte("<much wow=\"xml\"/>")
	evs, err := Parse(h, body, testTenant, testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := &eventsv1.Event{
		Id: "e1", EventType: "order.created", Source: "/src", Timestamp: 1522900584000,
		Tenant: testTenant, Traceparent: testTraceparent, Payload: body,
		Metadata: map[string]string{
			"datacontenttype": "application/xml; charset=utf-8", "dataschema": "https://example.com/s.json", "subject": `quoted "subject"`,
			"ce_comexampleext": "Euro € 😀", "ce_percent": "100%", "ce_lower": "~A", "tracestate": "k=v",
		},
	}
	if len(evs) != 1 || !proto.Equal(evs[0], want) {
		t.Fatalf("\n got: %v\nwant: %v", evs, want)
	}
	body[0] = 'X'
	if evs[0].Payload[0] != '<' {
		t.Error("payload aliases the request body")
	}
}

func TestParseBinaryTraceContext(t *testing.T) {
	const other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, tc := range []struct {
		name       string
		h          http.Header
		want       string
		tracestate string
	}{
		{"ce-traceparent", bin("ce-traceparent", testTraceparent, "ce-tracestate", "a=1"), testTraceparent, "a=1"},
		{"ce-traceparent wins over the W3C header", bin("ce-traceparent", testTraceparent, "traceparent", other, "tracestate", "b=2"), testTraceparent, ""},
		{"invalid ce-traceparent is dropped, no fallback", bin("ce-traceparent", "bogus", "traceparent", other), "", ""},
		{"W3C header", bin("traceparent", other, "tracestate", "b=2"), other, "b=2"},
		{"invalid W3C header", bin("traceparent", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "tracestate", "b=2"), "", ""},
		{"none", bin(), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := parseOne(t, tc.h, "")
			if ev.Traceparent != tc.want {
				t.Errorf("traceparent %q, want %q", ev.Traceparent, tc.want)
			}
			if ev.Metadata["tracestate"] != tc.tracestate {
				t.Errorf("tracestate %q, want %q", ev.Metadata["tracestate"], tc.tracestate)
			}
			if ev.Payload != nil || ev.Timestamp != testNow.UnixMilli() {
				t.Errorf("payload %q timestamp %d", ev.Payload, ev.Timestamp)
			}
		})
	}
}

func TestParseBatchLimits(t *testing.T) {
	mk := func(n int) []byte {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = obj("id", fmt.Sprintf(`"e%d"`, i), "time", `"2024-01-01T00:00:00Z"`)
		}
		return []byte(batchOf(evs...))
	}
	evs, err := Parse(batchHeader(), mk(DefaultMaxBatch), testTenant, testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != DefaultMaxBatch {
		t.Fatalf("got %d events, want %d", len(evs), DefaultMaxBatch)
	}
	for i, ev := range evs {
		if ev.Id != fmt.Sprintf("e%d", i) || ev.Timestamp != 1704067200000 || ev.Tenant != testTenant {
			t.Fatalf("event %d: %v", i, ev)
		}
	}
	var perr *Error
	if _, err := Parse(batchHeader(), mk(DefaultMaxBatch+1), testTenant, testNow, Limits{}); !errors.As(err, &perr) ||
		!strings.Contains(err.Error(), "more than 100 events") {
		t.Errorf("default limit: %v", err)
	}
	if evs, err := Parse(batchHeader(), mk(1), testTenant, testNow, Limits{MaxBatch: 1}); err != nil || len(evs) != 1 {
		t.Errorf("MaxBatch 1 with one event: %v", err)
	}
}

func TestMode(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"Content-Type": {"application/cloudevents+json"}}, ModeStructured},
		{http.Header{"Content-Type": {"Application/CloudEvents+JSON; charset=utf-8"}}, ModeStructured},
		{http.Header{"Content-Type": {"application/cloudevents+avro"}}, ModeStructured},
		{http.Header{"Content-Type": {"application/cloudevents"}}, ModeStructured},
		{http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, ModeBatch},
		{http.Header{"Content-Type": {"application/cloudevents-batch+json; charset"}}, ModeBatch},
		{http.Header{"Content-Type": {"application/cloudeventsx"}}, ""},
		{http.Header{"Content-Type": {"application/json"}}, ""},
		{http.Header{"Content-Type": {"application/json"}, "Ce-Id": {"x"}}, ""},
		{http.Header{}, ""},
		{http.Header{"Content-Type": {"application/json"}, "Ce-Specversion": {"1.0"}}, ModeBinary},
		{http.Header{"ce-specversion": {"0.3"}}, ModeBinary},
		{http.Header{"Content-Type": {"application/cloudevents+json"}, "Ce-Specversion": {"1.0"}}, ModeStructured},
	} {
		if got := Mode(tc.h); got != tc.want {
			t.Errorf("Mode(%v) = %q, want %q", tc.h, got, tc.want)
		}
	}
}

func TestStructuredIgnoresHeaders(t *testing.T) {
	h := structured()
	h.Set("ce-id", "from-header")
	h.Set("traceparent", testTraceparent)
	ev := parseOne(t, h, obj())
	if ev.Id != "e1" || ev.Traceparent != "" {
		t.Errorf("structured mode used headers: %v", ev)
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Attribute: "type", Msg: "must not be empty"}, "type: must not be empty"},
		{&Error{Index: 2, Attribute: "type", Msg: "must not be empty", inBatch: true}, "events[2].type: must not be empty"},
		{&Error{Index: 3, Msg: "must be a JSON object", inBatch: true}, "events[3]: must be a JSON object"},
		{&Error{Msg: "batch is empty"}, "batch is empty"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
