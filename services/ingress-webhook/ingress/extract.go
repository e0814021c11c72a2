package ingress

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/jsonscan"
	"github.com/greentic/events/pkg/tenant"
)

// Provider headers that carry the event type or the delivery id.
const (
	headerGitHubEvent    = "X-GitHub-Event"
	headerGitHubDelivery = "X-GitHub-Delivery"
	headerTwilioIdem     = "I-Twilio-Idempotency-Token"
	mediaForm            = "application/x-www-form-urlencoded"
	maxFormFields        = 1000
)

type bodyKind int

const (
	bodyJSON bodyKind = iota
	bodyForm
)

// incoming is one event of a request before it is stored.
type incoming struct {
	ev *eventsv1.Event
	// deliveryID is the provider's id of this delivery: the same on every
	// redelivery. Empty when the source has none (each request is new).
	deliveryID string
}

// webhookKind checks the Content-Type a scheme accepts.
func webhookKind(scheme, contentType string) (bodyKind, *apiError) {
	mt := mediaType(contentType)
	switch {
	case isJSONType(mt):
		return bodyJSON, nil
	case mt == mediaForm && (scheme == tenant.SchemeTwilio || scheme == tenant.SchemeGitHub):
		return bodyForm, nil
	case scheme == tenant.SchemeTwilio || scheme == tenant.SchemeGitHub:
		return 0, fail(http.StatusUnsupportedMediaType, codeUnsupportedMedia, "Content-Type must be application/json or %s, got %q", mediaForm, contentType)
	}
	return 0, fail(http.StatusUnsupportedMediaType, codeUnsupportedMedia, "Content-Type must be application/json, got %q", contentType)
}

// parseForm parses a form body; a field repeated keeps all its values.
func parseForm(body []byte) (url.Values, *apiError) {
	if n := bytes.Count(body, []byte("&")) + 1; n > maxFormFields {
		return nil, fail(http.StatusBadRequest, codeMalformedForm, "form has %d fields; at most %d are accepted", n, maxFormFields)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fail(http.StatusBadRequest, codeMalformedForm, "body is not a valid form: %v", err)
	}
	return v, nil
}

// formJSON turns form values into a JSON object: one value is a string, a
// repeated field an array of strings.
func formJSON(v url.Values) []byte {
	m := make(map[string]any, len(v))
	for k, vs := range v {
		if len(vs) == 1 {
			m[k] = vs[0]
		} else {
			m[k] = vs
		}
	}
	b, _ := json.Marshal(m) // strings only: cannot fail
	return b
}

// fields collects the top-level JSON keys a request needs, to scan the body
// once. Most requests want at most four, which fit without another
// allocation.
type fields struct {
	arr  [4]jsonscan.Field
	list []jsonscan.Field
}

func (f *fields) want(key string) {
	if key == "" {
		return
	}
	if f.list == nil {
		f.list = f.arr[:0]
	}
	for _, x := range f.list {
		if x.Key == key {
			return
		}
	}
	f.list = append(f.list, jsonscan.Field{Key: key})
}

// text returns a wanted key's string (or number) value.
func (f *fields) text(key string) (s string, found, isText bool) {
	for _, x := range f.list {
		if x.Key == key && x.Found {
			s, ok := jsonscan.Text(x.Raw)
			return s, string(x.Raw) != "null", ok
		}
	}
	return "", false, false
}

// scanObject checks that body is a JSON object and fills the wanted keys.
func scanObject(body []byte, f *fields, what string) *apiError {
	err := jsonscan.Scan(body, f.list)
	var syn *jsonscan.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syn):
		return fail(http.StatusBadRequest, codeMalformedJSON, "%s is not valid JSON: %v at offset %d", what, syn, syn.Offset)
	case errors.Is(err, jsonscan.ErrNotObject):
		return fail(http.StatusBadRequest, codeMalformedJSON, "%s must be a JSON object", what)
	}
	return fail(http.StatusBadRequest, codeMalformedJSON, "%s is not valid JSON: %v", what, err)
}

// lookup reads the values of one event: from JSON fields, a form, or headers.
type lookup struct {
	r      *http.Request
	fields *fields
	form   url.Values
	body   []byte // what the provider signed
}

func (l lookup) field(key string) (string, *apiError) {
	if l.form != nil {
		return l.form.Get(key), nil
	}
	s, found, ok := l.fields.text(key)
	if found && !ok {
		return "", fail(http.StatusBadRequest, codeInvalidEvent, "field %q must be a string or a number", key)
	}
	return s, nil
}

// value resolves a configured ValueFrom; configured is false when it is unset.
func (l lookup) value(v tenant.ValueFrom) (s string, configured bool, aerr *apiError) {
	switch {
	case v.Value != "":
		return v.Value, true, nil
	case v.Header != "":
		return l.r.Header.Get(v.Header), true, nil
	case v.Field != "":
		s, aerr = l.field(v.Field)
		return s, true, aerr
	}
	return "", false, nil
}

func wantConfigured(f *fields, src tenant.Source) {
	f.want(src.EventType.Field)
	f.want(src.EventID.Field)
}

// extract maps a verified webhook to its events by the source's
// configuration, falling back to the provider's convention.
func (h *Handler) extract(req *request, kind bodyKind) ([]incoming, bool, *apiError) {
	src := req.src
	if src.Scheme == tenant.SchemeSendGrid {
		items, aerr := extractSendGrid(req)
		return items, true, aerr
	}
	payload := req.body
	l := lookup{r: req.r, fields: &fields{}, body: req.body}
	switch {
	case kind == bodyForm && src.Scheme == tenant.SchemeTwilio:
		l.form = req.form
		payload = formJSON(req.form)
	case kind == bodyForm: // GitHub's form content type: the JSON is in "payload".
		if !req.form.Has("payload") {
			return nil, false, fail(http.StatusBadRequest, codeMalformedForm, "form has no payload field")
		}
		payload = []byte(req.form.Get("payload"))
	}
	if l.form == nil {
		wantConfigured(l.fields, src)
		switch src.Scheme {
		case tenant.SchemeGitHub:
			l.fields.want("action")
		case tenant.SchemeStripe:
			l.fields.want("type")
			l.fields.want("id")
		case tenant.SchemeStandardWebhooks:
			l.fields.want("type")
		case tenant.SchemeTwilio:
			for _, k := range twilioFields {
				l.fields.want(k)
			}
		}
		what := "body"
		if kind == bodyForm {
			what = "form field payload"
		}
		if aerr := scanObject(payload, l.fields, what); aerr != nil {
			return nil, false, aerr
		}
	}
	eventType, deliveryID, aerr := conventional(src, l)
	if aerr != nil {
		return nil, false, aerr
	}
	if t, configured, aerr := l.value(src.EventType); aerr != nil {
		return nil, false, aerr
	} else if configured {
		eventType = t
		if t == "" {
			return nil, false, fail(http.StatusBadRequest, codeInvalidEvent, "%s is missing", describe(src.EventType, "event type"))
		}
	}
	if id, configured, aerr := l.value(src.EventID); aerr != nil {
		return nil, false, aerr
	} else if configured {
		deliveryID = id
	}
	ev := &eventsv1.Event{
		EventType:   eventType,
		Source:      "webhook/" + src.Name,
		Timestamp:   h.now().UnixMilli(),
		Payload:     payload,
		Traceparent: req.r.Header.Get(headerTraceparent),
	}
	if gh := req.r.Header.Get(headerGitHubDelivery); src.Scheme == tenant.SchemeGitHub && gh != "" && src.EventID.IsZero() {
		ev.Metadata = map[string]string{metadataDeliveryID: truncate(gh, maxMetadataValue)}
	}
	if src.Scheme == tenant.SchemeTwilio {
		twilioCorrelation(ev, l)
	}
	return []incoming{{ev: ev, deliveryID: deliveryID}}, false, nil
}

// conventional is the event type and delivery id by the provider's own
// convention; for schemes without one both are empty.
func conventional(src tenant.Source, l lookup) (eventType, deliveryID string, aerr *apiError) {
	configuredType := !src.EventType.IsZero()
	switch src.Scheme {
	case tenant.SchemeGitHub:
		name := l.r.Header.Get(headerGitHubEvent)
		if name == "" && !configuredType {
			return "", "", fail(http.StatusBadRequest, codeInvalidEvent, "header %s is missing", headerGitHubEvent)
		}
		eventType = "github." + name
		if action, _ := l.field("action"); action != "" {
			eventType += "." + action
		}
		// GitHub signs the body only: X-GitHub-Delivery could be changed on
		// a replayed request. The delivery is identified by what is signed;
		// X-GitHub-Delivery is kept in metadata.
		return eventType, bodyDigest(l.body), nil
	case tenant.SchemeStripe:
		t, aerr := l.field("type")
		if aerr != nil {
			return "", "", aerr
		}
		if t == "" && !configuredType {
			return "", "", fail(http.StatusBadRequest, codeInvalidEvent, "field \"type\" of the Stripe event is missing")
		}
		id, aerr := l.field("id")
		return "stripe." + t, id, aerr
	case tenant.SchemeStandardWebhooks:
		t, aerr := l.field("type")
		if aerr != nil {
			return "", "", aerr
		}
		if t == "" && !configuredType {
			return "", "", fail(http.StatusBadRequest, codeInvalidEvent, "field \"type\" is missing (the Standard Webhooks payload convention); or configure event_type")
		}
		return t, l.r.Header.Get(headerSWID), nil
	case tenant.SchemeTwilio:
		return twilioConvention(l)
	}
	return "", "", nil
}

var twilioFields = []string{"MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "CallSid", "CallStatus"}

// twilioConvention: a message status callback is sms.{status} (an inbound
// message is sms.received), a call status callback call.{status}. The
// delivery id is Twilio's idempotency token, or the sid and status, which
// identify one callback.
func twilioConvention(l lookup) (string, string, *apiError) {
	get := func(keys ...string) string {
		for _, k := range keys {
			if v, _ := l.field(k); v != "" {
				return v
			}
		}
		return ""
	}
	var eventType, sid, status string
	if status = get("MessageStatus", "SmsStatus"); status != "" {
		eventType, sid = "sms."+strings.ToLower(status), get("MessageSid", "SmsSid")
	} else if status = get("CallStatus"); status != "" {
		eventType, sid = "call."+strings.ToLower(status), get("CallSid")
	} else {
		eventType, sid = "twilio.webhook", get("MessageSid", "SmsSid", "CallSid")
	}
	// The sid and status are signed; Twilio's idempotency token is not (a
	// replay could change it), so it only serves when there is no sid.
	id := sid + "." + status
	if sid == "" {
		id = l.r.Header.Get(headerTwilioIdem)
	}
	return eventType, id, nil
}

// twilioCorrelation puts the command id and the message SID of a Twilio
// callback into the event's metadata. The SMS sender adds the command id to
// the status callback URL; Twilio signs the full URL, query included, so the
// id is as authentic as the body.
func twilioCorrelation(ev *eventsv1.Event, l lookup) {
	setMetadata(ev, event.MetaCommandID, l.r.URL.Query().Get(event.TwilioCallbackCommandID))
	for _, k := range []string{"MessageSid", "SmsSid"} {
		if sid, _ := l.field(k); sid != "" {
			setMetadata(ev, event.MetaProviderMessageID, sid)
			return
		}
	}
}

// sendGridCorrelation puts the custom args the email sender sets on every
// message (the command and event ids, which SendGrid returns as top-level
// fields of each event) and the message id into the event's metadata. The
// sg_message_id is "{X-Message-Id}.{filter...}": the part before the first
// '.' is the X-Message-Id the sender recorded. A value that is no string or
// number is left out rather than refusing the batch.
func sendGridCorrelation(ev *eventsv1.Event, l lookup) {
	get := func(key string) string {
		v, aerr := l.field(key)
		if aerr != nil {
			return ""
		}
		return v
	}
	setMetadata(ev, event.MetaCommandID, get(event.SendGridArgCommandID))
	setMetadata(ev, event.MetaOriginEventID, get(event.SendGridArgEventID))
	msgID, _, _ := strings.Cut(get("sg_message_id"), ".")
	setMetadata(ev, event.MetaProviderMessageID, msgID)
}

// setMetadata sets a metadata key a mapping derives from the request,
// unless the value is empty; the value is bounded like all metadata.
func setMetadata(ev *eventsv1.Event, key, value string) {
	value = metadataValue(value)
	if value == "" {
		return
	}
	if ev.Metadata == nil {
		ev.Metadata = make(map[string]string, 8)
	}
	ev.Metadata[key] = value
}

// metadataValue is v as valid UTF-8 (protobuf strings must be), cut to at
// most maxMetadataValue bytes without splitting a character.
func metadataValue(v string) string { return truncate(v, maxMetadataValue) }

// sendGridTypes maps SendGrid event names to event types; others become
// email.{event}.
var sendGridTypes = map[string]string{
	"bounce":            "email.bounced",
	"open":              "email.opened",
	"click":             "email.clicked",
	"spamreport":        "email.spam_reported",
	"unsubscribe":       "email.unsubscribed",
	"group_unsubscribe": "email.group_unsubscribed",
	"group_resubscribe": "email.group_resubscribed",
}

// extractSendGrid maps a SendGrid Event Webhook batch (a JSON array): each
// element becomes one event, its sg_event_id the delivery id.
func extractSendGrid(req *request) ([]incoming, *apiError) {
	var elems []json.RawMessage
	if err := json.Unmarshal(req.body, &elems); err != nil {
		return nil, fail(http.StatusBadRequest, codeMalformedJSON, "body must be a JSON array of SendGrid events: %v", err)
	}
	if len(elems) == 0 {
		return nil, fail(http.StatusBadRequest, codeInvalidEvent, "the SendGrid batch is empty")
	}
	src := req.src
	out := make([]incoming, 0, len(elems))
	for i, raw := range elems {
		l := lookup{r: req.r, fields: &fields{}}
		wantConfigured(l.fields, src)
		l.fields.want("event")
		l.fields.want("sg_event_id")
		l.fields.want("sg_message_id")
		l.fields.want(event.SendGridArgCommandID)
		l.fields.want(event.SendGridArgEventID)
		if aerr := scanObject(raw, l.fields, "event "+strconv.Itoa(i)); aerr != nil {
			return nil, aerr
		}
		name, aerr := l.field("event")
		if aerr != nil {
			return nil, prefixed(i, aerr)
		}
		eventType := sendGridTypes[name]
		if eventType == "" && name != "" {
			eventType = "email." + name
		}
		id, aerr := l.field("sg_event_id")
		if aerr != nil {
			return nil, prefixed(i, aerr)
		}
		if t, configured, aerr := l.value(src.EventType); aerr != nil {
			return nil, prefixed(i, aerr)
		} else if configured {
			eventType = t
		}
		if v, configured, aerr := l.value(src.EventID); aerr != nil {
			return nil, prefixed(i, aerr)
		} else if configured {
			id = v
		}
		if eventType == "" {
			return nil, fail(http.StatusBadRequest, codeInvalidEvent, "event %d: field \"event\" is missing", i)
		}
		ev := &eventsv1.Event{
			EventType:   eventType,
			Source:      "webhook/" + src.Name,
			Payload:     raw,
			Traceparent: req.r.Header.Get(headerTraceparent),
		}
		sendGridCorrelation(ev, l)
		out = append(out, incoming{ev: ev, deliveryID: id})
	}
	return out, nil
}

// bodyDigest identifies a delivery by its signed body.
func bodyDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256-" + hex.EncodeToString(sum[:16])
}

func prefixed(i int, e *apiError) *apiError {
	e.msg = "event " + strconv.Itoa(i) + ": " + e.msg
	return e
}

func describe(v tenant.ValueFrom, what string) string {
	switch {
	case v.Field != "":
		return what + " (JSON field " + strconv.Quote(v.Field) + ")"
	case v.Header != "":
		return what + " (header " + v.Header + ")"
	}
	return what
}
