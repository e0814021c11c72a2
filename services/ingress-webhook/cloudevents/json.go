package cloudevents

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// checkJSON reports a body that is not valid UTF-8 JSON, with the offset of
// the problem.
func checkJSON(body []byte) *Error {
	if !utf8.Valid(body) {
		off := 0
		for off < len(body) {
			r, size := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return &Error{Msg: fmt.Sprintf("body is not valid JSON: invalid UTF-8 at offset %d", off)}
	}
	if json.Valid(body) {
		return nil
	}
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &Error{Msg: fmt.Sprintf("body is not valid JSON: %v (at offset %d)", se, se.Offset)}
	}
	return &Error{Msg: fmt.Sprintf("body is not valid JSON: %v", err)}
}

// firstByte is the first non-whitespace byte of a JSON value.
func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func parseStructured(body []byte, tenant string, now time.Time) (*eventsv1.Event, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	if firstByte(body) != '{' {
		return nil, &Error{Msg: "body must be a JSON object (one event in the JSON event format)"}
	}
	ev, err := parseJSONEvent(body, tenant, now)
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func parseBatch(body []byte, tenant string, now time.Time, maxBatch int) ([]*eventsv1.Event, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	if firstByte(body) != '[' {
		return nil, &Error{Msg: "body must be a JSON array of events (the JSON batch format)"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '['
		return nil, &Error{Msg: fmt.Sprintf("body is not valid JSON: %v", err)}
	}
	var elems []json.RawMessage
	for dec.More() {
		if len(elems) == maxBatch {
			return nil, &Error{Msg: fmt.Sprintf("batch holds more than %d events, the most one request may carry", maxBatch)}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &Error{Msg: fmt.Sprintf("body is not valid JSON: %v", err)}
		}
		elems = append(elems, raw)
	}
	if len(elems) == 0 {
		return nil, &Error{Msg: "batch is empty: it must hold at least one event"}
	}
	out := make([]*eventsv1.Event, 0, len(elems))
	for i, raw := range elems {
		var ev *eventsv1.Event
		var err *Error
		if firstByte(raw) != '{' {
			err = &Error{Msg: "must be a JSON object (an event in the JSON event format)"}
		} else {
			ev, err = parseJSONEvent(raw, tenant, now)
		}
		if err != nil {
			err.Index, err.inBatch = i, true
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// decodeMembers splits a valid JSON object into its members, rejecting a
// member that appears twice.
func decodeMembers(obj []byte) (map[string]json.RawMessage, *Error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, &Error{Msg: fmt.Sprintf("event is not valid JSON: %v", err)}
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &Error{Msg: fmt.Sprintf("event is not valid JSON: %v", err)}
		}
		key, ok := tok.(string)
		if !ok {
			return nil, &Error{Msg: "event is not valid JSON: member name is not a string"}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, &Error{Msg: fmt.Sprintf("event is not valid JSON: %v", err)}
		}
		if _, dup := m[key]; dup {
			return nil, attrErr(clipName(key), "appears more than once in the event")
		}
		m[key] = v
	}
	return m, nil
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(raw json.RawMessage) string {
	switch firstByte(raw) {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNull(raw json.RawMessage) bool { return firstByte(raw) == 'n' }

// stringMember reads an attribute of type String (or URI, Timestamp...):
// absent or null is unset, anything but a JSON string is an error.
func stringMember(m map[string]json.RawMessage, name string) opt {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return opt{}
	}
	if firstByte(raw) != '"' {
		return opt{ok: true, err: attrErr(name, "must be a JSON string, not %s", jsonKind(raw))}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return opt{ok: true, err: attrErr(name, "is not a valid JSON string: %v", err)}
	}
	return opt{v: s, ok: true}
}

// extensionValue turns an extension's JSON value into its canonical string:
// a string as is, a boolean or an Integer as its JSON text. ok is false for null.
func extensionValue(name string, raw json.RawMessage) (v string, ok bool, err *Error) {
	switch c := firstByte(raw); {
	case c == 'n':
		return "", false, nil
	case c == '"':
		o := stringMember(map[string]json.RawMessage{name: raw}, name)
		return o.v, true, o.err
	case c == 't' || c == 'f':
		return string(raw), true, nil
	case c == '-' || c >= '0' && c <= '9':
		text := string(raw)
		if strings.ContainsAny(text, ".eE") {
			return "", false, attrErr(name, "number %s is not a CloudEvents Integer (no fraction or exponent)", clip(text))
		}
		if _, perr := strconv.ParseInt(text, 10, 32); perr != nil {
			return "", false, attrErr(name, "number %s is outside the range of a CloudEvents Integer (signed 32-bit)", clip(text))
		}
		return text, true, nil
	}
	return "", false, attrErr(name, "must be a JSON string, number or boolean, not %s", jsonKind(raw))
}

var knownJSONMembers = map[string]bool{
	attrSpecVersion: true, attrID: true, attrSource: true, attrType: true, attrSubject: true, attrTime: true,
	attrDataContentType: true, attrDataSchema: true, attrData: true, attrDataBase64: true,
}

// parseJSONEvent maps one event in the JSON event format.
func parseJSONEvent(obj []byte, tenant string, now time.Time) (*eventsv1.Event, *Error) {
	m, err := decodeMembers(obj)
	if err != nil {
		return nil, err
	}
	c := &ceEvent{}
	for _, f := range []struct {
		name string
		dst  *opt
	}{
		{attrSpecVersion, &c.specversion}, {attrID, &c.id}, {attrSource, &c.source}, {attrType, &c.typ},
		{attrSubject, &c.subject}, {attrTime, &c.time}, {attrDataContentType, &c.datacontenttype},
		{attrDataSchema, &c.dataschema},
	} {
		*f.dst = stringMember(m, f.name)
	}
	// Extensions: checked in name order so the first problem is stable.
	var extNames []string
	for name := range m {
		if !knownJSONMembers[name] {
			extNames = append(extNames, name)
		}
	}
	slices.Sort(extNames)
	for _, name := range extNames {
		if err := checkExtensionName(name); err != nil {
			c.extErr = err
			break
		}
		v, ok, err := extensionValue(name, m[name])
		if err != nil {
			c.extErr = err
			break
		}
		if ok {
			if c.ext == nil {
				c.ext = map[string]string{}
			}
			c.ext[name] = v
		}
	}

	data, hasData := m[attrData]
	b64, hasB64 := m[attrDataBase64]
	hasB64 = hasB64 && !isNull(b64)
	return build(c, tenant, now, func(dct opt, jsonData bool, params map[string]string) ([]byte, *Error) {
		switch {
		case hasData && hasB64:
			return nil, attrErr(attrData, "data and data_base64 must not both be present")
		case hasB64:
			if firstByte(b64) != '"' {
				return nil, attrErr(attrDataBase64, "must be a JSON string, not %s", jsonKind(b64))
			}
			var s string
			if err := json.Unmarshal(b64, &s); err != nil {
				return nil, attrErr(attrDataBase64, "is not a valid JSON string: %v", err)
			}
			p, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, attrErr(attrDataBase64, "is not valid base64: %v", err)
			}
			if len(p) == 0 {
				return nil, nil
			}
			return p, nil
		case !hasData:
			return nil, nil
		case jsonData:
			return []byte(data), nil
		case isNull(data):
			return nil, nil
		case firstByte(data) != '"':
			return nil, &Error{Attribute: attrData, cause: ErrUnsupportedMedia,
				Msg: fmt.Sprintf("must be a JSON string for datacontenttype %q, not %s", clip(dct.v), jsonKind(data))}
		}
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, attrErr(attrData, "is not a valid JSON string: %v", err)
		}
		switch cs := strings.ToLower(params["charset"]); {
		case cs == "", cs == "utf-8", cs == "utf8":
		case cs == "us-ascii" && isASCII(s):
		default:
			return nil, &Error{Attribute: attrData, cause: ErrUnsupportedMedia,
				Msg: fmt.Sprintf("cannot encode the text data in charset %q, only utf-8", clip(params["charset"]))}
		}
		if s == "" {
			return nil, nil
		}
		return []byte(s), nil
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
