package flow

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/greentic/events/pkg/jsonscan"
)

// This file is a hand-written JSON decoder for decodeJSON. It yields exactly
// what encoding/json's Decoder (with UseNumber, numbers then turned into int
// or float64) yields for the same input, and rejects exactly the inputs it
// rejects, without reflection or json.Number:
//
//   - objects become map[string]any (the last of duplicate keys wins),
//     arrays []any (never nil), strings string, true/false bool, null nil;
//   - strings are unescaped as encoding/json does: surrogate pairs are
//     combined, a lone or mismatched surrogate escape becomes U+FFFD, and
//     every byte of invalid UTF-8 becomes U+FFFD;
//   - an integer literal that fits int becomes int, any other number float64
//     as strconv.ParseFloat gives it, range error ignored (1e400 is +Inf);
//   - arrays and objects may nest at most 10000 levels, as in encoding/json.
//
// The input is copied into one string and keys and strings without escapes
// are substrings of it, so they cost no allocation of their own. Array
// elements and object members are gathered on scratch stacks and copied into
// a slice or map of exactly the right size once the container is complete.

// jsonMaxDepth is encoding/json's limit on nested arrays and objects.
const jsonMaxDepth = 10000

// jsonSyntaxError reports invalid JSON. off is the index of the offending
// byte, or the length of the input when the input ends too early.
type jsonSyntaxError struct {
	off int
	msg string
}

func (e *jsonSyntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.off) + ": " + e.msg
}

type jsonMember struct {
	key string
	val any
}

type jsonDecoder struct {
	data  []byte
	s     string // a copy of data; keys and plain strings are substrings
	i     int    // read position in data
	depth int    // open arrays and objects

	vals []any        // scratch stack of array elements
	mems []jsonMember // scratch stack of object members
	buf  []byte       // scratch for unescaping strings
}

var jsonDecoderPool = sync.Pool{New: func() any { return new(jsonDecoder) }}

// jsonMaxPooledScratch caps the scratch stacks kept for reuse, so that one
// huge document does not pin its scratch memory in the pool.
const jsonMaxPooledScratch = 4096

func decodeJSONFast(data []byte) (any, error) {
	d := jsonDecoderPool.Get().(*jsonDecoder)
	d.data, d.s, d.i, d.depth = data, string(data), 0, 0
	v, err := d.value()
	if err == nil {
		d.skipSpace()
		if d.i < len(data) {
			err = d.errAt(d.i, "unexpected data after the JSON value")
		}
	}
	// After an error the stacks may hold values; drop them.
	clear(d.vals)
	clear(d.mems)
	d.vals, d.mems, d.buf = d.vals[:0], d.mems[:0], d.buf[:0]
	if cap(d.vals) > jsonMaxPooledScratch {
		d.vals = nil
	}
	if cap(d.mems) > jsonMaxPooledScratch {
		d.mems = nil
	}
	if cap(d.buf) > 16*jsonMaxPooledScratch {
		d.buf = nil
	}
	d.data, d.s = nil, ""
	jsonDecoderPool.Put(d)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (d *jsonDecoder) errAt(i int, msg string) error {
	if i > len(d.data) {
		i = len(d.data)
	}
	return &jsonSyntaxError{off: i, msg: msg}
}

func (d *jsonDecoder) errEOF() error {
	return &jsonSyntaxError{off: len(d.data), msg: "unexpected end of input"}
}

// errChar reports the unexpected byte at data[i] (or the end of the input).
func (d *jsonDecoder) errChar(i int, context string) error {
	if i >= len(d.data) {
		return d.errEOF()
	}
	c := d.data[i]
	var q string
	if c < utf8.RuneSelf {
		q = strconv.QuoteRune(rune(c))
	} else {
		q = "byte 0x" + strconv.FormatUint(uint64(c), 16)
	}
	return d.errAt(i, "invalid character "+q+" "+context)
}

func (d *jsonDecoder) skipSpace() {
	data, i := d.data, d.i
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		break
	}
	d.i = i
}

// value decodes the value starting at d.i, after optional whitespace.
func (d *jsonDecoder) value() (any, error) {
	if d.i < len(d.data) && d.data[d.i] <= ' ' {
		d.skipSpace()
	}
	if d.i >= len(d.data) {
		return nil, d.errEOF()
	}
	switch c := d.data[d.i]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return s, nil
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return d.number()
	default:
		return nil, d.errChar(d.i, "looking for beginning of value")
	}
}

func (d *jsonDecoder) literal(lit string) error {
	i := d.i
	if i+len(lit) <= len(d.data) && string(d.data[i:i+len(lit)]) == lit {
		d.i = i + len(lit)
		return nil
	}
	for k := 1; k < len(lit); k++ {
		if i+k >= len(d.data) || d.data[i+k] != lit[k] {
			return d.errChar(i+k, "in literal "+lit)
		}
	}
	return d.errChar(i, "in literal "+lit) // not reached
}

func (d *jsonDecoder) array() (any, error) {
	start := d.i
	d.depth++
	if d.depth > jsonMaxDepth {
		return nil, d.errAt(start, "exceeded max depth")
	}
	d.i++
	d.skipSpace()
	if d.i >= len(d.data) {
		return nil, d.errEOF()
	}
	if d.data[d.i] == ']' {
		d.i++
		d.depth--
		return []any{}, nil
	}
	base := len(d.vals)
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.vals = append(d.vals, v)
		if d.i < len(d.data) && d.data[d.i] <= ' ' {
			d.skipSpace()
		}
		if d.i >= len(d.data) {
			return nil, d.errEOF()
		}
		c := d.data[d.i]
		d.i++
		if c == ',' {
			continue
		}
		if c == ']' {
			break
		}
		return nil, d.errChar(d.i-1, "after array element")
	}
	out := make([]any, len(d.vals)-base)
	copy(out, d.vals[base:])
	clear(d.vals[base:])
	d.vals = d.vals[:base]
	d.depth--
	return out, nil
}

func (d *jsonDecoder) object() (any, error) {
	start := d.i
	d.depth++
	if d.depth > jsonMaxDepth {
		return nil, d.errAt(start, "exceeded max depth")
	}
	d.i++
	d.skipSpace()
	if d.i >= len(d.data) {
		return nil, d.errEOF()
	}
	if d.data[d.i] == '}' {
		d.i++
		d.depth--
		return map[string]any{}, nil
	}
	base := len(d.mems)
	for {
		if d.i < len(d.data) && d.data[d.i] <= ' ' {
			d.skipSpace()
		}
		if d.i >= len(d.data) {
			return nil, d.errEOF()
		}
		if d.data[d.i] != '"' {
			return nil, d.errChar(d.i, "looking for beginning of object key string")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if d.i < len(d.data) && d.data[d.i] <= ' ' {
			d.skipSpace()
		}
		if d.i >= len(d.data) {
			return nil, d.errEOF()
		}
		if d.data[d.i] != ':' {
			return nil, d.errChar(d.i, "after object key")
		}
		d.i++
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.mems = append(d.mems, jsonMember{k, v})
		if d.i < len(d.data) && d.data[d.i] <= ' ' {
			d.skipSpace()
		}
		if d.i >= len(d.data) {
			return nil, d.errEOF()
		}
		c := d.data[d.i]
		d.i++
		if c == ',' {
			continue
		}
		if c == '}' {
			break
		}
		return nil, d.errChar(d.i-1, "after object key:value pair")
	}
	mems := d.mems[base:]
	m := make(map[string]any, len(mems))
	for _, kv := range mems {
		m[kv.key] = kv.val // the last of duplicate keys wins
	}
	clear(mems)
	d.mems = d.mems[:base]
	d.depth--
	return m, nil
}

// SWAR constants: a byte of 0x01 and of 0x80 in every lane.
const (
	jsonLSB = 0x0101010101010101
	jsonMSB = 0x8080808080808080
)

// str decodes the string whose opening quote is at d.i.
func (d *jsonDecoder) str() (string, error) {
	data := d.data
	n := len(data)
	start := d.i + 1
	i := start
	// Find the first byte that is '"', '\\', a control character or not
	// ASCII, 8 bytes at a time. The lowest flagged lane is exact; higher
	// lanes may be false positives, which the byte loop handles.
	for i+8 <= n {
		x := binary.LittleEndian.Uint64(data[i:])
		m := ((x - jsonLSB*0x20) | ((x ^ jsonLSB*'"') - jsonLSB) | ((x ^ jsonLSB*'\\') - jsonLSB) | x) & jsonMSB
		if m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			break
		}
		i += 8
	}
	for i < n {
		c := data[i]
		if c == '"' {
			d.i = i + 1
			return d.s[start:i], nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return d.strSlow(start, i)
		}
		i++
	}
	return "", d.errEOF()
}

// strSlow decodes the string whose contents start at data[start], from
// data[i] on, which is a backslash, a control character or a non-ASCII byte.
func (d *jsonDecoder) strSlow(start, i int) (string, error) {
	data := d.data
	n := len(data)
	esc := false
	for {
		if i >= n {
			return "", d.errEOF()
		}
		switch c := data[i]; {
		case c == '"':
			d.i = i + 1
			content := data[start:i]
			if !esc && utf8.Valid(content) {
				return d.s[start:i], nil
			}
			var ok bool
			if d.buf, ok = jsonscan.AppendUnquote(d.buf[:0], content); !ok {
				return "", d.errAt(start, "invalid string")
			}
			return string(d.buf), nil
		case c == '\\':
			esc = true
			i++
			if i >= n {
				return "", d.errEOF()
			}
			switch data[i] {
			case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
				i++
			case 'u':
				for k := 1; k <= 4; k++ {
					if i+k >= n {
						return "", d.errEOF()
					}
					if !jsonIsHex(data[i+k]) {
						return "", d.errChar(i+k, `in \u hexadecimal character escape`)
					}
				}
				i += 5
			default:
				return "", d.errChar(i, "in string escape code")
			}
		case c < 0x20:
			return "", d.errChar(i, "in string literal")
		default:
			i++
		}
	}
}

func jsonIsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func jsonIsDigit(c byte) bool { return '0' <= c && c <= '9' }

// number decodes the number starting at d.i (a '-' or a digit). What
// follows it is checked by the caller, as encoding/json does, so "01" fails
// on the '1'.
func (d *jsonDecoder) number() (any, error) {
	data := d.data
	n := len(data)
	start := d.i
	i := start
	neg := false
	if data[i] == '-' {
		neg = true
		i++
		if i >= n {
			return nil, d.errEOF()
		}
		if !jsonIsDigit(data[i]) {
			return nil, d.errChar(i, "in numeric literal")
		}
	}
	digits := i
	var u uint64
	if data[i] == '0' {
		i++
	} else {
		for i < n && jsonIsDigit(data[i]) {
			u = u*10 + uint64(data[i]-'0')
			i++
		}
	}
	digits = i - digits
	isFloat := false
	if i < n && data[i] == '.' {
		isFloat = true
		i++
		if i >= n {
			return nil, d.errEOF()
		}
		if !jsonIsDigit(data[i]) {
			return nil, d.errChar(i, "after decimal point in numeric literal")
		}
		for i < n && jsonIsDigit(data[i]) {
			i++
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		isFloat = true
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n {
			return nil, d.errEOF()
		}
		if !jsonIsDigit(data[i]) {
			return nil, d.errChar(i, "in exponent of numeric literal")
		}
		for i < n && jsonIsDigit(data[i]) {
			i++
		}
	}
	d.i = i
	lit := d.s[start:i]
	if !isFloat {
		if digits <= 18 { // u is exact and fits int64
			v := int64(u)
			if neg {
				v = -v
			}
			if int64(int(v)) == v {
				return int(v), nil
			}
		} else if v, err := strconv.ParseInt(lit, 10, 64); err == nil && int64(int(v)) == v {
			return int(v), nil
		}
	}
	// As before: a range error is ignored (1e400 is +Inf, 1e-400 is 0).
	f, _ := strconv.ParseFloat(lit, 64)
	return f, nil
}
