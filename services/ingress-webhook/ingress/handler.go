package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
)

// Error codes of the JSON error body {"error":{"code","message"}}.
const (
	codeUnknownTenant     = "unknown_tenant"
	codeTenantSuspended   = "tenant_suspended"
	codeUnknownSource     = "unknown_source"
	codeSourceDisabled    = "source_disabled"
	codeUnsupportedMedia  = "unsupported_media_type"
	codeBodyTooLarge      = "body_too_large"
	codeInvalidSignature  = "invalid_signature"
	codeMalformedJSON     = "malformed_json"
	codeInvalidEvent      = "invalid_event"
	codeBusUnavailable    = "bus_unavailable"
	codeReadFailed        = "read_failed"
	outcomeAccepted       = "accepted"
	outcomeDuplicate      = "duplicate"
	labelUnknown          = "_unknown"
	headerIdempotencyKey  = "Idempotency-Key"
	headerCorrelationID   = "X-Correlation-Id"
	headerRequestID       = "X-Request-Id"
	metadataSource        = "source"
	metadataIdempotency   = "idempotency_key"
	metadataCorrelationID = "correlation_id"
)

// Accepted is the body of a 202 answer.
type Accepted struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	// Duplicate is true when the event had already been stored (a redelivery).
	Duplicate bool `json:"duplicate"`
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Publisher stores an event on the bus.
type Publisher interface {
	PublishEvent(ctx context.Context, e *eventsv1.Event) (bus.Published, error)
}

// Handler serves the webhook routes.
type Handler struct {
	reg     *tenant.Registry
	pub     Publisher
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	metrics *metrics
}

// NewHandler returns the HTTP handler of the ingress.
func NewHandler(cfg Config, reg *tenant.Registry, pub Publisher, log *slog.Logger, registerer prometheus.Registerer) (*Handler, error) {
	m, err := newMetrics(registerer)
	if err != nil {
		return nil, err
	}
	h := &Handler{reg: reg, pub: pub, cfg: cfg, log: log, now: time.Now, mux: http.NewServeMux(), metrics: m}
	h.mux.HandleFunc("POST /v1/webhooks/{tenant}/{source}", h.webhook)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no route for "+r.Method+" "+r.URL.Path)
	})
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// reject answers an error and counts it; tenant and source label only known ones.
func (h *Handler) reject(w http.ResponseWriter, start time.Time, tenantLabel, sourceLabel string, status int, code, msg string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(h.cfg.RetryAfter/time.Second)))
	}
	writeError(w, status, code, msg)
	h.metrics.observe(tenantLabel, sourceLabel, code, start)
}

func (h *Handler) webhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	tenantID, sourceName := r.PathValue("tenant"), r.PathValue("source")
	t, ok := h.reg.Tenant(tenantID)
	if !ok {
		h.reject(w, start, labelUnknown, labelUnknown, http.StatusNotFound, codeUnknownTenant, fmt.Sprintf("tenant %q does not exist", tenantID))
		return
	}
	if t.Suspended {
		h.reject(w, start, tenantID, labelUnknown, http.StatusForbidden, codeTenantSuspended, fmt.Sprintf("tenant %q is suspended", tenantID))
		return
	}
	src, ok := h.reg.Source(tenantID, sourceName)
	if !ok {
		h.reject(w, start, tenantID, labelUnknown, http.StatusNotFound, codeUnknownSource, fmt.Sprintf("source %q of tenant %q does not exist", sourceName, tenantID))
		return
	}
	if src.Disabled {
		h.reject(w, start, tenantID, sourceName, http.StatusForbidden, codeSourceDisabled, fmt.Sprintf("source %q is disabled", sourceName))
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		h.reject(w, start, tenantID, sourceName, http.StatusUnsupportedMediaType, codeUnsupportedMedia, "Content-Type must be application/json")
		return
	}
	limit := min(src.BodyLimit(), h.cfg.MaxBodyBytes)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.reject(w, start, tenantID, sourceName, http.StatusRequestEntityTooLarge, codeBodyTooLarge, fmt.Sprintf("body exceeds %d bytes", limit))
			return
		}
		h.reject(w, start, tenantID, sourceName, http.StatusBadRequest, codeReadFailed, "could not read the request body")
		return
	}
	if err := verify(src, r, body); err != nil {
		h.reject(w, start, tenantID, sourceName, http.StatusUnauthorized, codeInvalidSignature, err.Error())
		return
	}
	ev, code, err := h.normalize(src, r, body)
	if err != nil {
		h.reject(w, start, tenantID, sourceName, http.StatusBadRequest, code, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.PublishTimeout)
	defer cancel()
	pub, err := h.pub.PublishEvent(ctx, ev)
	if err != nil {
		var tokErr *bus.TokenError
		if errors.As(err, &tokErr) {
			h.reject(w, start, tenantID, sourceName, http.StatusBadRequest, codeInvalidEvent, tokErr.Error())
			return
		}
		h.log.Warn("event not stored", "tenant", tenantID, "source", sourceName, "event_id", ev.Id, "err", err)
		h.reject(w, start, tenantID, sourceName, http.StatusServiceUnavailable, codeBusUnavailable, "the event could not be stored; retry later")
		return
	}
	outcome := outcomeAccepted
	if pub.Duplicate {
		outcome = outcomeDuplicate
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(Accepted{EventID: ev.Id, EventType: ev.EventType, Duplicate: pub.Duplicate})
	h.metrics.observe(tenantID, sourceName, outcome, start)
}

func verify(src tenant.Source, r *http.Request, body []byte) error {
	switch src.Scheme {
	case tenant.SchemeHMACSHA256:
		err := signature.VerifyHMACSHA256(body, r.Header.Get(src.Signature.Header), src.Signature.Prefix, src.Signature.Encoding, src.Secrets)
		switch {
		case errors.Is(err, signature.ErrMissing):
			return fmt.Errorf("header %s is missing", src.Signature.Header)
		case errors.Is(err, signature.ErrMalformed):
			return fmt.Errorf("header %s is malformed (expected %s<%s digest>)", src.Signature.Header, src.Signature.Prefix, encodingName(src.Signature.Encoding))
		case err != nil:
			return fmt.Errorf("header %s does not match the body", src.Signature.Header)
		}
		return nil
	case tenant.SchemeNone:
		return nil
	default:
		return fmt.Errorf("source scheme %q cannot be verified", src.Scheme)
	}
}

func encodingName(e string) string {
	if e == "" {
		return signature.EncodingHex
	}
	return e
}

// normalize builds the Event of a verified request. The payload is the body
// exactly as received.
func (h *Handler) normalize(src tenant.Source, r *http.Request, body []byte) (*eventsv1.Event, string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, codeMalformedJSON, fmt.Errorf("body is not valid JSON: %v at offset %d", syn, syn.Offset)
		case errors.As(err, &typ):
			return nil, codeMalformedJSON, errors.New("body must be a JSON object")
		default:
			return nil, codeMalformedJSON, fmt.Errorf("body is not valid JSON: %v", err)
		}
	}
	eventType, err := valueFrom(src.EventType, "event_type", fields, r)
	if err != nil {
		return nil, codeInvalidEvent, err
	}
	if eventType == "" {
		return nil, codeInvalidEvent, errors.New(describe(src.EventType, "event type") + " is missing")
	}
	if err := bus.ValidateEventType(eventType); err != nil {
		return nil, codeInvalidEvent, err
	}
	id, err := valueFrom(src.EventID, "event_id", fields, r)
	if err != nil {
		return nil, codeInvalidEvent, err
	}
	if id == "" {
		id = event.NewID()
	} else if err := event.ValidateID(id); err != nil {
		return nil, codeInvalidEvent, err
	}
	md := map[string]string{metadataSource: src.Name}
	if v := r.Header.Get(headerIdempotencyKey); v != "" {
		md[metadataIdempotency] = truncate(v, 256)
	}
	for _, hn := range []string{headerCorrelationID, headerRequestID} {
		if v := r.Header.Get(hn); v != "" {
			md[metadataCorrelationID] = truncate(v, 256)
			break
		}
	}
	ev := &eventsv1.Event{
		Id:          id,
		EventType:   eventType,
		Source:      "webhook/" + src.Name,
		Timestamp:   h.now().UnixMilli(),
		Payload:     body,
		Metadata:    md,
		Tenant:      src.Tenant,
		Traceparent: r.Header.Get("traceparent"),
	}
	return ev, "", nil
}

// valueFrom extracts a configured value: a top-level string (or number)
// field of the body, a header, or a fixed value.
func valueFrom(v tenant.ValueFrom, name string, fields map[string]json.RawMessage, r *http.Request) (string, error) {
	switch {
	case v.Value != "":
		return v.Value, nil
	case v.Header != "":
		return r.Header.Get(v.Header), nil
	case v.Field != "":
		raw, ok := fields[v.Field]
		if !ok || string(raw) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s, nil
		}
		var n json.Number
		if err := json.Unmarshal(raw, &n); err == nil {
			return n.String(), nil
		}
		return "", fmt.Errorf("field %q (%s) must be a string", v.Field, name)
	}
	return "", nil
}

func describe(v tenant.ValueFrom, what string) string {
	switch {
	case v.Field != "":
		return fmt.Sprintf("%s (JSON field %q)", what, v.Field)
	case v.Header != "":
		return fmt.Sprintf("%s (header %s)", what, v.Header)
	}
	return what
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (len(mt) > 5 && mt[len(mt)-5:] == "+json")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_ingress_requests_total",
			Help: "Webhook requests by tenant, source and outcome (accepted, duplicate or the error code).",
		}, []string{"tenant", "source", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greentic_ingress_request_seconds",
			Help:    "Time to answer a webhook request, by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = bus.Register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.latency, err = bus.Register(reg, m.latency); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) observe(tenantID, source, outcome string, start time.Time) {
	m.requests.WithLabelValues(tenantID, source, outcome).Inc()
	m.latency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}
