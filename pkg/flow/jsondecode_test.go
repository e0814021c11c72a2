package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// decodeJSONStd is the former decodeJSON, built on encoding/json: the
// reference the hand-written decoder must agree with.
func decodeJSONStd(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return normalizeNumbersStd(v), nil
}

func normalizeNumbersStd(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil && int64(int(i)) == i {
			return int(i)
		}
		f, _ := strconv.ParseFloat(string(t), 64)
		return f
	case []any:
		for i := range t {
			t[i] = normalizeNumbersStd(t[i])
		}
	case map[string]any:
		for k, x := range t {
			t[k] = normalizeNumbersStd(x)
		}
	}
	return v
}

// sameJSONValue is reflect.DeepEqual, and in addition compares floats by
// their bits (so 0 and -0 differ). JSON yields no NaN.
func sameJSONValue(a, b any) bool {
	return reflect.DeepEqual(a, b) && sameFloatBits(a, b)
}

func sameFloatBits(a, b any) bool {
	switch x := a.(type) {
	case float64:
		return math.Float64bits(x) == math.Float64bits(b.(float64))
	case []any:
		y := b.([]any)
		for i := range x {
			if !sameFloatBits(x[i], y[i]) {
				return false
			}
		}
	case map[string]any:
		y := b.(map[string]any)
		for k := range x {
			if !sameFloatBits(x[k], y[k]) {
				return false
			}
		}
	}
	return true
}

// checkDecodeJSON compares decodeJSON with decodeJSONStd on data.
func checkDecodeJSON(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := decodeJSONStd(data)
	in := bytes.Clone(data)
	got, err := decodeJSON(in)
	// The result must not alias the input.
	for i := range in {
		in[i] = 'X'
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeJSON(%q): error %v, encoding/json: %v", data, err, wantErr)
	}
	if err != nil {
		if got != nil {
			t.Fatalf("decodeJSON(%q) = %#v with error %v", data, got, err)
		}
		if !strings.HasPrefix(err.Error(), "invalid JSON at offset ") {
			t.Fatalf("decodeJSON(%q): error %q", data, err)
		}
		return
	}
	if !sameJSONValue(got, want) {
		t.Fatalf("decodeJSON(%q) = %#v, encoding/json: %#v", data, got, want)
	}
}

func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

var decodeJSONCases = []string{
	// Empty and whitespace.
	"", " ", "\t\r\n ", "\f1", "\v1", "\u00a01", "\xef\xbb\xbf1", "1\x00", "\x001",
	"\t\r\n 1 \t\r\n", " {} ",
	// Literals.
	"null", "true", "false", "nul", "tru", "fals", "truex", "nulll", "True", "NULL",
	"t", "n", "f", "true false", "[true,false,null]", "[nul]", "[truE]",
	// Numbers.
	"0", "-0", "-", "--1", "01", "00", "-01", "-00", "1.", "1.0", "-1.0", ".5", "1.5",
	"1e2", "1E2", "1e+2", "1E-2", "1e", "1e+", "1e-", "1.e2", "1.5e", "-0.0", "0e0",
	"0.1e1", "0.000", "1e400", "-1e400", "1e-400", "-1e-400", "2.2250738585072011e-308",
	"4.9e-324", "1.7976931348623157e308", "1.7976931348623159e308",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808",
	"-9223372036854775809", "123456789012345678", "-123456789012345678",
	"999999999999999999", "1234567890123456789", "-1234567890123456789",
	"99999999999999999999", "18446744073709551615", "18446744073709551616",
	"100000000000000000000000000000000000000000000000000",
	"0000000000000000000", "+1", "0x10", "1_000", "Infinity", "-Infinity", "NaN",
	"1 ", "1x", "1 x", "1 2", "[1 2]", "[-]", "[1.]", "[1e]", "[01]", "[0,1]", "255",
	"256", "-1", "-255", "-256", "[0,1,-1,255,256,1e0,-0,0.5]",
	// Strings.
	`""`, `"a"`, `"hello, world"`, `"\u00e9"`, `"\u00E9"`, `"\ud83d\ude00"`,
	`"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`,
	`"\uDBFF\uDFFF"`, `"\ud800\udc00"`, `"\ud800\\udc00"`, `"\ud800\n"`,
	`"\u0000"`, `"\u001f"`, `"\u12"`, `"\u12g4"`, `"\u"`, `"\u123`, `"\ud800\u12"`,
	`"\x"`, `"\'"`, `"\a"`, `"\U0041"`, `"\/\b\f\n\r\t\"\\"`, `"\\"`, `"\"`,
	"\"a\x00b\"", "\"a\tb\"", "\"a\nb\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\"",
	"\"\xc3\xa9\"", "\"\xc3\"", "\"\xc3x\"", "\"\xed\xa0\x80\"", "\"\xef\xbf\xbd\"",
	"\"\xf4\x90\x80\x80\"", "\"\xf0\x9f\x98\x80\"", "\"\xf0\x9f\x98\"", "\"\xc0\xaf\"",
	"\"\x80\x80\x80\x80\x80\x80\x80\x80\x80\"", "\"abcdefgh\xffijklmnop\"",
	"\"abcdefgh\xc3\xa9ijklmnop\"", "\"abcdefghijklmnop\\nqrstuvwxyz\"",
	"\"abcdefghijklmnopqrstuvwxyz\x01\"", "\"abcdefghijklmnopqrstuvwxyz\"",
	"\"abcdefg\"", "\"abcdefgh\"", "\"abcdefghi\"", "\"\\u00e9\xff\\ud83d\\ude00\xc3\xa9\"",
	`"abc`, `"abc\`, `"abc\"`, `"abcdefghijklmnop`, `"`, `"""`, `"a" "b"`,
	`"\u0041\u0042"`, `"\ufffd"`, `"\uFFFE"`, `"\uD7FF"`, `"\uE000"`,
	// Arrays and objects.
	"{}", "[]", "[ ]", "{ }", "[[]]", "[{}]", "{\"a\":[]}", `{"a":1,"a":2}`,
	`{"a":{"b":1},"a":[2]}`, `{"\u0061":1,"a":2}`, `{"a":1,"\u0061":2}`,
	`{"\ud800":1,"\ufffd":2}`, "{\"\xff\":1}", "{\"\xff\":1,\"\xef\xbf\xbd\":2}",
	`{"a":1,}`, `[1,]`, `[,]`, `[,1]`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`,
	`{a:1}`, `{'a':1}`, `{"a":1 "b":2}`, `{"a":1;"b":2}`, `{1:1}`, `{null:1}`,
	`[1;2]`, ` [ 1 , { "x" : [ ] , "y" : null } ] `, `{} {}`, `[1]]`, `{}}`, `[}`,
	`{]`, `[`, `{`, `]`, `}`, `[1`, `[1,`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,`,
	`"a"  `, `{"":""}`, `{"":1,"":2}`, `[[[[[[[[[[]]]]]]]]]]`, `[1,[2,[3,[4]]]]`,
	`{"id":"o-1","total":42.5,"items":[{"sku":"A1","qty":2}],"customer":{"email":"ada@example.com"}}`,
	`[1,"a",true,null,{"k":[]},[],-2.5e-3]`, `{"a":[1,2,{"b":"c"}],"d":{"e":{"f":null}}}`,
	// Nesting limit.
	nested("[", "]", 100), nested("[", "]", 9999), nested("[", "]", 10000),
	nested("[", "]", 10001), nested("[", "]", 20000), strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	strings.Repeat(`[{"a":`, 5000) + "1" + strings.Repeat("}]", 5000),
	strings.Repeat(`[{"a":`, 5001) + "1" + strings.Repeat("}]", 5001),
	strings.Repeat("[", 10001), strings.Repeat("[", 100000),
}

func TestDecodeJSON(t *testing.T) {
	for _, c := range decodeJSONCases {
		checkDecodeJSON(t, []byte(c))
	}
	for _, p := range [][]byte{smallPayload, largePayload} {
		checkDecodeJSON(t, p)
	}
}

func TestDecodeJSONValues(t *testing.T) {
	for _, c := range []struct {
		in   string
		want any
	}{
		{`-0`, 0},
		{`1.0`, 1.0},
		{`1e2`, 100.0},
		{`1e400`, math.Inf(1)},
		{`-1e400`, math.Inf(-1)},
		{`1e-400`, 0.0},
		{`9223372036854775808`, 9223372036854775808.0},
		{`-9223372036854775808`, math.MinInt64},
		{`"\ud83d\ude00\ud83d"`, "😀\ufffd"},
		{"\"a\xffb\xc3\"", "a\ufffdb\ufffd"},
		{`{"a":1,"a":2}`, map[string]any{"a": 2}},
		{`[]`, []any{}},
		{`{}`, map[string]any{}},
	} {
		got, err := decodeJSON([]byte(c.in))
		if err != nil || !sameJSONValue(got, c.want) {
			t.Errorf("decodeJSON(%q) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{``, "invalid JSON at offset 0: unexpected end of input"},
		{`[1,]`, `invalid JSON at offset 3: invalid character ']' looking for beginning of value`},
		{`{"a":1} x`, "invalid JSON at offset 8: unexpected data after the JSON value"},
		{`01`, "invalid JSON at offset 1: unexpected data after the JSON value"},
		{nested("[", "]", 10001), "invalid JSON at offset 10000: exceeded max depth"},
	} {
		_, err := decodeJSON([]byte(c.in))
		if err == nil || err.Error() != c.want {
			t.Errorf("decodeJSON(%.20q): error %v, want %s", c.in, err, c.want)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, c := range decodeJSONCases {
		if len(c) <= 4096 { // deeper nesting is left to TestDecodeJSON: it slows fuzzing down
			f.Add([]byte(c))
		}
	}
	f.Add(smallPayload)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeJSON(t, data)
	})
}

var smallPayload = []byte(`{"id":"o-1","total":42.5,"items":[{"sku":"A1","qty":2}],"customer":{"email":"ada@example.com","name":"Ada Lovelace"},"paid":true}`)

// largePayload is a ~10 KB order document.
var largePayload = func() []byte {
	var b strings.Builder
	b.WriteString(`{"id":"o-1","status":"paid","currency":"EUR","note":"caf\u00e9 \"deluxe\"\nthanks","customer":{"id":12345,"email":"ada@example.com","name":"Ada Lovelace","vip":true,"tags":["a","b"]},"items":[`)
	for i := 0; b.Len() < 10*1024-300; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%04d","name":"Item number %d","qty":%d,"price":%d.%02d,"discount":null,"gift":%t,"attrs":{"color":"blue","size":"M"}}`,
			i, i, i%7+1, 10+i*3, i%100, i%3 == 0)
	}
	b.WriteString(`],"total":12345.67,"shipping":{"method":"express","cost":9.5,"address":{"street":"1 Main St","city":"London","zip":"N1 9GU"}}}`)
	return []byte(b.String())
}()

func BenchmarkDecodeJSON(b *testing.B) {
	for _, p := range []struct {
		name string
		data []byte
	}{{"small", smallPayload}, {"10KB", largePayload}} {
		for _, impl := range []struct {
			name string
			fn   func([]byte) (any, error)
		}{{"old", decodeJSONStd}, {"new", decodeJSON}} {
			b.Run(p.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(p.data)))
				for b.Loop() {
					if _, err := impl.fn(p.data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
