package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

var fuzzSeeds = []string{
	``,
	`{}`,
	`{"type":"push","id":"abc"}`,
	`{"type":"a","type":"b","id":1,"id":[1,{"id":2}]}`,
	`{"\u0074ype":"x","i\u0064":-0.5e+3}`,
	`{"a":{"type":"nested","id":1},"b":[{"type":2}]}`,
	`{"type":"\ud83d\ude00\ud800\udc00\ude00","id":"\u00e9\n\t\"\\\/"}`,
	"{\"type\":\"\xff\xed\xa0\x80\",\"\xff\":1}",
	`{"id":01}`,
	`{"id":1.}`,
	`{"id":1e+}`,
	`{"type":"x"} {}`,
	`{"type":"x`,
	`{"type":"\u12`,
	`[{"type":"x"}]`,
	`"type"`,
	` -0.0E-0 `,
	`nul`,
	"{\"type\":\"a\x01\"}",
	`{"a":[[[[[[[[[[]]]]]]]]]],"type":true,"id":null}`,
}

// FuzzScan checks Scan against encoding/json: the same validity, the same
// error message and offset, and for objects the same values for "type",
// "id", the empty key and one key taken from the input.
func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m map[string]json.RawMessage
		uerr := json.Unmarshal(data, &m)
		valid := json.Valid(data)
		first := skipSpace(data, 0)
		isObject := valid && first < len(data) && data[first] == '{'

		keys := []string{"type", "id", ""}
		if isObject && len(m) > 0 {
			all := make([]string, 0, len(m))
			for k := range m {
				all = append(all, k)
			}
			slices.Sort(all)
			keys = append(keys, all[len(data)%len(all)])
		}
		fields := make([]Field, len(keys))
		for i, k := range keys {
			fields[i].Key = k
		}

		err := Scan(data, fields)
		switch {
		case !valid:
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("invalid input %q: Scan error = %v (%T), want *SyntaxError", data, err, err)
			}
			var jse *json.SyntaxError
			if !errors.As(uerr, &jse) {
				t.Fatalf("invalid input %q: encoding/json error = %v, want *json.SyntaxError", data, uerr)
			}
			if se.Error() != jse.Error() || se.Offset != jse.Offset {
				t.Fatalf("input %q: Scan error %q at %d; encoding/json %q at %d", data, se, se.Offset, jse, jse.Offset)
			}
		case !isObject:
			if err != ErrNotObject {
				t.Fatalf("valid non-object %q: Scan error = %v, want ErrNotObject", data, err)
			}
		default:
			if err != nil {
				t.Fatalf("valid object %q: Scan error = %v", data, err)
			}
			if uerr != nil {
				t.Fatalf("valid object %q: encoding/json error = %v", data, uerr)
			}
		}
		if err != nil {
			for _, fl := range fields {
				if fl.Found || fl.Raw != nil {
					t.Fatalf("input %q: field %q filled despite error %v", data, fl.Key, err)
				}
			}
			return
		}

		for _, fl := range fields {
			raw, ok := m[fl.Key]
			if fl.Found != ok || !bytes.Equal(fl.Raw, raw) {
				t.Fatalf("input %q key %q: Scan Found=%v Raw=%q; encoding/json found=%v raw=%q", data, fl.Key, fl.Found, fl.Raw, ok, raw)
			}
			if !ok {
				continue
			}
			s, textOK := Text(fl.Raw)
			switch c := raw[0]; {
			case c == '"':
				var want string
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatalf("json.Unmarshal(%q) into string: %v", raw, err)
				}
				if !textOK || s != want {
					t.Fatalf("Text(%q) = %q, %v; encoding/json gives %q", raw, s, textOK, want)
				}
			case c == '-' || isDigit(c):
				var num json.Number
				if err := json.Unmarshal(raw, &num); err != nil {
					t.Fatalf("json.Unmarshal(%q) into json.Number: %v", raw, err)
				}
				if !textOK || s != string(num) {
					t.Fatalf("Text(%q) = %q, %v; want %q", raw, s, textOK, num)
				}
			default:
				if textOK {
					t.Fatalf("Text(%q) = %q, true; want ok=false", raw, s)
				}
			}
		}
	})
}

// FuzzText checks Text against json.Unmarshal into a string (for strings)
// and json.Valid (for numbers); everything else must give ok=false.
func FuzzText(f *testing.F) {
	for _, s := range []string{
		`"abc"`, `""`, `"\u00e9\ud83d\ude00"`, `"\ud800\ud800\udc00"`, `"\udc00"`,
		`"\ud83dx"`, "\"\xff\xc3\"", `"a\"b\\c\/\b\f\n\r\t"`, `"\'"`, `"abc`,
		`"a"b"`, `-1.5e+3`, `01`, `1 `, `true`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, ok := Text(raw)
		if len(raw) == 0 {
			if ok {
				t.Fatalf("Text(empty) ok")
			}
			return
		}
		last := raw[len(raw)-1]
		switch c := raw[0]; {
		case c == '"':
			wantOK := json.Valid(raw) && last == '"'
			if ok != wantOK {
				t.Fatalf("Text(%q) ok = %v, want %v", raw, ok, wantOK)
			}
			if ok {
				var want string
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatalf("json.Unmarshal(%q): %v", raw, err)
				}
				if s != want {
					t.Fatalf("Text(%q) = %q; encoding/json gives %q", raw, s, want)
				}
			}
		case c == '-' || isDigit(c):
			wantOK := json.Valid(raw) && isDigit(last)
			if ok != wantOK || (ok && s != string(raw)) {
				t.Fatalf("Text(%q) = %q, %v; want ok=%v", raw, s, ok, wantOK)
			}
		default:
			if ok {
				t.Fatalf("Text(%q) = %q, true; want ok=false", raw, s)
			}
		}
	})
}

// TestScanRandomized complements FuzzScan with structured inputs the fuzzer
// rarely builds: random JSON documents (long strings, escapes at every
// alignment, nesting) and single-byte corruptions or truncations of them.
func TestScanRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s string) byte { return s[rng.IntN(len(s))] }
	var gen func(b []byte, depth int) []byte
	str := func(b []byte) []byte {
		b = append(b, '"')
		for n := rng.IntN(20); n > 0; n-- {
			switch rng.IntN(12) {
			case 0:
				b = append(b, `\u`...)
				b = fmt.Appendf(b, "%04x", []int{0xd83d, 0xde00, 0xd800, 0xdc00, 0x74, 0xe9, 0}[rng.IntN(7)])
			case 1:
				b = append(b, '\\', pick(`"\/bfnrt`))
			case 2:
				b = append(b, pick("\xff\xc3\xed\xa0\x80é😀"))
			case 3:
				b = append(b, "type"...)
			default:
				b = append(b, pick("abcdefgh id:,{}[] "))
			}
		}
		return append(b, '"')
	}
	gen = func(b []byte, depth int) []byte {
		if rng.IntN(3) == 0 {
			b = append(b, pick(" \t\n\r"))
		}
		k := rng.IntN(9)
		if depth > 6 && k < 2 {
			k += 2
		}
		switch k {
		case 0:
			b = append(b, '{')
			for i, n := 0, rng.IntN(5); i < n; i++ {
				if i > 0 {
					b = append(b, ',')
				}
				if rng.IntN(2) == 0 {
					b = append(b, []string{`"type"`, `"id"`, `"\u0074ype"`, `"i\u0064"`, `""`}[rng.IntN(5)]...)
				} else {
					b = str(b)
				}
				b = append(b, ':')
				b = gen(b, depth+1)
			}
			b = append(b, '}')
		case 1:
			b = append(b, '[')
			for i, n := 0, rng.IntN(5); i < n; i++ {
				if i > 0 {
					b = append(b, ',')
				}
				b = gen(b, depth+1)
			}
			b = append(b, ']')
		case 2, 3, 4:
			b = str(b)
		case 5, 6:
			b = append(b, []string{"0", "-0", "12", "-1.5", "3e7", "1E-2", "0.0e+0", "123456789"}[rng.IntN(8)]...)
		default:
			b = append(b, []string{"true", "false", "null"}[rng.IntN(3)]...)
		}
		return b
	}
	var buf []byte
	var nInvalid, nNotObject, nObject, nFound int
	check := func(data []byte) {
		t.Helper()
		var m map[string]json.RawMessage
		uerr := json.Unmarshal(data, &m)
		fields := []Field{{Key: "type"}, {Key: "id"}, {Key: ""}}
		err := Scan(data, fields)
		first := skipSpace(data, 0)
		isObject := first < len(data) && data[first] == '{'
		var se *SyntaxError
		var jse *json.SyntaxError
		switch {
		case errors.As(uerr, &jse):
			nInvalid++
			if !errors.As(err, &se) || se.Error() != jse.Error() || se.Offset != jse.Offset {
				t.Fatalf("input %q: Scan error %v; encoding/json %q at %d", data, err, jse, jse.Offset)
			}
		case !isObject:
			nNotObject++
			if err != ErrNotObject {
				t.Fatalf("input %q: Scan error %v, want ErrNotObject", data, err)
			}
		default:
			nObject++
			if err != nil || uerr != nil {
				t.Fatalf("input %q: Scan error %v, encoding/json error %v", data, err, uerr)
			}
			for _, f := range fields {
				raw, ok := m[f.Key]
				if f.Found != ok || !bytes.Equal(f.Raw, raw) {
					t.Fatalf("input %q key %q: Found=%v Raw=%q; encoding/json %v %q", data, f.Key, f.Found, f.Raw, ok, raw)
				}
				if ok {
					nFound++
				}
			}
		}
	}
	n := 50000
	if testing.Short() {
		n = 2000
	}
	for range n {
		buf = gen(buf[:0], 0)
		if rng.IntN(4) == 0 {
			buf = append([]byte(`{"type":`), buf...)
			buf = append(buf, '}')
		}
		check(buf)
		if len(buf) == 0 {
			continue
		}
		mut := bytes.Clone(buf)
		switch rng.IntN(3) {
		case 0:
			mut[rng.IntN(len(mut))] = pick("{}[],:\"\\ 0-.eE+xtu\x00\x1f\xff")
		case 1:
			mut = mut[:rng.IntN(len(mut))]
		default:
			i := rng.IntN(len(mut) + 1)
			mut = append(mut[:i], append([]byte{pick("{}[],:\" \\")}, mut[i:]...)...)
		}
		check(mut)
	}
	t.Logf("%d invalid, %d valid non-objects, %d objects (%d fields found)", nInvalid, nNotObject, nObject, nFound)
}
