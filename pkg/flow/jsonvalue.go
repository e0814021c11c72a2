package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"
)

var nullJSON = json.RawMessage("null")

// decodeJSON decodes one JSON value. Numbers become int when they are
// integral and fit, float64 otherwise, so that expressions can do arithmetic
// on them (expr has no json.Number). Objects become map[string]any, arrays
// []any. The result and the accepted inputs are exactly those of
// encoding/json's Decoder with UseNumber followed by that number conversion
// (see jsondecode.go), without its reflection and allocations.
func decodeJSON(data []byte) (any, error) {
	return decodeJSONFast(data)
}

// errOutputTooLarge is returned when a value's JSON encoding would exceed
// Limits.MaxOutputBytes.
var errOutputTooLarge = errors.New("output is too large")

// encodeJSON encodes v, refusing values that JSON cannot represent and
// values whose encoding would exceed limit bytes. The size is checked on the
// way (with a lower-bound estimate) so a huge value is refused before it is
// encoded.
func encodeJSON(v any, limit int) (json.RawMessage, error) {
	budget := limit
	jv, err := jsonValue(v, &budget)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jv); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(out) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errOutputTooLarge, len(out), limit)
	}
	return json.RawMessage(out), nil
}

// jsonValue converts an expression result into plain JSON types and
// subtracts a lower bound of its encoded size from *budget.
func jsonValue(v any, budget *int) (any, error) {
	spend := func(n int) error {
		*budget -= n
		if *budget < 0 {
			return errOutputTooLarge
		}
		return nil
	}
	switch t := v.(type) {
	case nil:
		return nil, spend(4)
	case bool:
		return t, spend(4)
	case string:
		return t, spend(len(t) + 2)
	case json.Number:
		return t, spend(len(t))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return t, spend(1)
	case float32:
		return jsonValue(float64(t), budget)
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("cannot encode %v as JSON", t)
		}
		return t, spend(1)
	case time.Time:
		return t.Format(time.RFC3339Nano), spend(22)
	case time.Duration:
		return t.String(), spend(4)
	case []any:
		out := make([]any, len(t))
		if err := spend(2 + len(t)); err != nil {
			return nil, err
		}
		for i, x := range t {
			var err error
			if out[i], err = jsonValue(x, budget); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(t))
		if err := spend(2); err != nil {
			return nil, err
		}
		for k, x := range t {
			if err := spend(len(k) + 4); err != nil {
				return nil, err
			}
			var err error
			if out[k], err = jsonValue(x, budget); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return jsonValue(rv.String(), budget)
	case reflect.Slice, reflect.Array:
		list := make([]any, rv.Len())
		for i := range list {
			list[i] = rv.Index(i).Interface()
		}
		return jsonValue(list, budget)
	case reflect.Map:
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			k := it.Key()
			if k.Kind() == reflect.String {
				m[k.String()] = it.Value().Interface()
			} else {
				m[fmt.Sprint(k.Interface())] = it.Value().Interface()
			}
		}
		return jsonValue(m, budget)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return jsonValue(nil, budget)
		}
		return jsonValue(rv.Elem().Interface(), budget)
	}
	return nil, fmt.Errorf("a value of type %T cannot be encoded as JSON", v)
}

// marshalIndent is expr's toJSON encoding (two-space indent) on values
// converted to JSON types.
func marshalIndent(v any) ([]byte, error) {
	budget := math.MaxInt
	jv, err := jsonValue(v, &budget)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(jv, "", "  ")
}

// stringify renders a template value inside text: strings as they are,
// null as nothing, times in RFC 3339, everything else as JSON.
func stringify(v any, limit int) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case time.Time:
		return t.Format(time.RFC3339Nano), nil
	}
	b, err := encodeJSON(v, limit)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
