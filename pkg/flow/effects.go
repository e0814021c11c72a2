package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Effects carries out the side effects of a run: the flow-executor
// publishes them to the bus, a dry run records them. Every command's id
// (and a published event's id) is {event id}:{flow}:{node}, so when the
// id becomes the message's Nats-Msg-Id a retried run sends nothing twice.
// An error returned by Effects is transient: the node's retry applies, and
// a run failing with it sets Result.Transient.
type Effects interface {
	Email(ctx context.Context, cmd *eventsv1.EmailCommand) error
	SMS(ctx context.Context, cmd *eventsv1.SmsCommand) error
	Webhook(ctx context.Context, cmd *eventsv1.WebhookCommand) error
	Publish(ctx context.Context, ev *eventsv1.Event) error
}

// ErrNoEffects is the error of an effect node run without Effects.
var ErrNoEffects = errors.New("this run cannot have side effects (no Effects given)")

// effectNode is compiled config shared by the effect nodes: each key is a
// template rendered on every run.
type effectNode struct {
	id, kind string
	t        map[string]template
}

func (x effectNode) has(key string) bool { _, ok := x.t[key]; return ok }

func (x effectNode) value(r *run, key string) (any, error) {
	t, ok := x.t[key]
	if !ok {
		return nil, nil
	}
	v, err := t.render(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return v, nil
}

// str renders key to a string; numbers and booleans are written as JSON.
func (x effectNode) str(r *run, key string) (string, error) {
	v, err := x.value(r, key)
	if err != nil || v == nil {
		return "", err
	}
	switch s := v.(type) {
	case string:
		return s, nil
	case map[string]any, []any:
		return "", fmt.Errorf("%s: must be a string, got %s", key, kindOf(v))
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// strs renders key to a list of strings: a single string or a list.
func (x effectNode) strs(r *run, key string) ([]string, error) {
	v, err := x.value(r, key)
	if err != nil || v == nil {
		return nil, err
	}
	switch s := v.(type) {
	case string:
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	case []any:
		out := make([]string, 0, len(s))
		for i, e := range s {
			str, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: must be a string, got %s", key, i, kindOf(e))
			}
			out = append(out, str)
		}
		return out, nil
	case []string:
		return s, nil
	}
	return nil, fmt.Errorf("%s: must be a string or a list of strings, got %s", key, kindOf(v))
}

// jsonBytes renders key and encodes it as JSON (strings stay raw text when
// raw is set: a webhook body given as a string is sent as is).
func (x effectNode) jsonBytes(r *run, key string, raw bool) ([]byte, error) {
	v, err := x.value(r, key)
	if err != nil || v == nil {
		return nil, err
	}
	if s, ok := v.(string); ok && raw {
		return []byte(s), nil
	}
	out, err := encodeJSON(v, r.p.limits.MaxOutputBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return out, nil
}

// strMap renders key to a map of strings (headers, custom args).
func (x effectNode) strMap(r *run, key string) (map[string]string, error) {
	v, err := x.value(r, key)
	if err != nil || v == nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: must be a mapping, got %s", key, kindOf(v))
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		switch s := e.(type) {
		case string:
			out[k] = s
		default:
			b, err := json.Marshal(e)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", key, k, err)
			}
			out[k] = string(b)
		}
	}
	return out, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return "a number"
}

// origin and commandID identify what a run's node produced.
func (r *run) origin(node string) *eventsv1.CommandOrigin {
	return &eventsv1.CommandOrigin{
		Tenant: r.tenant, EventId: r.ev.Id, EventType: r.ev.EventType,
		Flow: r.p.name, Node: node, Traceparent: r.ev.Traceparent,
	}
}

func (r *run) commandID(node string) string { return bus.CommandID(r.ev.Id, r.p.name, node) }

func (r *run) effects() (Effects, error) {
	if r.in.Effects == nil {
		return nil, ErrNoEffects
	}
	return r.in.Effects, nil
}

// compileEffect compiles the config keys of an effect node as templates and
// checks the required ones.
func compileEffect(kind string, required ...string) func(b *builder, n *nodeDecl, cfg fields, at *yaml.Node, path string) effectNode {
	return func(b *builder, n *nodeDecl, cfg fields, at *yaml.Node, path string) effectNode {
		x := effectNode{id: n.id, kind: kind, t: map[string]template{}}
		for _, kv := range cfg.order {
			x.t[kv.name] = b.compileTemplate(kv.value, joinPath(path, kv.name))
		}
		for _, key := range required {
			if _, ok := x.t[key]; !ok {
				b.problems.add(at, joinPath(path, key), "missing required key %q for a %s node", key, kind)
			}
		}
		return x
	}
}

// literal returns a key's value when it has no placeholder.
func literal(cfg fields, key string) (string, *yaml.Node, bool) {
	kv, ok := cfg.get(key)
	if !ok || kv.value.Kind != yaml.ScalarNode || strings.Contains(kv.value.Value, "{{") {
		return "", nil, false
	}
	return kv.value.Value, kv.value, true
}

var (
	emailKeys   = []string{"to", "cc", "bcc", "from", "reply_to", "subject", "text", "html", "template_id", "template_data", "categories", "custom_args", "send_at", "sandbox", "account"}
	smsKeys     = []string{"to", "from", "messaging_service_sid", "body", "media_urls", "status_callback", "account"}
	webhookKeys = []string{"url", "method", "headers", "body", "timeout", "endpoint"}
	publishKeys = []string{"event_type", "payload"}
)

type emailExec struct{ effectNode }

func compileEmail(b *builder, n *nodeDecl, cfg fields, at *yaml.Node, path string) executor {
	x := compileEffect("email", "to")(b, n, cfg, at, path)
	if !x.has("text") && !x.has("html") && !x.has("template_id") {
		b.problems.add(at, path, "an email node needs text, html or template_id")
	}
	if !x.has("template_id") && !x.has("subject") {
		b.problems.add(at, joinPath(path, "subject"), "missing required key \"subject\" (or use template_id)")
	}
	return emailExec{x}
}

func address(key, s string) (*eventsv1.EmailAddress, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not an email address", key, s)
	}
	return &eventsv1.EmailAddress{Email: a.Address, Name: a.Name}, nil
}

func addresses(key string, list []string) ([]*eventsv1.EmailAddress, error) {
	out := make([]*eventsv1.EmailAddress, 0, len(list))
	for i, s := range list {
		a, err := address(fmt.Sprintf("%s[%d]", key, i), s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (x emailExec) exec(r *run) (step, error) {
	fx, err := r.effects()
	if err != nil {
		return step{}, err
	}
	cmd := &eventsv1.EmailCommand{Id: r.commandID(x.id), Origin: r.origin(x.id), CreatedAt: r.now().UnixMilli()}
	for _, f := range []struct {
		key string
		dst *[]*eventsv1.EmailAddress
	}{{"to", &cmd.To}, {"cc", &cmd.Cc}, {"bcc", &cmd.Bcc}} {
		list, err := x.strs(r, f.key)
		if err != nil {
			return step{}, err
		}
		if *f.dst, err = addresses(f.key, list); err != nil {
			return step{}, err
		}
	}
	if len(cmd.To) == 0 {
		return step{}, errors.New("to: no recipient")
	}
	for _, f := range []struct {
		key string
		dst **eventsv1.EmailAddress
	}{{"from", &cmd.From}, {"reply_to", &cmd.ReplyTo}} {
		s, err := x.str(r, f.key)
		if err != nil {
			return step{}, err
		}
		if s != "" {
			if *f.dst, err = address(f.key, s); err != nil {
				return step{}, err
			}
		}
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"subject", &cmd.Subject}, {"text", &cmd.Text}, {"html", &cmd.Html}, {"template_id", &cmd.TemplateId}, {"account", &cmd.Account}} {
		if *f.dst, err = x.str(r, f.key); err != nil {
			return step{}, err
		}
	}
	if cmd.DynamicTemplateData, err = x.jsonBytes(r, "template_data", false); err != nil {
		return step{}, err
	}
	if cmd.Categories, err = x.strs(r, "categories"); err != nil {
		return step{}, err
	}
	if cmd.CustomArgs, err = x.strMap(r, "custom_args"); err != nil {
		return step{}, err
	}
	if v, err := x.value(r, "sandbox"); err != nil {
		return step{}, err
	} else if b, ok := v.(bool); ok {
		cmd.Sandbox = b
	} else if v != nil {
		return step{}, fmt.Errorf("sandbox: must be true or false, got %s", kindOf(v))
	}
	if s, err := x.str(r, "send_at"); err != nil {
		return step{}, err
	} else if s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return step{}, fmt.Errorf("send_at: %q is not an RFC 3339 time", s)
		}
		cmd.SendAt = t.Unix()
	}
	if err := fx.Email(r.ctx, cmd); err != nil {
		return step{}, transient(err) // the executor could not publish it
	}
	return step{out: map[string]any{"id": cmd.Id, "to": len(cmd.To) + len(cmd.Cc) + len(cmd.Bcc)}}, nil
}

type smsExec struct{ effectNode }

func compileSMS(b *builder, n *nodeDecl, cfg fields, at *yaml.Node, path string) executor {
	x := compileEffect("sms", "to")(b, n, cfg, at, path)
	if !x.has("body") && !x.has("media_urls") {
		b.problems.add(at, joinPath(path, "body"), "an sms node needs body or media_urls")
	}
	if x.has("from") == x.has("messaging_service_sid") {
		b.problems.add(at, joinPath(path, "from"), "set exactly one of from and messaging_service_sid")
	}
	return smsExec{x}
}

func (x smsExec) exec(r *run) (step, error) {
	fx, err := r.effects()
	if err != nil {
		return step{}, err
	}
	cmd := &eventsv1.SmsCommand{Id: r.commandID(x.id), Origin: r.origin(x.id), CreatedAt: r.now().UnixMilli()}
	for _, f := range []struct {
		key string
		dst *string
	}{{"to", &cmd.To}, {"from", &cmd.From}, {"messaging_service_sid", &cmd.MessagingServiceSid}, {"body", &cmd.Body}, {"status_callback", &cmd.StatusCallback}, {"account", &cmd.Account}} {
		if *f.dst, err = x.str(r, f.key); err != nil {
			return step{}, err
		}
	}
	if !validPhone(cmd.To) {
		return step{}, fmt.Errorf("to: %q is not an E.164 number (+ and 8 to 15 digits)", cmd.To)
	}
	if cmd.MediaUrls, err = x.strs(r, "media_urls"); err != nil {
		return step{}, err
	}
	if err := fx.SMS(r.ctx, cmd); err != nil {
		return step{}, transient(err) // the executor could not publish it
	}
	return step{out: map[string]any{"id": cmd.Id}}, nil
}

func validPhone(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

type webhookExec struct{ effectNode }

func compileWebhook(b *builder, n *nodeDecl, cfg fields, at *yaml.Node, path string) executor {
	x := compileEffect("webhook", "url")(b, n, cfg, at, path)
	if u, node, ok := literal(cfg, "url"); ok {
		if err := checkURL(u); err != nil {
			b.problems.add(node, joinPath(path, "url"), "%v", err)
		}
	}
	if m, node, ok := literal(cfg, "method"); ok && !validMethod(m) {
		b.problems.add(node, joinPath(path, "method"), "method %q is not one of GET, POST, PUT, PATCH, DELETE", m)
	}
	if d, node, ok := literal(cfg, "timeout"); ok {
		if _, err := parseTimeout(d); err != nil {
			b.problems.add(node, joinPath(path, "timeout"), "%v", err)
		}
	}
	return webhookExec{x}
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q is not an absolute http(s) URL", s)
	}
	if u.User != nil {
		return fmt.Errorf("url must not carry credentials; use headers or an endpoint")
	}
	return nil
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
		return true
	}
	return false
}

func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > time.Minute {
		return 0, fmt.Errorf("timeout %q must be a duration between 1ms and 1m", s)
	}
	return d, nil
}

func (x webhookExec) exec(r *run) (step, error) {
	fx, err := r.effects()
	if err != nil {
		return step{}, err
	}
	cmd := &eventsv1.WebhookCommand{Id: r.commandID(x.id), Origin: r.origin(x.id), Method: "POST", CreatedAt: r.now().UnixMilli()}
	if cmd.Url, err = x.str(r, "url"); err != nil {
		return step{}, err
	}
	if err := checkURL(cmd.Url); err != nil {
		return step{}, err
	}
	if m, err := x.str(r, "method"); err != nil {
		return step{}, err
	} else if m != "" {
		if !validMethod(m) {
			return step{}, fmt.Errorf("method %q is not one of GET, POST, PUT, PATCH, DELETE", m)
		}
		cmd.Method = m
	}
	if cmd.Headers, err = x.strMap(r, "headers"); err != nil {
		return step{}, err
	}
	if cmd.Body, err = x.jsonBytes(r, "body", true); err != nil {
		return step{}, err
	}
	if cmd.Endpoint, err = x.str(r, "endpoint"); err != nil {
		return step{}, err
	}
	if s, err := x.str(r, "timeout"); err != nil {
		return step{}, err
	} else if s != "" {
		d, err := parseTimeout(s)
		if err != nil {
			return step{}, err
		}
		cmd.TimeoutMillis = d.Milliseconds()
	}
	if err := fx.Webhook(r.ctx, cmd); err != nil {
		return step{}, transient(err) // the executor could not publish it
	}
	return step{out: map[string]any{"id": cmd.Id}}, nil
}

// MetadataDepth counts how many publish nodes led to an event; past
// MaxPublishDepth a publish node fails, so flows that trigger each other
// cannot loop forever.
const (
	MetadataDepth   = "publish_depth"
	MaxPublishDepth = 8
)

type publishExec struct{ effectNode }

func compilePublish(b *builder, n *nodeDecl, cfg fields, at *yaml.Node, path string) executor {
	x := compileEffect("publish", "event_type")(b, n, cfg, at, path)
	if t, node, ok := literal(cfg, "event_type"); ok {
		if err := bus.ValidateEventType(t); err != nil {
			b.problems.add(node, joinPath(path, "event_type"), "%v", err)
		}
	}
	return publishExec{x}
}

func (x publishExec) exec(r *run) (step, error) {
	fx, err := r.effects()
	if err != nil {
		return step{}, err
	}
	typ, err := x.str(r, "event_type")
	if err != nil {
		return step{}, err
	}
	if err := bus.ValidateEventType(typ); err != nil {
		return step{}, err
	}
	depth := 1
	if d, err := strconv.Atoi(r.ev.GetMetadata()[MetadataDepth]); err == nil && d > 0 {
		depth = d + 1
	}
	if depth > MaxPublishDepth {
		return step{}, fmt.Errorf("event %s is already %d publishes deep; a flow that publishes what triggers it would never stop (limit %d)", r.ev.Id, depth-1, MaxPublishDepth)
	}
	payload, err := x.jsonBytes(r, "payload", false)
	if err != nil {
		return step{}, err
	}
	if payload == nil {
		payload = []byte("{}")
	}
	ev := &eventsv1.Event{
		Id:          r.commandID(x.id),
		EventType:   typ,
		Source:      "flow/" + r.p.name,
		Timestamp:   r.now().UnixMilli(),
		Payload:     payload,
		Metadata:    map[string]string{"caused_by": r.ev.Id, "flow": r.p.name, "node": x.id, MetadataDepth: strconv.Itoa(depth)},
		Tenant:      r.tenant,
		Traceparent: r.ev.Traceparent,
	}
	if err := fx.Publish(r.ctx, ev); err != nil {
		return step{}, transient(err) // the executor could not publish it
	}
	return step{out: map[string]any{"id": ev.Id, "event_type": typ}}, nil
}
