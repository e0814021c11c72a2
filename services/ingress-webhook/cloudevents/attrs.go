package cloudevents

import (
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Attribute names of CloudEvents 1.0 and of the distributed tracing extension.
const (
	attrSpecVersion     = "specversion"
	attrID              = "id"
	attrSource          = "source"
	attrType            = "type"
	attrSubject         = "subject"
	attrTime            = "time"
	attrDataContentType = "datacontenttype"
	attrDataSchema      = "dataschema"
	attrData            = "data"
	attrDataBase64      = "data_base64"
	attrTraceparent     = "traceparent"
	attrTracestate      = "tracestate"

	specVersion10    = "1.0"
	maxExtensionName = 20
	// ExtensionPrefix prefixes the metadata key of every extension attribute.
	ExtensionPrefix = "ce_"
)

// opt is an optional attribute value: ok is false when it is absent; err
// is a problem found while reading it, reported in attribute order.
type opt struct {
	v   string
	ok  bool
	err *Error
}

// ceEvent is one CloudEvent as read from either binding, attribute values
// already in their canonical string form.
type ceEvent struct {
	specversion, id, source, typ, subject, time, datacontenttype, dataschema opt
	// ext holds the extension attributes (traceparent and tracestate included).
	ext map[string]string
	// extErr is the first problem found while reading the extensions; it is
	// reported after those of the context attributes.
	extErr *Error
}

// payloadFunc produces the payload once datacontenttype is known to be
// valid; jsonData tells whether it declares JSON (or is absent).
type payloadFunc func(dct opt, jsonData bool, params map[string]string) ([]byte, *Error)

func attrErr(attr, format string, args ...any) *Error {
	return &Error{Attribute: attr, Msg: fmt.Sprintf(format, args...)}
}

// build validates c and maps it to an Event.
func build(c *ceEvent, tenant string, now time.Time, payload payloadFunc) (*eventsv1.Event, *Error) {
	// Attributes are checked one after the other in a fixed order, so the
	// first problem reported is stable.
	if err := required(attrSpecVersion, c.specversion); err != nil {
		return nil, err
	}
	if c.specversion.v != specVersion10 {
		return nil, attrErr(attrSpecVersion, "%q is not supported, only 1.0", clip(c.specversion.v))
	}
	if err := required(attrID, c.id); err != nil {
		return nil, err
	}
	if err := event.ValidateID(c.id.v); err != nil {
		return nil, attrErr(attrID, "%v", err)
	}
	if err := required(attrSource, c.source); err != nil {
		return nil, err
	}
	if err := checkString(attrSource, c.source.v); err != nil {
		return nil, err
	}
	if !validURIRef(c.source.v) {
		return nil, attrErr(attrSource, "%q is not a URI-reference (RFC 3986)", clip(c.source.v))
	}
	if err := required(attrType, c.typ); err != nil {
		return nil, err
	}
	if err := bus.ValidateEventType(c.typ.v); err != nil {
		var te *bus.TokenError
		if errors.As(err, &te) {
			return nil, attrErr(attrType, "%q is not a valid event type: %s", clip(c.typ.v), te.Reason)
		}
		return nil, attrErr(attrType, "%v", err)
	}
	for _, o := range []opt{c.subject, c.time, c.datacontenttype, c.dataschema} {
		if o.err != nil {
			return nil, o.err
		}
	}

	ev := &eventsv1.Event{
		Id:        c.id.v,
		EventType: c.typ.v,
		Source:    c.source.v,
		Timestamp: now.UnixMilli(),
		Tenant:    tenant,
	}
	md := map[string]string{}

	if c.subject.ok {
		if c.subject.v == "" {
			return nil, attrErr(attrSubject, "must not be empty when present")
		}
		if err := checkString(attrSubject, c.subject.v); err != nil {
			return nil, err
		}
		// Event.subject is the bus subject; the CloudEvents subject is metadata.
		md[attrSubject] = c.subject.v
	}
	if c.time.ok {
		t, err := time.Parse(time.RFC3339Nano, c.time.v)
		if err != nil {
			return nil, attrErr(attrTime, "%q is not an RFC 3339 timestamp", clip(c.time.v))
		}
		ev.Timestamp = t.UnixMilli()
	}
	jsonData := true
	var params map[string]string
	if c.datacontenttype.ok {
		mt, p, err := parseMediaType(c.datacontenttype.v)
		if err != nil {
			return nil, attrErr(attrDataContentType, "%q is not a media type (RFC 2046): %v", clip(c.datacontenttype.v), err)
		}
		jsonData, params = isJSONMediaType(mt), p
		md["datacontenttype"] = c.datacontenttype.v
	}
	if c.dataschema.ok {
		u, err := url.Parse(c.dataschema.v)
		if c.dataschema.v == "" || !validURIRef(c.dataschema.v) || err != nil || u.Scheme == "" {
			return nil, attrErr(attrDataSchema, "%q is not an absolute URI (RFC 3986)", clip(c.dataschema.v))
		}
		md["dataschema"] = c.dataschema.v
	}

	if c.extErr != nil {
		return nil, c.extErr
	}
	names := make([]string, 0, len(c.ext))
	for name := range c.ext {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := checkExtensionName(name); err != nil {
			return nil, err
		}
		v := c.ext[name]
		if err := checkString(name, v); err != nil {
			return nil, err
		}
		switch name {
		case attrTraceparent:
			if event.ValidTraceparent(v) {
				ev.Traceparent = v
			}
		case attrTracestate:
			md["tracestate"] = v
		default:
			md[ExtensionPrefix+name] = v
		}
	}

	p, perr := payload(c.datacontenttype, jsonData, params)
	if perr != nil {
		return nil, perr
	}
	ev.Payload = p
	if len(md) > 0 {
		ev.Metadata = md
	}
	return ev, nil
}

// required checks that a required attribute is present and not empty.
func required(name string, o opt) *Error {
	switch {
	case o.err != nil:
		return o.err
	case !o.ok:
		return attrErr(name, "is required")
	case o.v == "":
		return attrErr(name, "must not be empty")
	}
	return nil
}

// parseMediaType is mime.ParseMediaType that also insists on type/subtype.
func parseMediaType(s string) (string, map[string]string, error) {
	mt, params, err := mime.ParseMediaType(s)
	if err != nil {
		return "", nil, err
	}
	if typ, sub, ok := strings.Cut(mt, "/"); !ok || typ == "" || sub == "" {
		return "", nil, errors.New("want type/subtype")
	}
	return mt, params, nil
}

// isJSONMediaType reports whether a (lower-case, parameter-free) media type
// declares JSON: */json or */*+json.
func isJSONMediaType(mt string) bool {
	_, sub, _ := strings.Cut(mt, "/")
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// checkExtensionName enforces the naming rule of CloudEvents attributes:
// 1-20 characters of a-z and 0-9.
func checkExtensionName(name string) *Error {
	if name == "" {
		return attrErr("", "an attribute name must not be empty")
	}
	if len(name) > maxExtensionName {
		return attrErr(clipName(name), "attribute names are at most %d characters long", maxExtensionName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return attrErr(clipName(name), "invalid attribute name: only lower-case letters a-z and digits 0-9 are allowed")
		}
	}
	return nil
}

// checkString rejects the characters CloudEvents forbids in String values:
// the control characters U+0000-U+001F and U+007F-U+009F, and invalid UTF-8.
func checkString(attr, v string) *Error {
	for i, r := range v {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(v[i:]); size <= 1 {
				return attrErr(attr, "value is not valid UTF-8")
			}
		}
		if r <= 0x1f || r >= 0x7f && r <= 0x9f {
			return attrErr(attr, "value must not contain control character %U", r)
		}
	}
	return nil
}

// validURIRef reports whether s is a non-empty RFC 3986 URI-reference: only
// unreserved, reserved and well-formed percent-encoded characters, and
// accepted by url.Parse.
func validURIRef(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	_, err := url.Parse(s)
	return err == nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// clipName renders an attribute name for Error.Attribute: as is when it is
// short printable ASCII, else quoted and shortened.
func clipName(name string) string {
	if len(name) <= 64 {
		printable := true
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c > '~' || c == '"' {
				printable = false
				break
			}
		}
		if printable {
			return name
		}
	}
	return strconv.Quote(clip(name))
}
