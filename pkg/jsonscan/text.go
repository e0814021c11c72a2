package jsonscan

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Text returns a raw value as text: a JSON string unescaped, or a number's
// literal text. ok is false for objects, arrays, true, false and null, and
// for anything that is not exactly one valid JSON string or number (no
// surrounding whitespace).
//
// Strings are decoded as json.Unmarshal decodes into a string: all escapes
// are handled, \uXXXX surrogate pairs are combined, a lone or mismatched
// surrogate becomes U+FFFD, and invalid UTF-8 bytes are each replaced by
// U+FFFD.
func Text(raw []byte) (s string, ok bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		end, esc, err := scanString(raw, 0)
		if err != nil || end != len(raw) {
			return "", false
		}
		content := raw[1 : len(raw)-1]
		if !esc && utf8.Valid(content) {
			return string(content), true
		}
		var buf [128]byte
		u, ok := AppendUnquote(buf[:0], content)
		if !ok {
			return "", false // cannot happen: scanString validated it
		}
		return string(u), true
	case c == '-' || isDigit(c):
		end, err := scanNumber(raw, 0)
		if err != nil || end != len(raw) {
			return "", false
		}
		return string(raw), true
	}
	return "", false
}

// AppendUnquote appends the unescaped form of s, the contents of a JSON
// string without its quotes, to b. It follows encoding/json's unquoteBytes:
// invalid surrogate escapes and invalid UTF-8 bytes become U+FFFD. ok is
// false if s is not valid string contents.
func AppendUnquote(b, s []byte) (_ []byte, ok bool) {
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			r++
			if r >= len(s) {
				return b, false
			}
			switch s[r] {
			case '"', '\\', '/':
				b = append(b, s[r])
				r++
			case 'b':
				b = append(b, '\b')
				r++
			case 'f':
				b = append(b, '\f')
				r++
			case 'n':
				b = append(b, '\n')
				r++
			case 'r':
				b = append(b, '\r')
				r++
			case 't':
				b = append(b, '\t')
				r++
			case 'u':
				rr := getu4(s[r-1:])
				if rr < 0 {
					return b, false
				}
				r += 5
				if utf16.IsSurrogate(rr) {
					rr1 := getu4(s[r:])
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						// A valid pair; consume both halves.
						r += 6
						b = utf8.AppendRune(b, dec)
						break
					}
					// A lone or mismatched surrogate.
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
			default:
				return b, false
			}
		case c == '"' || c < ' ':
			return b, false
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			// Coerce to well-formed UTF-8: each invalid byte becomes U+FFFD.
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return b, true
}

// getu4 decodes \uXXXX from the beginning of s, returning the hex value,
// or it returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
