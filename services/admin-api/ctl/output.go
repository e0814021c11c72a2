package ctl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOut reports -o json.
func (c *cli) jsonOut() bool { return c.g.output == "json" }

var protoJSON = protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}

// marshalProto is the protojson of m, compact (protojson's own spacing is
// deliberately unstable; indentJSON settles it).
func marshalProto(m proto.Message) (json.RawMessage, error) {
	b, err := protoJSON.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// writeJSON writes one indented JSON document.
func (c *cli) writeJSON(doc []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, doc, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := c.stdout.Write(out.Bytes())
	return err
}

// printProto prints m as one JSON object; inline names bytes fields that
// hold JSON (see withInlineJSON).
func (c *cli) printProto(m proto.Message, inline ...string) error {
	b, err := withInlineJSON(m, inline...)
	if err != nil {
		return err
	}
	return c.writeJSON(b)
}

// printProtoList prints items as one JSON array.
func printProtoList[T proto.Message](c *cli, items []T, inline ...string) error {
	docs := make([]json.RawMessage, 0, len(items))
	for _, m := range items {
		b, err := withInlineJSON(m, inline...)
		if err != nil {
			return err
		}
		docs = append(docs, b)
	}
	b, err := json.Marshal(docs)
	if err != nil {
		return err
	}
	return c.writeJSON(b)
}

// withInlineJSON is the protojson of m with the named bytes fields, which
// hold JSON, inlined as JSON rather than base64, so scripts can read them.
func withInlineJSON(m proto.Message, fields ...string) (json.RawMessage, error) {
	b, err := marshalProto(m)
	if err != nil || len(fields) == 0 {
		return b, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	for _, f := range fields {
		if raw, ok := obj[f]; ok {
			obj[f] = inlineJSON(raw)
		}
	}
	return json.Marshal(obj)
}

// inlineJSON turns a protojson bytes value (a base64 string) holding JSON
// into that JSON; anything else is left as it is.
func inlineJSON(raw json.RawMessage) json.RawMessage {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return raw
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || !json.Valid(b) {
		return raw
	}
	return b
}

// table writes aligned columns for people.
type table struct{ tw *tabwriter.Writer }

func (c *cli) table(header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)}
	t.row(anySlice(header)...)
	return t
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (t *table) row(cols ...any) {
	for i, col := range cols {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		s := fmt.Sprint(col)
		if s == "" {
			s = "-"
		}
		// A tab or newline in a value would break the columns.
		fmt.Fprint(t.tw, strings.NewReplacer("\t", " ", "\n", " ").Replace(s))
	}
	fmt.Fprint(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// details writes "key: value" lines for one item.
type details struct{ tw *tabwriter.Writer }

func (c *cli) details() *details {
	return &details{tw: tabwriter.NewWriter(c.stdout, 0, 4, 1, ' ', 0)}
}

func (d *details) add(key string, value any) {
	s := fmt.Sprint(value)
	if s == "" {
		s = "-"
	}
	fmt.Fprintf(d.tw, "%s:\t%s\n", key, s)
}

func (d *details) flush() error { return d.tw.Flush() }

// formatTime is a timestamp for people: RFC 3339 in UTC, "-" when unset.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// writeIndentedJSON writes raw JSON indented under a heading, or as text
// when it is not JSON.
func writeIndentedJSON(w io.Writer, raw []byte, prefix string) {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, prefix, "  "); err != nil {
		fmt.Fprintf(w, "%s%s\n", prefix, raw)
		return
	}
	fmt.Fprintf(w, "%s%s\n", prefix, out.Bytes())
}

// plural is "1 thing" or "n things".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
