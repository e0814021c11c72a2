// Package cloudevents reads CloudEvents 1.0 delivered over HTTP and maps
// each CloudEvent 1:1 to the normalized eventsv1.Event.
//
// It implements the receiving side of the HTTP protocol binding
// (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md)
// with the JSON event format and the JSON batch format
// (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md),
// in all three content modes:
//
//   - binary: the attributes are ce-* headers, the body is the data and
//     Content-Type is datacontenttype. Selected by a ce-specversion header
//     when Content-Type is not a CloudEvents media type.
//   - structured: Content-Type application/cloudevents+json (charset, if
//     given, must be utf-8); the body is one JSON event.
//   - batch: Content-Type application/cloudevents-batch+json; the body is a
//     JSON array of structured events. An empty array is rejected (the
//     spec allows it, but an ingress request that carries no event is a
//     client error here), and so is an array longer than Limits.MaxBatch.
//
// Other event formats (application/cloudevents+avro, ...) and requests that
// are not CloudEvents at all are rejected with an error wrapping
// ErrUnsupportedMedia, to be answered with 415.
//
// # Mapping
//
//	CloudEvents attribute     Event field                    rule
//	specversion (required)    -                              must be "1.0"
//	id (required)             id                             must pass event.ValidateID
//	type (required)           event_type                     must pass bus.ValidateEventType (reverse-DNS types are fine)
//	source (required)         source                         non-empty URI-reference, kept as given
//	subject                   metadata["subject"]            non-empty when present (Event.subject is the bus subject)
//	time                      timestamp                      RFC 3339 → unix milliseconds; absent → now
//	datacontenttype           metadata["datacontenttype"]    RFC 2046 media type; binary mode: the Content-Type header
//	dataschema                metadata["dataschema"]         non-empty absolute URI
//	data / data_base64 / body payload                        see below
//	traceparent (extension)   traceparent                    only when event.ValidTraceparent, else dropped
//	tracestate (extension)    metadata["tracestate"]
//	any other extension NAME  metadata["ce_" + NAME]         value as a string
//	-                         tenant                         the tenant of the route
//	-                         env                            left empty (the publisher fills it)
//
// Payload: in binary mode the body, byte for byte. In the JSON formats,
// data_base64 is decoded; data is kept as its raw JSON bytes, exactly as in
// the request, when datacontenttype is absent or declares JSON (*/json or
// */*+json); with any other datacontenttype data must be a JSON string (or
// null, meaning no payload) and the payload is the string's UTF-8 bytes. A
// non-string data with a non-JSON datacontenttype, or a charset other than
// utf-8/us-ascii, cannot be represented and wraps ErrUnsupportedMedia.
// data and data_base64 together are an error.
//
// Extensions: names must be 1-20 characters of a-z and 0-9 (header names
// are case-insensitive, so binary mode lower-cases them first). In the JSON
// formats a value must be a string, a boolean (kept as "true"/"false") or
// a CloudEvents Integer (a JSON number without fraction or exponent within
// the signed 32-bit range, kept as its JSON text); objects and arrays are
// rejected. JSON null means the attribute is absent, for every attribute.
//
// Binary mode header values are unquoted when they are an RFC 7230 quoted
// string and then percent-decoded once, as the binding requires; the result
// must be valid UTF-8. A '%' not followed by two hex digits is kept as is,
// because common senders (the Go SDK among them) do not percent-encode.
// A header that appears twice, a ce-datacontenttype header and a ce-data
// header are errors. When there is no ce-traceparent header, the W3C
// traceparent (and tracestate) HTTP headers are used instead.
//
// Strictness: every event is validated completely; in a batch the first
// problem is returned with the event's index and no event at all. String
// attributes must not contain control characters (U+0000-U+001F,
// U+007F-U+009F), a JSON member may not appear twice in one event, and a
// value of the wrong JSON type (an id given as a number, ...) is an error
// naming the attribute. Problems with one attribute are reported as *Error.
package cloudevents
