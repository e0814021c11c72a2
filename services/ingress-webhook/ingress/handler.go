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
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/tenant"
)

// Error codes of the JSON error body {"error":{"code","message"}}; they are
// also the outcome label of the request metrics.
const (
	codeNotFound          = "not_found"
	codeUnknownTenant     = "unknown_tenant"
	codeTenantSuspended   = "tenant_suspended"
	codeUnknownSource     = "unknown_source"
	codeSourceDisabled    = "source_disabled"
	codeUnsupportedMedia  = "unsupported_media_type"
	codeBodyTooLarge      = "body_too_large"
	codeInvalidSignature  = "invalid_signature"
	codeSignatureExpired  = "signature_expired"
	codeRateLimited       = "rate_limited"
	codeMalformedJSON     = "malformed_json"
	codeMalformedForm     = "malformed_form"
	codeInvalidEvent      = "invalid_event"
	codeEventIDConflict   = "event_id_conflict"
	codeBusUnavailable    = "bus_unavailable"
	codeReadFailed        = "read_failed"
	outcomeAccepted       = "accepted"
	outcomeDuplicate      = "duplicate"
	labelUnknown          = "_unknown"
	headerIdempotencyKey  = "Idempotency-Key"
	headerCorrelationID   = "X-Correlation-Id"
	headerRequestID       = "X-Request-Id"
	headerTraceparent     = "traceparent"
	metadataSource        = "source"
	metadataIdempotency   = "idempotency_key"
	metadataCorrelationID = "correlation_id"
	metadataDeliveryID    = "delivery_id"
	maxMetadataValue      = 256
)

// CloudEventsSource is the source whose scheme and secrets authenticate a
// tenant's CloudEvents route, POST /v1/events/{tenant}.
const CloudEventsSource = tenant.CloudEventsSource

// Accepted is the answer for one stored (or already stored) event.
type Accepted struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	// Duplicate is true when the event had already been stored (a
	// redelivery); EventID is then the original event's id.
	Duplicate bool `json:"duplicate"`
}

// AcceptedBatch is the answer to a request carrying several events
// (a SendGrid batch, a CloudEvents batch), in request order.
type AcceptedBatch struct {
	Events []Accepted `json:"events"`
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// apiError is an answer other than 2xx.
type apiError struct {
	status     int
	code, msg  string
	retryAfter time.Duration
}

func fail(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// Publisher stores an event on the bus.
type Publisher interface {
	PublishEvent(ctx context.Context, e *eventsv1.Event) (bus.Published, error)
}

// StoredEvents reads a stored event by its stream sequence.
type StoredEvents interface {
	StoredEvent(ctx context.Context, seq uint64) (*eventsv1.Event, error)
}

// Deps are what the handler works with.
type Deps struct {
	Registry  *tenant.Registry
	Publisher Publisher
	// Deliveries, when set, makes a redelivered provider delivery id within
	// the delivery window produce no second event.
	Deliveries Deliveries
	// Stored, when set, reads the original of an event the stream reports
	// as a duplicate, so an id reused by another event is refused (409).
	Stored StoredEvents
	Log    *slog.Logger
	// Metrics registers the handler's collectors; nil keeps them private.
	Metrics prometheus.Registerer
}

// Handler serves the webhook and CloudEvents routes.
type Handler struct {
	Deps
	cfg      Config
	now      func() time.Time
	mux      *http.ServeMux
	metrics  *metrics
	limiters *limiters
	keys     keyCache
}

// NewHandler returns the HTTP handler of the ingress.
func NewHandler(cfg Config, deps Deps) (*Handler, error) {
	if deps.Registry == nil || deps.Publisher == nil {
		return nil, errors.New("ingress: a registry and a publisher are required")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		Deps: deps, cfg: cfg, now: time.Now, mux: http.NewServeMux(), metrics: m,
		limiters: newLimiters(tenant.RateLimit{PerSecond: cfg.TenantRate, Burst: cfg.TenantBurst}),
	}
	h.mux.HandleFunc("POST /v1/webhooks/{tenant}/{source}", h.webhook)
	h.mux.HandleFunc("POST /v1/events/{tenant}", h.cloudEvents)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, code: codeNotFound, msg: "no route for " + r.Method + " " + r.URL.Path})
	})
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// route is what a request resolves to before its body is read.
type route struct {
	tenant tenant.Tenant
	source tenant.Source
	// cloudEvents selects the CloudEvents mapping instead of the source's.
	cloudEvents bool
}

func (h *Handler) webhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, aerr := h.resolve(r.PathValue("tenant"), r.PathValue("source"))
	if aerr != nil {
		h.answerError(w, start, r.PathValue("tenant"), labelUnknown, aerr)
		return
	}
	h.serve(w, r, start, rt)
}

func (h *Handler) cloudEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, aerr := h.resolve(r.PathValue("tenant"), CloudEventsSource)
	if aerr != nil {
		if aerr.code == codeUnknownSource {
			aerr.msg = fmt.Sprintf("tenant %q accepts no CloudEvents: it has no source named %q", r.PathValue("tenant"), CloudEventsSource)
		}
		h.answerError(w, start, r.PathValue("tenant"), labelUnknown, aerr)
		return
	}
	rt.cloudEvents = true
	h.serve(w, r, start, rt)
}

// resolve finds a tenant's source, refusing unknown, suspended and
// disabled ones.
func (h *Handler) resolve(tenantID, sourceName string) (route, *apiError) {
	t, ok := h.Registry.Tenant(tenantID)
	if !ok {
		return route{}, fail(http.StatusNotFound, codeUnknownTenant, "tenant %q does not exist", tenantID)
	}
	if t.Suspended {
		return route{}, fail(http.StatusForbidden, codeTenantSuspended, "tenant %q is suspended", tenantID)
	}
	src, ok := h.Registry.Source(tenantID, sourceName)
	if !ok {
		return route{}, fail(http.StatusNotFound, codeUnknownSource, "source %q of tenant %q does not exist", sourceName, tenantID)
	}
	if src.Disabled {
		return route{}, fail(http.StatusForbidden, codeSourceDisabled, "source %q of tenant %q is disabled", sourceName, tenantID)
	}
	return route{tenant: t, source: src}, nil
}

// serve runs the steps every intake shares: content type, body, signature,
// rate limit, mapping to events, storing them, and the answer.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, start time.Time, rt route) {
	tenantID, sourceName := rt.tenant.ID, rt.source.Name
	req := &request{r: r, src: rt.source}
	var kind bodyKind
	var aerr *apiError
	if rt.cloudEvents {
		kind, aerr = cloudEventsKind(r.Header)
	} else {
		kind, aerr = webhookKind(rt.source.Scheme, r.Header.Get("Content-Type"))
	}
	if aerr != nil {
		h.answerError(w, start, tenantID, sourceName, aerr)
		return
	}
	if req.body, aerr = h.readBody(w, r, rt.source); aerr != nil {
		h.answerError(w, start, tenantID, sourceName, aerr)
		return
	}
	// Twilio signs the form fields, so its form is parsed to verify; any
	// other body is only parsed once it is known to be authentic.
	parseFirst := kind == bodyForm && rt.source.Scheme == tenant.SchemeTwilio
	if parseFirst {
		if req.form, aerr = parseForm(req.body); aerr != nil {
			h.answerError(w, start, tenantID, sourceName, aerr)
			return
		}
	}
	if aerr = h.verify(req); aerr != nil {
		h.answerError(w, start, tenantID, sourceName, aerr)
		return
	}
	if kind == bodyForm && !parseFirst {
		if req.form, aerr = parseForm(req.body); aerr != nil {
			h.answerError(w, start, tenantID, sourceName, aerr)
			return
		}
	}
	// Only authenticated requests count against the tenant's rate, so
	// forged traffic cannot use up a tenant's budget.
	if ok, wait := h.limiters.allow(rt.tenant, h.now()); !ok {
		aerr = fail(http.StatusTooManyRequests, codeRateLimited, "tenant %q is over its rate limit; retry later", tenantID)
		aerr.retryAfter = wait
		h.answerError(w, start, tenantID, sourceName, aerr)
		return
	}
	var items []incoming
	var batch bool
	if rt.cloudEvents {
		items, batch, aerr = h.extractCloudEvents(req)
	} else {
		items, batch, aerr = h.extract(req, kind)
	}
	if aerr != nil {
		h.answerError(w, start, tenantID, sourceName, aerr)
		return
	}
	if len(items) > h.cfg.MaxEventsPerRequest {
		h.answerError(w, start, tenantID, sourceName, fail(http.StatusRequestEntityTooLarge, codeBodyTooLarge,
			"%d events in one request; at most %d are accepted", len(items), h.cfg.MaxEventsPerRequest))
		return
	}
	// Every event of a batch is checked before any is stored, so a bad one
	// refuses the request without storing part of it.
	for i := range items {
		if err := bus.ValidateEventType(items[i].ev.EventType); err != nil {
			msg := err.Error()
			if batch {
				msg = "event " + strconv.Itoa(i) + ": " + msg
			}
			h.answerError(w, start, tenantID, sourceName, fail(http.StatusBadRequest, codeInvalidEvent, "%s", msg))
			return
		}
	}
	out := make([]Accepted, 0, len(items))
	for i := range items {
		h.addMetadata(items[i].ev, r, rt.source.Name)
		a, aerr := h.store(r.Context(), rt, &items[i])
		if aerr != nil {
			h.answerError(w, start, tenantID, sourceName, aerr)
			return
		}
		out = append(out, a)
	}
	outcome := outcomeDuplicate
	for _, a := range out {
		if !a.Duplicate {
			outcome = outcomeAccepted
		}
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(appendAccepted(make([]byte, 0, 128), out, batch))
	h.metrics.observe(tenantID, sourceName, outcome, start)
}

// jsonContentType is shared by every answer; net/http only reads it.
var jsonContentType = []string{"application/json"}

// appendAccepted writes the 202 body: the same JSON encoding/json would
// write for Accepted or AcceptedBatch, without reflection on the hot path.
func appendAccepted(b []byte, out []Accepted, batch bool) []byte {
	one := func(b []byte, a Accepted) []byte {
		b = append(b, `{"event_id":`...)
		b = appendJSONString(b, a.EventID)
		b = append(b, `,"event_type":`...)
		b = appendJSONString(b, a.EventType)
		b = append(b, `,"duplicate":`...)
		b = strconv.AppendBool(b, a.Duplicate)
		return append(b, '}')
	}
	if !batch {
		return append(one(b, out[0]), '\n')
	}
	b = append(b, `{"events":[`...)
	for i, a := range out {
		if i > 0 {
			b = append(b, ',')
		}
		b = one(b, a)
	}
	return append(b, "]}\n"...)
}

// appendJSONString quotes s as a JSON string. Ids and types are printable
// ASCII; anything else is escaped as encoding/json would.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// readBody reads the body within the source's and the service's limits.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, src tenant.Source) ([]byte, *apiError) {
	limit := min(src.BodyLimit(), h.cfg.MaxBodyBytes)
	if r.ContentLength > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, codeBodyTooLarge, "body exceeds %d bytes", limit)
	}
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1 // +1 so ReadAll sees EOF without growing
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), size)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fail(http.StatusRequestEntityTooLarge, codeBodyTooLarge, "body exceeds %d bytes", limit)
		}
		return nil, fail(http.StatusBadRequest, codeReadFailed, "could not read the request body")
	}
	return body, nil
}

// readAll is io.ReadAll starting from a buffer of the announced size.
func readAll(r io.Reader, size int) ([]byte, error) {
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// addMetadata adds what every event of a request carries, keeping what the
// mapping already set.
func (h *Handler) addMetadata(ev *eventsv1.Event, r *http.Request, source string) {
	if ev.Metadata == nil {
		ev.Metadata = make(map[string]string, 4)
	}
	set := func(k, v string) {
		if _, ok := ev.Metadata[k]; !ok && v != "" {
			ev.Metadata[k] = truncate(v, maxMetadataValue)
		}
	}
	set(metadataSource, source)
	set(metadataIdempotency, r.Header.Get(headerIdempotencyKey))
	if v := r.Header.Get(headerCorrelationID); v != "" {
		set(metadataCorrelationID, v)
	} else {
		set(metadataCorrelationID, r.Header.Get(headerRequestID))
	}
}

// store publishes one event unless its delivery was already stored, and
// answers 2xx only once JetStream has it.
func (h *Handler) store(ctx context.Context, rt route, it *incoming) (Accepted, *apiError) {
	ev := it.ev
	ev.Tenant = rt.tenant.ID
	if ev.Timestamp == 0 {
		ev.Timestamp = h.now().UnixMilli()
	}
	if !event.ValidTraceparent(ev.Traceparent) {
		ev.Traceparent = event.NewTraceparent()
	}
	var key string
	if it.deliveryID != "" {
		if ev.Id == "" { // a provider's delivery: its id makes the event id
			if _, set := ev.Metadata[metadataDeliveryID]; !set {
				ev.Metadata[metadataDeliveryID] = truncate(it.deliveryID, maxMetadataValue)
			}
			ev.Id = eventIDFor(rt.source.Name, it.deliveryID)
		}
		if h.Deliveries != nil {
			key = deliveryKey(rt.tenant.ID, rt.source.Name, it.deliveryID)
			lctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
			id, found, err := h.Deliveries.Lookup(lctx, key)
			cancel()
			if err != nil {
				h.Log.Warn("delivery lookup failed", "tenant", rt.tenant.ID, "source", rt.source.Name, "err", err)
				return Accepted{}, h.unavailable()
			}
			if found {
				h.metrics.event(rt.tenant.ID, rt.source.Name, outcomeDuplicate)
				return Accepted{EventID: id, EventType: ev.EventType, Duplicate: true}, nil
			}
		}
	}
	if ev.Id == "" {
		ev.Id = event.NewID()
	}
	pctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	pub, err := h.Publisher.PublishEvent(pctx, ev)
	if err != nil {
		var tokErr *bus.TokenError
		if errors.As(err, &tokErr) {
			return Accepted{}, fail(http.StatusBadRequest, codeInvalidEvent, "%v", tokErr)
		}
		if event.ValidateID(ev.Id) != nil {
			return Accepted{}, fail(http.StatusBadRequest, codeInvalidEvent, "%v", event.ValidateID(ev.Id))
		}
		h.Log.Warn("event not stored", "tenant", rt.tenant.ID, "source", rt.source.Name, "event_id", ev.Id, "err", err)
		return Accepted{}, h.unavailable()
	}
	if pub.Duplicate && h.Stored != nil {
		if aerr := h.checkSameEvent(pctx, rt, ev, pub); aerr != nil {
			return Accepted{}, aerr
		}
	}
	if key != "" {
		// The event is stored: failing to remember the delivery only
		// narrows de-duplication to the stream's own window.
		if err := h.Deliveries.Record(pctx, key, ev.Id); err != nil {
			h.metrics.recordFailures.Inc()
			h.Log.Warn("delivery not recorded", "tenant", rt.tenant.ID, "source", rt.source.Name, "event_id", ev.Id, "err", err)
		}
	}
	outcome := outcomeAccepted
	if pub.Duplicate {
		outcome = outcomeDuplicate
	}
	h.metrics.event(rt.tenant.ID, rt.source.Name, outcome)
	return Accepted{EventID: ev.Id, EventType: ev.EventType, Duplicate: pub.Duplicate}, nil
}

// checkSameEvent makes sure a publish the stream called a duplicate is a
// redelivery of the same event, not another event reusing its id (two
// CloudEvents producers with the same id): that one would otherwise be
// acknowledged and silently dropped.
func (h *Handler) checkSameEvent(ctx context.Context, rt route, ev *eventsv1.Event, pub bus.Published) *apiError {
	orig, err := h.Stored.StoredEvent(ctx, pub.Sequence)
	if err != nil {
		// Already gone (max age) or unreadable: the id was used; keep the
		// duplicate answer rather than storing twice.
		h.Log.Warn("could not read the original of a duplicate", "tenant", rt.tenant.ID, "event_id", ev.Id, "seq", pub.Sequence, "err", err)
		return nil
	}
	if orig.Source != ev.Source || orig.EventType != ev.EventType {
		return fail(http.StatusConflict, codeEventIDConflict,
			"event id %q of tenant %q is already used by another event (source %q, type %q); event ids must be unique per tenant",
			ev.Id, rt.tenant.ID, orig.Source, orig.EventType)
	}
	return nil
}

func (h *Handler) unavailable() *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: codeBusUnavailable,
		msg: "the event could not be stored; retry later", retryAfter: h.cfg.RetryAfter}
}

// answerError writes an error and counts it; tenant and source label only
// known ones, so unknown names cannot grow the metrics without bound.
func (h *Handler) answerError(w http.ResponseWriter, start time.Time, tenantID, source string, e *apiError) {
	if _, known := h.Registry.Tenant(tenantID); !known {
		tenantID = labelUnknown
	}
	writeError(w, e)
	h.metrics.observe(tenantID, source, e.code, start)
}

func writeError(w http.ResponseWriter, e *apiError) {
	var b errorBody
	b.Error.Code, b.Error.Message = e.code, e.msg
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(b)
}

func truncate(s string, n int) string {
	// Headers and fields may hold bytes that are not UTF-8, and a cut may
	// fall inside a character: protobuf refuses invalid UTF-8 in a string,
	// so the event could never be stored and every retry would fail.
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// mediaType is the lower-case media type of a Content-Type, "" when absent
// or unparsable.
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	// Fast path for the common exact values.
	switch ct {
	case "application/json", "application/x-www-form-urlencoded":
		return ct
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

func isJSONType(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

type metrics struct {
	// hot caches the counters of accepted requests per tenant and source,
	// so the common answer costs no label hashing.
	hotMu          sync.RWMutex
	hot            map[string]map[string]*hotCounters // tenant -> source
	requests       *prometheus.CounterVec
	events         *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	recordFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_ingress_requests_total",
			Help: "Intake requests by tenant, source and outcome (accepted, duplicate or the error code).",
		}, []string{"tenant", "source", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_ingress_events_total",
			Help: "Events of accepted requests by tenant, source and outcome (accepted or duplicate).",
		}, []string{"tenant", "source", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greentic_ingress_request_seconds",
			Help:    "Time to answer an intake request, by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
		recordFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greentic_ingress_delivery_record_failures_total",
			Help: "Stored events whose delivery id could not be remembered; de-duplication then falls back to the stream's duplicate window.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = bus.Register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.events, err = bus.Register(reg, m.events); err != nil {
		return nil, err
	}
	if m.latency, err = bus.Register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.recordFailures, err = bus.Register(reg, m.recordFailures); err != nil {
		return nil, err
	}
	return m, nil
}

type hotCounters struct {
	requests, events prometheus.Counter
	latency          prometheus.Observer
}

func (m *metrics) hotFor(tenantID, source string) *hotCounters {
	m.hotMu.RLock()
	c := m.hot[tenantID][source]
	m.hotMu.RUnlock()
	if c != nil {
		return c
	}
	c = &hotCounters{
		requests: m.requests.WithLabelValues(tenantID, source, outcomeAccepted),
		events:   m.events.WithLabelValues(tenantID, source, outcomeAccepted),
		latency:  m.latency.WithLabelValues(outcomeAccepted),
	}
	m.hotMu.Lock()
	defer m.hotMu.Unlock()
	if m.hot == nil {
		m.hot = map[string]map[string]*hotCounters{}
	}
	if m.hot[tenantID] == nil {
		m.hot[tenantID] = map[string]*hotCounters{}
	}
	m.hot[tenantID][source] = c
	return c
}

func (m *metrics) observe(tenantID, source, outcome string, start time.Time) {
	if outcome == outcomeAccepted {
		c := m.hotFor(tenantID, source)
		c.requests.Inc()
		c.latency.Observe(time.Since(start).Seconds())
		return
	}
	m.requests.WithLabelValues(tenantID, source, outcome).Inc()
	m.latency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}

func (m *metrics) event(tenantID, source, outcome string) {
	if outcome == outcomeAccepted {
		m.hotFor(tenantID, source).events.Inc()
		return
	}
	m.events.WithLabelValues(tenantID, source, outcome).Inc()
}
