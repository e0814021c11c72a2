package event

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// ResultJSON is the JSON of a flow result for APIs and people: protobuf
// JSON with the field names of the .proto file (as ProtoJSON writes it),
// compact, with the output embedded as JSON rather than base64, last. An
// output that is not valid JSON is carried as a JSON string, as View does
// with a payload, so the document stays valid JSON.
func ResultJSON(r *eventsv1.FlowResult) ([]byte, error) {
	rest := &eventsv1.FlowResult{}
	if r != nil {
		rest = proto.CloneOf(r)
		rest.Output = nil
	}
	b, err := jsonOpts.Marshal(rest)
	if err != nil {
		return nil, fmt.Errorf("encode flow result: %w", err)
	}
	var doc bytes.Buffer
	// protojson's spacing is deliberately unstable; Compact settles it.
	if err := json.Compact(&doc, b); err != nil {
		return nil, fmt.Errorf("encode flow result: %w", err)
	}
	out := r.GetOutput()
	if len(out) == 0 {
		return doc.Bytes(), nil
	}
	if !json.Valid(out) {
		out, _ = json.Marshal(string(out))
	}
	// doc is an object: the output goes in before its closing brace.
	doc.Truncate(doc.Len() - 1)
	if doc.Len() > 1 {
		doc.WriteByte(',')
	}
	doc.WriteString(`"output":`)
	if err := json.Compact(&doc, out); err != nil {
		return nil, fmt.Errorf("encode flow result output: %w", err)
	}
	doc.WriteByte('}')
	return doc.Bytes(), nil
}
