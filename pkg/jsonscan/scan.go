// Package jsonscan validates a JSON document and extracts a few top-level
// fields of an object in a single pass, without building a map and, for the
// common case, without allocating.
//
// Validity agrees exactly with encoding/json.Valid (the default, non-jsonv2
// implementation): the same grammar, the same treatment of invalid UTF-8 and
// control characters inside strings, and the same nesting limit of 10000.
// A *SyntaxError carries the same message and byte offset that
// encoding/json.Unmarshal would report for the same input.
//
// Field matching follows decoding into a map[string]json.RawMessage: keys are
// compared after unescaping, exactly (case-sensitively), and when a key
// appears more than once the last occurrence wins.
package jsonscan

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// maxNestingDepth is encoding/json's limit on nested arrays and objects.
const maxNestingDepth = 10000

// Field is one wanted top-level key; Scan fills Raw and Found.
type Field struct {
	// Key is the wanted key, compared with each top-level key of the object
	// after that key has been unescaped. The comparison is exact.
	Key string
	// Raw is the raw JSON value (a subslice of the input, without surrounding
	// whitespace, capacity capped so appending to it cannot overwrite the
	// input). When the key occurs more than once the last occurrence wins,
	// as with encoding/json. Use Text to decode a string or number.
	Raw []byte
	// Found reports whether the key occurs at the top level of the object.
	Found bool
}

// SyntaxError describes invalid JSON. Its message and Offset are the ones
// encoding/json reports for the same input.
type SyntaxError struct {
	// Offset is the number of bytes read before the error was detected,
	// as in encoding/json.SyntaxError.
	Offset int64
	msg    string
}

// Error returns the description of the error, worded as by encoding/json.
func (e *SyntaxError) Error() string { return e.msg }

// ErrNotObject is returned by Scan for valid JSON whose value is not an object.
var ErrNotObject = errors.New("JSON value is not an object")

// Scan checks that data is exactly one valid JSON value (surrounding
// whitespace allowed) that is an object, and fills the wanted fields.
//
// It returns a *SyntaxError for invalid JSON and ErrNotObject for a valid
// value that is not an object. Validity agrees exactly with
// encoding/json.Valid. Only keys of the outermost object are matched; keys
// of nested objects are never reported.
//
// Every field is reset first; on any error all fields are left reset, so
// Found is true only when Scan returns nil. Scan does not allocate unless the
// input is invalid, a top-level key contains escapes or invalid UTF-8 and is
// longer than 64 bytes once unescaped, or arrays and objects nest deeper than
// 255 levels.
func Scan(data []byte, fields []Field) error {
	clearFields(fields)
	err := scan(data, fields)
	if err != nil {
		clearFields(fields)
	}
	return err
}

func clearFields(fields []Field) {
	for i := range fields {
		fields[i].Raw = nil
		fields[i].Found = false
	}
}

// Parser states of scan.
const (
	wantValue  = iota // a value may start here (after optional whitespace)
	wantKey           // an object key string must start here (after optional whitespace)
	afterValue        // a value has just ended at i
)

// scan is the single-pass validator. It walks the input once, keeping a bit
// per open container (set for arrays) instead of recursing, so its stack use
// does not depend on the nesting depth.
func scan(data []byte, fields []Field) error {
	n := len(data)
	var stackBuf [4]uint64 // enough for 256 levels without allocating
	stack := stackBuf[:]
	depth := 0

	i := skipSpace(data, 0)
	isObject := i < n && data[i] == '{'

	// The top-level key whose value is being scanned, if any.
	pending := false
	keyStart, keyEnd, valStart := 0, 0, 0
	keyEsc := false

	state := wantValue
	for {
		switch state {
		case wantValue:
			if i < n && data[i] <= ' ' {
				i = skipSpace(data, i)
			}
			if i >= n {
				return errEOF(n)
			}
			var err error
			switch c := data[i]; c {
			case '"':
				i, _, err = scanString(data, i)
			case '{', '[':
				depth++
				if depth > maxNestingDepth {
					return errChar(data, i, "exceeded max depth")
				}
				w, bit := depth>>6, uint64(1)<<(depth&63)
				for w >= len(stack) {
					stack = append(stack, 0)
				}
				i++
				if i < n && data[i] <= ' ' {
					i = skipSpace(data, i)
				}
				if i >= n {
					return errEOF(n)
				}
				if c == '{' {
					stack[w] &^= bit
					if data[i] == '}' {
						i++
						depth--
						break
					}
					state = wantKey
					continue
				}
				stack[w] |= bit
				if data[i] == ']' {
					i++
					depth--
					break
				}
				continue // state stays wantValue
			case 't':
				i, err = scanLiteral(data, i, "true")
			case 'f':
				i, err = scanLiteral(data, i, "false")
			case 'n':
				i, err = scanLiteral(data, i, "null")
			case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				i, err = scanNumber(data, i)
			default:
				return errChar(data, i, "looking for beginning of value")
			}
			if err != nil {
				return err
			}
			state = afterValue

		case wantKey:
			if i < n && data[i] <= ' ' {
				i = skipSpace(data, i)
			}
			if i >= n {
				return errEOF(n)
			}
			if data[i] != '"' {
				return errChar(data, i, "looking for beginning of object key string")
			}
			ks := i
			end, esc, err := scanString(data, i)
			if err != nil {
				return err
			}
			i = end
			if i < n && data[i] <= ' ' {
				i = skipSpace(data, i)
			}
			if i >= n {
				return errEOF(n)
			}
			if data[i] != ':' {
				return errChar(data, i, "after object key")
			}
			i++
			if depth == 1 && len(fields) > 0 {
				if i < n && data[i] <= ' ' {
					i = skipSpace(data, i)
				}
				pending = true
				keyStart, keyEnd, keyEsc = ks+1, end-1, esc
				valStart = i
			}
			state = wantValue

		case afterValue:
			if depth == 0 {
				i = skipSpace(data, i)
				if i < n {
					return errChar(data, i, "after top-level value")
				}
				if !isObject {
					return ErrNotObject
				}
				return nil
			}
			if pending && depth == 1 {
				pending = false
				record(fields, data[keyStart:keyEnd], keyEsc, data[valStart:i:i])
			}
			if i < n && data[i] <= ' ' {
				i = skipSpace(data, i)
			}
			if i >= n {
				return errEOF(n)
			}
			c := data[i]
			if stack[depth>>6]&(uint64(1)<<(depth&63)) != 0 {
				switch c {
				case ',':
					i++
					state = wantValue
				case ']':
					i++
					depth--
				default:
					return errChar(data, i, "after array element")
				}
			} else {
				switch c {
				case ',':
					i++
					state = wantKey
				case '}':
					i++
					depth--
				default:
					return errChar(data, i, "after object key:value pair")
				}
			}
		}
	}
}

// record stores val in every field whose Key equals the unescaped key.
// key is the raw key without its quotes; esc reports a backslash in it.
func record(fields []Field, key []byte, esc bool, val []byte) {
	if esc || !utf8.Valid(key) {
		recordSlow(fields, key, val)
		return
	}
	// The raw key is its own unescaped form.
	for j := range fields {
		if fields[j].Key == string(key) {
			fields[j].Raw = val
			fields[j].Found = true
		}
	}
}

// recordSlow unescapes key (escapes, invalid UTF-8 coerced to U+FFFD as
// encoding/json does) before comparing it.
func recordSlow(fields []Field, key []byte, val []byte) {
	var buf [64]byte
	u, ok := AppendUnquote(buf[:0], key)
	if !ok {
		return // cannot happen: the key was validated
	}
	for j := range fields {
		if fields[j].Key == string(u) {
			fields[j].Raw = val
			fields[j].Found = true
		}
	}
}

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		c := data[i]
		if c > ' ' || (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			return i
		}
		i++
	}
	return i
}

// SWAR constants: a byte of 0x01 and of 0x80 in every lane.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanString validates the string starting with the quote at data[i] and
// returns the index just past its closing quote and whether it contains a
// backslash escape. Like encoding/json it rejects control characters and
// malformed escapes but accepts any other byte, including invalid UTF-8.
func scanString(data []byte, i int) (end int, esc bool, err error) {
	n := len(data)
	i++
	for {
		// Skip 8 ordinary bytes at a time. The lowest flagged lane of m is
		// the first byte that is '"', '\\' or < 0x20; higher lanes may be
		// false positives, which the byte step below handles.
		for i+8 <= n {
			x := binary.LittleEndian.Uint64(data[i:])
			m := ((x - lsb*0x20) | ((x ^ lsb*'"') - lsb) | ((x ^ lsb*'\\') - lsb)) &^ x & msb
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= n {
			return n, esc, errEOF(n)
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= n {
				return n, esc, errChar(data, i, "in string escape code")
			}
			switch data[i] {
			case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
				i++
			case 'u':
				for k := 1; k <= 4; k++ {
					if i+k >= n || !isHex(data[i+k]) {
						return n, esc, errChar(data, i+k, `in \u hexadecimal character escape`)
					}
				}
				i += 5
			default:
				return n, esc, errChar(data, i, "in string escape code")
			}
		case c < 0x20:
			return n, esc, errChar(data, i, "in string literal")
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber validates the number starting at data[i] (a '-' or a digit)
// and returns the index just past it. Whatever follows is checked by the
// caller, as encoding/json's scanner does (so "01" fails on the '1').
func scanNumber(data []byte, i int) (int, error) {
	n := len(data)
	if data[i] == '-' {
		i++
		if i >= n || !isDigit(data[i]) {
			return n, errChar(data, i, "in numeric literal")
		}
	}
	if data[i] == '0' {
		i++
	} else {
		i++
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	if i < n && data[i] == '.' {
		i++
		if i >= n || !isDigit(data[i]) {
			return n, errChar(data, i, "after decimal point in numeric literal")
		}
		i++
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n || !isDigit(data[i]) {
			return n, errChar(data, i, "in exponent of numeric literal")
		}
		i++
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	return i, nil
}

// scanLiteral validates the literal lit (true, false or null) whose first
// byte is at data[i] and returns the index just past it.
func scanLiteral(data []byte, i int, lit string) (int, error) {
	if i+len(lit) <= len(data) && string(data[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	for k := 1; k < len(lit); k++ {
		if i+k >= len(data) || data[i+k] != lit[k] {
			return len(data), errChar(data, i+k, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit), nil // not reached
}

// errChar reports an unexpected byte at data[i]. An index at the end of the
// input stands for the space encoding/json feeds its scanner at end of input,
// so incomplete tokens get its wording and offset.
func errChar(data []byte, i int, context string) error {
	c, off := byte(' '), len(data)
	if i < len(data) {
		c, off = data[i], i+1
	}
	return &SyntaxError{Offset: int64(off), msg: "invalid character " + quoteChar(c) + " " + context}
}

func errEOF(n int) error {
	return &SyntaxError{Offset: int64(n), msg: "unexpected end of JSON input"}
}

// quoteChar formats c as a quoted character literal, as encoding/json does.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}
