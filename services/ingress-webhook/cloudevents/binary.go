package cloudevents

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

const headerPrefix = "ce-"

// parseBinary maps a binary-mode request: the attributes are the ce-*
// headers, the body is the data and Content-Type is datacontenttype.
func parseBinary(h http.Header, body []byte, tenant string, now time.Time) (*eventsv1.Event, error) {
	// Header keys in canonical form first, others (a Header built by hand)
	// after; sorted so the first problem reported is stable.
	keys := make([]string, 0, len(h))
	for k := range h {
		if len(k) >= len(headerPrefix) && strings.EqualFold(k[:len(headerPrefix)], headerPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)

	c := &ceEvent{}
	known := map[string]*opt{
		attrSpecVersion: &c.specversion, attrID: &c.id, attrSource: &c.source, attrType: &c.typ,
		attrSubject: &c.subject, attrTime: &c.time, attrDataSchema: &c.dataschema,
	}
	seen := map[string]bool{}
	extErr := func(err *Error) {
		if c.extErr == nil {
			c.extErr = err
		}
	}
	for _, k := range keys {
		vals := h[k]
		if len(vals) == 0 {
			continue
		}
		name := strings.ToLower(k[len(headerPrefix):])
		attr := clipName(name)
		var err *Error
		if seen[name] || len(vals) > 1 {
			err = attrErr(attr, "the header %s%s appears more than once", headerPrefix, attr)
		}
		seen[name] = true
		v, derr := decodeHeaderValue(vals[0])
		if err == nil && derr != nil {
			err = attrErr(attr, "header value: %v", derr)
		}
		if dst, ok := known[name]; ok {
			if dst.err == nil {
				*dst = opt{v: v, ok: true, err: err}
			}
			continue
		}
		switch name {
		case attrDataContentType:
			err = attrErr(attrDataContentType, "must be sent as the Content-Type header, not as %s%s", headerPrefix, attrDataContentType)
			c.datacontenttype = opt{ok: true, err: err}
			continue
		case attrData:
			extErr(attrErr(attrData, "%s%s is not allowed: in binary mode the body is the data", headerPrefix, attrData))
			continue
		}
		if nerr := checkExtensionName(name); nerr != nil {
			extErr(nerr)
			continue
		}
		if err != nil {
			extErr(err)
			continue
		}
		if c.ext == nil {
			c.ext = map[string]string{}
		}
		c.ext[name] = v
	}

	// The W3C trace context headers stand in for the distributed tracing
	// extension when it is not sent as ce-traceparent.
	if !seen[attrTraceparent] {
		if tps := h.Values("Traceparent"); len(tps) == 1 {
			if c.ext == nil {
				c.ext = map[string]string{}
			}
			tp := strings.TrimSpace(tps[0])
			c.ext[attrTraceparent] = tp
			if ts := h.Values("Tracestate"); len(ts) > 0 && !seen[attrTracestate] && event.ValidTraceparent(tp) {
				c.ext[attrTracestate] = strings.Join(ts, ",")
			}
		}
	}

	if cts := h.Values("Content-Type"); len(cts) > 1 && c.datacontenttype.err == nil {
		c.datacontenttype = opt{ok: true, err: attrErr(attrDataContentType, "the Content-Type header appears more than once")}
	} else if ct := strings.TrimSpace(h.Get("Content-Type")); ct != "" && c.datacontenttype.err == nil {
		c.datacontenttype = opt{v: ct, ok: true}
	}

	ev, err := build(c, tenant, now, func(opt, bool, map[string]string) ([]byte, *Error) {
		if len(body) == 0 {
			return nil, nil
		}
		return bytes.Clone(body), nil
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}

var (
	errQuoted  = errors.New("malformed quoted-string")
	errPercent = errors.New("percent-decoded value is not valid UTF-8")
)

// decodeHeaderValue undoes the HTTP encoding of an attribute value: it
// trims optional whitespace, unquotes an RFC 7230 quoted-string and then
// performs one round of percent-decoding. A '%' that is not followed by two
// hex digits is kept as is. The result must be valid UTF-8.
func decodeHeaderValue(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		closed := false
		for i := 1; i < len(v); i++ {
			switch c := v[i]; c {
			case '\\':
				if i+1 >= len(v) {
					return "", errQuoted
				}
				i++
				b.WriteByte(v[i])
			case '"':
				if i != len(v)-1 {
					return "", errQuoted
				}
				closed = true
			default:
				b.WriteByte(c)
			}
		}
		if !closed {
			return "", errQuoted
		}
		v = b.String()
	}
	if strings.IndexByte(v, '%') < 0 {
		if !utf8.ValidString(v) {
			return "", errors.New("value is not valid UTF-8")
		}
		return v, nil
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
			out = append(out, unhex(v[i+1])<<4|unhex(v[i+2]))
			i += 2
		} else {
			out = append(out, c)
		}
	}
	if !utf8.Valid(out) {
		return "", errPercent
	}
	return string(out), nil
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
