package cloudevents

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Content modes reported by Mode.
const (
	ModeBinary     = "binary"
	ModeStructured = "structured"
	ModeBatch      = "batch"
)

// Media types of the JSON event format and the JSON batch format.
const (
	MediaTypeStructured = "application/cloudevents+json"
	MediaTypeBatch      = "application/cloudevents-batch+json"
)

// DefaultMaxBatch is the batch limit used when Limits.MaxBatch is 0.
const DefaultMaxBatch = 100

// Limits bound a request.
type Limits struct {
	// MaxBatch is the largest number of events a batch may hold;
	// DefaultMaxBatch when 0 (or negative).
	MaxBatch int
}

// ErrUnsupportedMedia is wrapped by the errors the caller should answer
// with 415 Unsupported Media Type: the request is not a CloudEvent, uses an
// event format or charset other than JSON/UTF-8, or carries a structured
// event whose data cannot be represented for its datacontenttype.
var ErrUnsupportedMedia = errors.New("unsupported media type")

// Error is a problem with one attribute of one event; Index is the event's
// position in a batch (0 otherwise). Attribute is "" for a problem with
// the request or the event as a whole.
type Error struct {
	Index     int
	Attribute string
	Msg       string

	inBatch bool  // the problem belongs to the batch element Index
	cause   error // ErrUnsupportedMedia or nil
}

// Error formats the problem as `events[2].type: must not be empty` in a
// batch and `specversion: "0.3" is not supported, only 1.0` otherwise.
func (e *Error) Error() string {
	var b strings.Builder
	if e.inBatch {
		fmt.Fprintf(&b, "events[%d]", e.Index)
		if e.Attribute != "" {
			b.WriteByte('.')
		}
	}
	b.WriteString(e.Attribute)
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrUnsupportedMedia for problems the caller answers with 415.
func (e *Error) Unwrap() error { return e.cause }

// mediaType splits Content-Type. ok is false when it is malformed, in which
// case mt is still the lower-cased part before the first ';'.
func mediaType(h http.Header) (mt string, params map[string]string, ok bool) {
	ct := strings.TrimSpace(h.Get("Content-Type"))
	if ct == "" {
		return "", nil, true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(ct, ";")
		return strings.ToLower(strings.TrimSpace(mt)), nil, false
	}
	return mt, params, true
}

// hasMediaPrefix reports whether mt is base itself or base+suffix.
func hasMediaPrefix(mt, base string) bool {
	return mt == base || strings.HasPrefix(mt, base+"+")
}

// Mode reports which mode a Content-Type/headers select (for metrics and 415
// decisions): "binary", "structured", "batch", or "" when the request is not
// a CloudEvent (no ce-specversion header and not a cloudevents media type).
// A CloudEvents media type with a format other than JSON still selects its
// mode; Parse then rejects it with ErrUnsupportedMedia.
func Mode(h http.Header) string {
	mt, _, _ := mediaType(h)
	switch {
	case hasMediaPrefix(mt, "application/cloudevents-batch"):
		return ModeBatch
	case hasMediaPrefix(mt, "application/cloudevents"):
		return ModeStructured
	case hasHeader(h, "ce-specversion"):
		return ModeBinary
	}
	return ""
}

// hasHeader looks a header up case-insensitively, also under keys that are
// not in canonical form.
func hasHeader(h http.Header, name string) bool {
	if _, ok := h[http.CanonicalHeaderKey(name)]; ok {
		return true
	}
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// Parse reads one HTTP request's CloudEvents: binary mode (ce-* headers,
// body = data, Content-Type = datacontenttype), structured mode
// (Content-Type application/cloudevents+json, optionally ;charset=utf-8),
// batch mode (application/cloudevents-batch+json, a JSON array of
// structured events; empty array is an error). tenant is the tenant of the
// route; now gives the timestamp when `time` is absent.
//
// On success it returns at least one event, in request order. Errors are
// either *Error (answer 400, unless it wraps ErrUnsupportedMedia) or wrap
// ErrUnsupportedMedia (answer 415). No events are returned with an error.
func Parse(h http.Header, body []byte, tenant string, now time.Time, lim Limits) ([]*eventsv1.Event, error) {
	maxBatch := lim.MaxBatch
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	mode := Mode(h)
	if mode == ModeBinary {
		ev, err := parseBinary(h, body, tenant, now)
		if err != nil {
			return nil, err
		}
		return []*eventsv1.Event{ev}, nil
	}
	if mode == "" {
		return nil, fmt.Errorf("%w: not a CloudEvent: no ce-specversion header and Content-Type %q is not %s or %s",
			ErrUnsupportedMedia, h.Get("Content-Type"), MediaTypeStructured, MediaTypeBatch)
	}
	mt, params, ok := mediaType(h)
	if !ok {
		return nil, fmt.Errorf("%w: malformed Content-Type %q", ErrUnsupportedMedia, h.Get("Content-Type"))
	}
	want := MediaTypeStructured
	if mode == ModeBatch {
		want = MediaTypeBatch
	}
	if mt != want {
		return nil, fmt.Errorf("%w: event format %q is not supported, only %s", ErrUnsupportedMedia, mt, want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return nil, fmt.Errorf("%w: charset %q is not supported, only utf-8", ErrUnsupportedMedia, cs)
	}
	if mode == ModeBatch {
		return parseBatch(body, tenant, now, maxBatch)
	}
	ev, err := parseStructured(body, tenant, now)
	if err != nil {
		return nil, err
	}
	return []*eventsv1.Event{ev}, nil
}
