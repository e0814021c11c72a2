package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// want describes one expected field after a successful Scan.
type want struct {
	raw   string // expected Raw; "" means not found
	text  string // expected Text when textOK
	hasTx bool
}

func scanTypeID(t *testing.T, in string) ([]Field, error) {
	t.Helper()
	fields := []Field{{Key: "type"}, {Key: "id"}}
	err := Scan([]byte(in), fields)
	return fields, err
}

func TestScanValid(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		typ, id  want
		wantErr  error
		notFound bool
	}{
		{
			name: "typical webhook",
			in:   `{"id":"evt_123","type":"invoice.paid","created":1700000000,"data":{"object":{"id":"in_1","type":"x"}}}`,
			typ:  want{`"invoice.paid"`, "invoice.paid", true},
			id:   want{`"evt_123"`, "evt_123", true},
		},
		{
			name: "pretty printed",
			in:   "\n\t{\r\n  \"type\" :\t\"push\" ,\n  \"id\"  :  42 \n}\n ",
			typ:  want{`"push"`, "push", true},
			id:   want{`42`, "42", true},
		},
		{
			name: "duplicates last wins",
			in:   `{"type":"a","id":1,"type":"b","id":{"x":1},"type":"c"}`,
			typ:  want{`"c"`, "c", true},
			id:   want{`{"x":1}`, "", false},
		},
		{
			name: "escaped keys",
			in:   `{"\u0074ype":"t1","\u0069\u0064":"i1"}`,
			typ:  want{`"t1"`, "t1", true},
			id:   want{`"i1"`, "i1", true},
		},
		{
			name: "escaped key then plain duplicate",
			in:   `{"\u0074ype":"t1","type":"t2","i\u0064":3}`,
			typ:  want{`"t2"`, "t2", true},
			id:   want{`3`, "3", true},
		},
		{
			name: "key case sensitive",
			in:   `{"Type":"x","ID":"y","TYPE":"z"}`,
		},
		{
			name: "key with solidus escape does not match",
			in:   `{"ty\/pe":1,"type ":2," type":3}`,
		},
		{
			name: "nested keys ignored",
			in:   `{"data":{"type":"inner","id":"inner","list":[{"type":"deep"}]},"meta":[["type","id"]]}`,
		},
		{
			name: "nested keys before top level",
			in:   `{"a":{"type":"inner"},"type":"outer","b":[{"id":1}],"id":"outer"}`,
			typ:  want{`"outer"`, "outer", true},
			id:   want{`"outer"`, "outer", true},
		},
		{
			name: "string values containing structural chars",
			in:   `{"x":"}{][,:\"","type":"a\"b\\c","id":"{\"type\":1}"}`,
			typ:  want{`"a\"b\\c"`, `a"b\c`, true},
			id:   want{`"{\"type\":1}"`, `{"type":1}`, true},
		},
		{
			name: "numbers",
			in:   `{"type":-0.5e+10,"id":0,"a":[1,-1,0.0,1E5,1e-5,123456789012345678901234567890,-0,1.25E+3]}`,
			typ:  want{`-0.5e+10`, "-0.5e+10", true},
			id:   want{`0`, "0", true},
		},
		{
			name: "literals and containers",
			in:   `{"type":true,"id":null,"x":false}`,
			typ:  want{`true`, "", false},
			id:   want{`null`, "", false},
		},
		{
			name: "array value",
			in:   `{"type":[1,"2",{"3":[]}],"id":[]}`,
			typ:  want{`[1,"2",{"3":[]}]`, "", false},
			id:   want{`[]`, "", false},
		},
		{
			name: "empty object",
			in:   ` {} `,
		},
		{
			name: "empty values",
			in:   `{"type":"","id":{}}`,
			typ:  want{`""`, "", true},
			id:   want{`{}`, "", false},
		},
		{
			name: "unicode and surrogates",
			in:   `{"type":"caf\u00e9 \ud83d\ude00 \ud800 x","id":"日本語"}`,
			typ:  want{`"caf\u00e9 \ud83d\ude00 \ud800 x"`, "café 😀 \uFFFD x", true},
			id:   want{`"日本語"`, "日本語", true},
		},
		{
			name: "invalid utf8 is valid json",
			in:   "{\"type\":\"a\xffb\",\"id\":\"\xed\xa0\x80\"}",
			typ:  want{"\"a\xffb\"", "a\uFFFDb", true},
			id:   want{"\"\xed\xa0\x80\"", "\uFFFD\uFFFD\uFFFD", true},
		},
		{
			name: "invalid utf8 in key never matches raw bytes",
			in:   "{\"typ\xff\":1}",
		},
		{
			name: "long string values",
			in:   `{"pad":"` + strings.Repeat("abcdefgh", 100) + `","type":"` + strings.Repeat("é", 50) + `","id":"` + strings.Repeat(`\n`, 20) + `"}`,
			typ:  want{`"` + strings.Repeat("é", 50) + `"`, strings.Repeat("é", 50), true},
			id:   want{`"` + strings.Repeat(`\n`, 20) + `"`, strings.Repeat("\n", 20), true},
		},
		{name: "string", in: `"type"`, wantErr: ErrNotObject},
		{name: "number", in: ` 12 `, wantErr: ErrNotObject},
		{name: "array", in: `[{"type":"x"}]`, wantErr: ErrNotObject},
		{name: "null", in: `null`, wantErr: ErrNotObject},
		{name: "true", in: "\ttrue\n", wantErr: ErrNotObject},
		{name: "false", in: `false`, wantErr: ErrNotObject},
		{name: "empty array", in: `[ ]`, wantErr: ErrNotObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.in)) {
				t.Fatalf("test input is not valid JSON: %q", tc.in)
			}
			fields, err := scanTypeID(t, tc.in)
			if err != tc.wantErr {
				t.Fatalf("Scan(%q) error = %v, want %v", tc.in, err, tc.wantErr)
			}
			for i, w := range []want{tc.typ, tc.id} {
				f := fields[i]
				if f.Found != (w.raw != "") || string(f.Raw) != w.raw {
					t.Errorf("field %q: Found=%v Raw=%q, want Raw=%q", f.Key, f.Found, f.Raw, w.raw)
				}
				if !f.Found {
					continue
				}
				s, ok := Text(f.Raw)
				if ok != w.hasTx || s != w.text {
					t.Errorf("Text(%q) = %q, %v; want %q, %v", f.Raw, s, ok, w.text, w.hasTx)
				}
			}
			checkAgainstStdlib(t, []byte(tc.in), fields)
		})
	}
}

// checkAgainstStdlib verifies fields filled by a successful Scan against
// json.Unmarshal into a map[string]json.RawMessage.
func checkAgainstStdlib(t *testing.T, data []byte, fields []Field) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return // not an object
	}
	for _, f := range fields {
		raw, ok := m[f.Key]
		if f.Found != ok || string(f.Raw) != string(raw) {
			t.Errorf("key %q: Scan Found=%v Raw=%q; encoding/json found=%v raw=%q", f.Key, f.Found, f.Raw, ok, raw)
		}
	}
}

func TestScanInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"only space", " \n\t "},
		{"trailing garbage", `{"type":"x"}x`},
		{"trailing garbage after space", `{"type":"x"}  ]`},
		{"two values", `{"type":"x"} {"id":1}`},
		{"two values no space", `{}{}`},
		{"trailing comma", `{"type":"x",}`},
		{"trailing comma array", `{"a":[1,]}`},
		{"missing colon", `{"type" "x"}`},
		{"missing value", `{"type":}`},
		{"missing comma", `{"type":"x" "id":1}`},
		{"unquoted key", `{type:"x"}`},
		{"single quotes", `{'type':'x'}`},
		{"unterminated object", `{"type":"x"`},
		{"unterminated object after comma", `{"type":"x",`},
		{"unterminated key", `{"type`},
		{"unterminated string", `{"type":"x`},
		{"unterminated nested", `{"a":{"b":[1,2`},
		{"unterminated after open", `{`},
		{"unterminated after colon", `{"a":`},
		{"mismatched brackets", `{"a":[1}`},
		{"mismatched braces", `{"a":{]}`},
		{"bad escape", `{"type":"\x"}`},
		{"single quote escape", `{"type":"\'"}`},
		{"bad unicode escape", `{"type":"\u12g4"}`},
		{"short unicode escape", `{"type":"\u12"}`},
		{"unicode escape at end", `{"type":"\u12`},
		{"escape at end", `{"type":"\`},
		{"leading zero", `{"id":01}`},
		{"leading zero negative", `{"id":-01}`},
		{"leading zero top", `00`},
		{"plus sign", `{"id":+1}`},
		{"bare minus", `{"id":-}`},
		{"minus at end", `-`},
		{"dot without digits", `{"id":1.}`},
		{"dot at end", `1.`},
		{"leading dot", `{"id":.5}`},
		{"exponent without digits", `{"id":1e}`},
		{"exponent sign without digits", `{"id":1e+}`},
		{"exponent at end", `1e`},
		{"hex number", `{"id":0x10}`},
		{"NaN", `{"id":NaN}`},
		{"Infinity", `{"id":-Infinity}`},
		{"control char in string", "{\"type\":\"a\nb\"}"},
		{"NUL in string", "{\"type\":\"a\x00b\"}"},
		{"tab in string", "{\"type\":\"a\tb\"}"},
		{"control char in key", "{\"ty\x1fpe\":1}"},
		{"bad literal", `{"a":tru}`},
		{"bad literal end", `nul`},
		{"capital literal", `{"a":True}`},
		{"literal with garbage", `{"a":nullx}`},
		{"comment", `{"a":1 /* c */}`},
		{"nbsp whitespace", "{\"a\":1\u00a0}"},
		{"form feed whitespace", "{\f}"},
		{"vertical tab whitespace", "\v{}"},
		{"utf8 BOM", "\ufeff{}"},
		{"invalid top byte", "\xff"},
		{"trailing garbage after string", `"a"b`},
		{"trailing garbage after number", `1 2`},
		{"colon in array", `["a":1]`},
		{"comma in object start", `{,}`},
		{"comma in array start", `[,1]`},
		{"object key not string", `{1:2}`},
		{"too deep arrays", strings.Repeat("[", maxNestingDepth+1) + strings.Repeat("]", maxNestingDepth+1)},
		{"too deep objects", `{"a":` + strings.Repeat(`{"a":`, maxNestingDepth) + "1" + strings.Repeat("}", maxNestingDepth+1)},
		{"too deep after error-free prefix", `{"a":[` + strings.Repeat("[", maxNestingDepth) + `x`},
		{"deep unterminated", strings.Repeat("[", 5000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			if json.Valid(in) {
				t.Fatalf("test input is valid JSON: %q", tc.in)
			}
			fields := []Field{{Key: "type", Raw: []byte("stale"), Found: true}, {Key: "id"}}
			err := Scan(in, fields)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Scan(%.40q) error = %v (%T), want *SyntaxError", tc.in, err, err)
			}
			var v any
			var jse *json.SyntaxError
			if uerr := json.Unmarshal(in, &v); !errors.As(uerr, &jse) {
				t.Fatalf("json.Unmarshal error = %v, want *json.SyntaxError", uerr)
			}
			if se.Error() != jse.Error() || se.Offset != jse.Offset {
				t.Errorf("Scan error = %q at %d; encoding/json: %q at %d", se, se.Offset, jse, jse.Offset)
			}
			for _, f := range fields {
				if f.Found || f.Raw != nil {
					t.Errorf("field %q left filled after error: %+v", f.Key, f)
				}
			}
		})
	}
}

func TestScanDepth(t *testing.T) {
	for _, depth := range []int{1, 255, 256, 257, 1000, maxNestingDepth} {
		arrays := `{"type":"x","a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `,"id":1}`
		if depth == 1 {
			arrays = `{"type":"x","id":1}`
		}
		objects := strings.Repeat(`{"type":`, depth) + "1" + strings.Repeat(`}`, depth)
		mixed := strings.Repeat(`[{"a":`, depth/2) + "1" + strings.Repeat(`}]`, depth/2)
		for _, in := range []string{arrays, objects, mixed} {
			fields := []Field{{Key: "type"}, {Key: "id"}}
			err := Scan([]byte(in), fields)
			if !json.Valid([]byte(in)) {
				t.Fatalf("depth %d: encoding/json rejects the test input", depth)
			}
			if in == mixed {
				if depth/2 > 0 && err != ErrNotObject {
					t.Errorf("depth %d mixed: err = %v, want ErrNotObject", depth, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("depth %d: %v", depth, err)
			}
			checkAgainstStdlib(t, []byte(in), fields)
		}
	}
	// Far beyond the limit must fail quickly and without exhausting the stack.
	huge := strings.Repeat("[", 10_000_000)
	err := Scan([]byte(huge), nil)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != maxNestingDepth+1 || se.Error() != "invalid character '[' exceeded max depth" {
		t.Errorf("huge nesting: %v", err)
	}
}

func TestScanNilAndUnmatchedFields(t *testing.T) {
	in := []byte(`{"type":"x","id":"y"}`)
	if err := Scan(in, nil); err != nil {
		t.Fatal(err)
	}
	fields := []Field{{Key: "missing"}, {Key: ""}, {Key: "type"}, {Key: "type"}}
	if err := Scan(in, fields); err != nil {
		t.Fatal(err)
	}
	if fields[0].Found || fields[1].Found {
		t.Errorf("unexpected match: %+v", fields[:2])
	}
	if !fields[2].Found || !fields[3].Found || string(fields[3].Raw) != `"x"` {
		t.Errorf("duplicate wanted keys must both be filled: %+v", fields[2:])
	}
	// The empty key is a legal key.
	if err := Scan([]byte(`{"":5}`), fields); err != nil || !fields[1].Found || string(fields[1].Raw) != "5" {
		t.Errorf("empty key: %v %+v", err, fields[1])
	}
	// Fields are reset between calls.
	if err := Scan([]byte(`{"other":1}`), fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if f.Found || f.Raw != nil {
			t.Errorf("field %q not reset: %+v", f.Key, f)
		}
	}
}

func TestScanRawAliasesInput(t *testing.T) {
	in := []byte(`{"type":"abc"}`)
	fields := []Field{{Key: "type"}}
	if err := Scan(in, fields); err != nil {
		t.Fatal(err)
	}
	in[9] = 'X'
	if string(fields[0].Raw) != `"Xbc"` {
		t.Errorf("Raw is not a subslice of the input: %q", fields[0].Raw)
	}
	if cap(fields[0].Raw) != len(fields[0].Raw) {
		t.Errorf("Raw capacity %d extends past the value", cap(fields[0].Raw))
	}
}

func TestScanLongEscapedKey(t *testing.T) {
	key := strings.Repeat("k", 200)
	in := []byte(`{"\u006b` + key[1:] + `":1,"` + key + "\xff" + `":2}`)
	fields := []Field{{Key: key}, {Key: key + "\uFFFD"}}
	if err := Scan(in, fields); err != nil {
		t.Fatal(err)
	}
	if string(fields[0].Raw) != "1" || string(fields[1].Raw) != "2" {
		t.Errorf("long escaped keys: %+v", fields)
	}
	checkAgainstStdlib(t, in, fields)
}

func TestScanAllocs(t *testing.T) {
	bodies := [][]byte{webhook1K, webhook16K, []byte(`{"\u0074ype":"x","i\u0064":1,"caf\u00e9":2,"` + "\xff" + `":3}`)}
	for _, body := range bodies {
		fields := []Field{{Key: "type"}, {Key: "id"}, {Key: "café"}, {Key: "\uFFFD"}}
		allocs := testing.AllocsPerRun(100, func() {
			if err := Scan(body, fields); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Scan allocates %v times per call on %.30q", allocs, body)
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"abc"`, "abc", true},
		{`""`, "", true},
		{`"a\"b\\c\/d\be\ff\ng\rh\ti"`, "a\"b\\c/d\be\ff\ng\rh\ti", true},
		{`"\u0041\u00e9\u4e2d"`, "Aé中", true},
		{`"\uD83D\uDE00"`, "😀", true},
		{`"\ud83d\ude00"`, "😀", true},
		{`"\ud83d"`, "\uFFFD", true},
		{`"\ude00"`, "\uFFFD", true},
		{`"\ude00\ud83d"`, "\uFFFD\uFFFD", true},
		{`"\ud83d\ud83d\ude00"`, "\uFFFD😀", true},
		{`"\ud83dx"`, "\uFFFDx", true},
		{`"\ud83d\n"`, "\uFFFD\n", true},
		{`"\u0000"`, "\x00", true},
		{"\"\xff\"", "\uFFFD", true},
		{"\"\xc3\"", "\uFFFD", true},
		{"\"\xed\xa0\x80\"", "\uFFFD\uFFFD\uFFFD", true},
		{"\"\xef\xbf\xbd\"", "\uFFFD", true},
		{`0`, "0", true},
		{`-12.5e+07`, "-12.5e+07", true},
		{`1E400`, "1E400", true},
		{``, "", false},
		{`"`, "", false},
		{`"abc`, "", false},
		{`"a"b"`, "", false},
		{`"\'"`, "", false},
		{`"\x"`, "", false},
		{`"\u12"`, "", false},
		{"\"a\nb\"", "", false},
		{`"abc" `, "", false},
		{` "abc"`, "", false},
		{`01`, "", false},
		{`1.`, "", false},
		{`-`, "", false},
		{`1 `, "", false},
		{`true`, "", false},
		{`false`, "", false},
		{`null`, "", false},
		{`{}`, "", false},
		{`[1]`, "", false},
	}
	for _, tc := range tests {
		s, ok := Text([]byte(tc.in))
		if s != tc.want || ok != tc.ok {
			t.Errorf("Text(%q) = %q, %v; want %q, %v", tc.in, s, ok, tc.want, tc.ok)
		}
		if ok && tc.in[0] == '"' {
			var std string
			if err := json.Unmarshal([]byte(tc.in), &std); err != nil || std != s {
				t.Errorf("Text(%q) = %q; encoding/json gives %q, %v", tc.in, s, std, err)
			}
		}
	}
}

func TestSyntaxErrorMessages(t *testing.T) {
	// Spot checks of wording and offsets; TestScanInvalid and FuzzScan
	// compare every case with encoding/json.
	tests := []struct {
		in     string
		msg    string
		offset int64
	}{
		{``, "unexpected end of JSON input", 0},
		{`{"a":1`, "unexpected end of JSON input", 6},
		{`{"a":1}x`, "invalid character 'x' after top-level value", 8},
		{`{"a":01}`, "invalid character '1' after object key:value pair", 7},
		{`-`, "invalid character ' ' in numeric literal", 1},
		{`{"a":"\q"}`, "invalid character 'q' in string escape code", 8},
		{`{"a":"\u00zz"}`, `invalid character 'z' in \u hexadecimal character escape`, 11},
		{"{\"a\":\"\x01\"}", `invalid character '\x01' in string literal`, 7},
		{`{'a':1}`, `invalid character '\'' looking for beginning of object key string`, 2},
		{`{"a":tx}`, "invalid character 'x' in literal true (expecting 'r')", 7},
		{"\xe9", "invalid character 'é' looking for beginning of value", 1},
	}
	for _, tc := range tests {
		err := Scan([]byte(tc.in), nil)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Error() != tc.msg || se.Offset != tc.offset {
			t.Errorf("Scan(%q) = %v (offset %v); want %q at %d", tc.in, err, se, tc.msg, tc.offset)
		}
	}
}
