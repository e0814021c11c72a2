package bus

import (
	"errors"
	"strings"
	"testing"
)

func wantTokenError(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a *TokenError for %s", field)
	}
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *TokenError", err, err)
	}
	if te.Field != field {
		t.Fatalf("TokenError.Field = %q, want %q (%v)", te.Field, field, err)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("error %q does not name %s", err, field)
	}
}

func TestValidateTokens(t *testing.T) {
	tests := []struct {
		name     string
		field    string // tenant, env, event_type
		value    string
		valid    bool
		inReason string // part of the reason, for invalid values
	}{
		{"tenant simple", "tenant", "acme", true, ""},
		{"tenant with dash underscore digits", "tenant", "Acme_Corp-42", true, ""},
		{"tenant 64 chars", "tenant", strings.Repeat("t", 64), true, ""},
		{"tenant empty", "tenant", "", false, "empty"},
		{"tenant 65 chars", "tenant", strings.Repeat("t", 65), false, "longer than 64"},
		{"tenant space", "tenant", "ac me", false, "whitespace"},
		{"tenant tab", "tenant", "ac\tme", false, "whitespace"},
		{"tenant star", "tenant", "*", false, "wildcard"},
		{"tenant gt", "tenant", "acme>", false, "wildcard"},
		{"tenant dot", "tenant", "ac.me", false, "dots"},
		{"tenant leading dot", "tenant", ".acme", false, "dots"},
		{"tenant non-ascii", "tenant", "caf\u00e9", false, "not allowed"},
		{"tenant colon", "tenant", "a:b", false, "not allowed"},
		{"tenant slash", "tenant", "a/b", false, "not allowed"},

		{"env dev", "env", "dev", true, ""},
		{"env with dash", "env", "eu-prod", true, ""},
		{"env 32 chars", "env", strings.Repeat("e", 32), true, ""},
		{"env 33 chars", "env", strings.Repeat("e", 33), false, "longer than 32"},
		{"env empty", "env", "", false, "empty"},
		{"env dot", "env", "prod.eu", false, "dots"},
		{"env gt", "env", ">", false, "wildcard"},
		{"env space", "env", "pr od", false, "whitespace"},
		{"env upper case collides with lower case", "env", "Dev", false, "lower-case"},
		{"env underscore collides with dash", "env", "eu_prod", false, "lower-case"},

		{"type entity.action", "event_type", "order.created", true, ""},
		{"type single token", "event_type", "ping", true, ""},
		{"type many dots", "event_type", "github.pull_request.review-requested", true, ""},
		{"type result not last", "event_type", "result.created", true, ""},
		{"type contains result", "event_type", "order.results", true, ""},
		{"type 200 chars", "event_type", strings.Repeat("a.", 99) + "bb", true, ""},
		{"type 201 chars", "event_type", strings.Repeat("a.", 100) + "b", false, "longer than 200"},
		{"type empty", "event_type", "", false, "empty"},
		{"type leading dot", "event_type", ".order.created", false, "empty token"},
		{"type trailing dot", "event_type", "order.created.", false, "empty token"},
		{"type double dot", "event_type", "order..created", false, "empty token"},
		{"type only dot", "event_type", ".", false, "empty token"},
		{"type star token", "event_type", "order.*", false, "wildcard"},
		{"type gt token", "event_type", "order.>", false, "wildcard"},
		{"type star inside", "event_type", "order.cre*ted", false, "wildcard"},
		{"type space", "event_type", "order created", false, "whitespace"},
		{"type newline", "event_type", "order.created\n", false, "whitespace"},
		{"type non-ascii", "event_type", "commande.cr\u00e9\u00e9e", false, "not allowed"},
		{"type reserved result", "event_type", "order.created.result", false, "reserved"},
		{"type only result", "event_type", "result", false, "reserved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch tc.field {
			case "tenant":
				err = ValidateTenant(tc.value)
			case "env":
				err = ValidateEnv(tc.value)
			case "event_type":
				err = ValidateEventType(tc.value)
			}
			if tc.valid {
				if err != nil {
					t.Fatalf("%s %q rejected: %v", tc.field, tc.value, err)
				}
				return
			}
			wantTokenError(t, err, tc.field)
			var te *TokenError
			errors.As(err, &te)
			if te.Value != tc.value {
				t.Errorf("TokenError.Value = %q, want the whole value %q", te.Value, tc.value)
			}
			if !strings.Contains(te.Reason, tc.inReason) {
				t.Errorf("reason %q does not mention %q", te.Reason, tc.inReason)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	if err := ValidateName("stage", "flow"); err != nil {
		t.Fatal(err)
	}
	wantTokenError(t, ValidateName("stage", "a.b"), "stage")
	wantTokenError(t, ValidateName("flow", strings.Repeat("f", 65)), "flow")
}

func TestSubjectBuilders(t *testing.T) {
	tests := []struct {
		name      string
		build     func() (string, error)
		want      string
		wantField string // field of the expected *TokenError; "" for success
	}{
		{"event", func() (string, error) { return EventSubject("dev", "acme", "order.created") }, "greentic.events.dev.acme.order.created", ""},
		{"event single token type", func() (string, error) { return EventSubject("prod", "t-1", "ping") }, "greentic.events.prod.t-1.ping", ""},
		{"event bad env", func() (string, error) { return EventSubject("de v", "acme", "order.created") }, "", "env"},
		{"event bad tenant", func() (string, error) { return EventSubject("dev", "ac*me", "order.created") }, "", "tenant"},
		{"event bad type", func() (string, error) { return EventSubject("dev", "acme", "order..created") }, "", "event_type"},
		{"event reserved type", func() (string, error) { return EventSubject("dev", "acme", "order.result") }, "", "event_type"},
		{"result", func() (string, error) { return ResultSubject("dev", "acme", "order.created") }, "greentic.events.dev.acme.order.created.result", ""},
		{"result bad tenant", func() (string, error) { return ResultSubject("dev", "", "order.created") }, "", "tenant"},
		{"result bad type", func() (string, error) { return ResultSubject("dev", "acme", "order.>") }, "", "event_type"},
		{"outbound email", func() (string, error) { return OutboundSubject("dev", "acme", ChannelEmail) }, "greentic.outbound.dev.acme.email", ""},
		{"outbound sms", func() (string, error) { return OutboundSubject("dev", "acme", ChannelSMS) }, "greentic.outbound.dev.acme.sms", ""},
		{"outbound webhook", func() (string, error) { return OutboundSubject("dev", "acme", ChannelWebhook) }, "greentic.outbound.dev.acme.webhook", ""},
		{"outbound unknown channel", func() (string, error) { return OutboundSubject("dev", "acme", "fax") }, "", "channel"},
		{"outbound bad tenant", func() (string, error) { return OutboundSubject("dev", "a b", ChannelEmail) }, "", "tenant"},
		{"dlq", func() (string, error) { return DLQSubject("dev", "acme", "flow") }, "greentic.dlq.dev.acme.flow", ""},
		{"dlq bad stage", func() (string, error) { return DLQSubject("dev", "acme", "fl.ow") }, "", "stage"},
		{"dlq bad env", func() (string, error) { return DLQSubject("", "acme", "flow") }, "", "env"},
		{"dlq select all", func() (string, error) { return DLQSelectFilter("dev", "", "") }, "greentic.dlq.dev.*.*", ""},
		{"dlq select tenant", func() (string, error) { return DLQSelectFilter("dev", "acme", "") }, "greentic.dlq.dev.acme.*", ""},
		{"dlq select stage", func() (string, error) { return DLQSelectFilter("dev", "", "email") }, "greentic.dlq.dev.*.email", ""},
		{"dlq select both", func() (string, error) { return DLQSelectFilter("dev", "acme", "flow") }, "greentic.dlq.dev.acme.flow", ""},
		{"dlq select bad tenant", func() (string, error) { return DLQSelectFilter("dev", "ac>", "") }, "", "tenant"},
		{"dlq select bad stage", func() (string, error) { return DLQSelectFilter("dev", "", "*") }, "", "stage"},
		{"dlq select bad env", func() (string, error) { return DLQSelectFilter("D", "", "") }, "", "env"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.build()
			if tc.wantField != "" {
				wantTokenError(t, err, tc.wantField)
				if got != "" {
					t.Errorf("got subject %q along with the error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("subject = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	tests := []struct{ got, want string }{
		{EventFilter("dev"), "greentic.events.dev.>"},
		{TenantEventFilter("dev", "acme"), "greentic.events.dev.acme.>"},
		{OutboundFilter("dev", ChannelSMS), "greentic.outbound.dev.*.sms"},
		{DLQFilter("dev"), "greentic.dlq.dev.>"},
		{TenantDLQFilter("dev", "acme"), "greentic.dlq.dev.acme.>"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("filter = %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestParseSubjectRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		build func() (string, error)
		want  Subject
	}{
		{"event", func() (string, error) { return EventSubject("dev", "acme", "ping") }, Subject{KindEvent, "dev", "acme", "ping"}},
		{"event type with dots", func() (string, error) { return EventSubject("dev", "acme", "github.pull_request.opened") }, Subject{KindEvent, "dev", "acme", "github.pull_request.opened"}},
		{"event type starting with result", func() (string, error) { return EventSubject("dev", "acme", "result.created") }, Subject{KindEvent, "dev", "acme", "result.created"}},
		{"result", func() (string, error) { return ResultSubject("prod", "t_1", "order.created") }, Subject{KindResult, "prod", "t_1", "order.created"}},
		{"result of single-token type", func() (string, error) { return ResultSubject("prod", "t_1", "ping") }, Subject{KindResult, "prod", "t_1", "ping"}},
		{"outbound", func() (string, error) { return OutboundSubject("dev", "acme", ChannelWebhook) }, Subject{KindOutbound, "dev", "acme", ChannelWebhook}},
		{"dlq", func() (string, error) { return DLQSubject("dev", "acme", "email") }, Subject{KindDLQ, "dev", "acme", "email"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseSubject(s)
			if err != nil {
				t.Fatalf("ParseSubject(%q): %v", s, err)
			}
			if got != tc.want {
				t.Fatalf("ParseSubject(%q) = %+v, want %+v", s, got, tc.want)
			}
			var rebuilt string
			switch got.Kind {
			case KindEvent:
				rebuilt, err = EventSubject(got.Env, got.Tenant, got.Type)
			case KindResult:
				rebuilt, err = ResultSubject(got.Env, got.Tenant, got.Type)
			case KindOutbound:
				rebuilt, err = OutboundSubject(got.Env, got.Tenant, got.Type)
			case KindDLQ:
				rebuilt, err = DLQSubject(got.Env, got.Tenant, got.Type)
			}
			if err != nil || rebuilt != s {
				t.Fatalf("rebuilt %q (%v), want %q", rebuilt, err, s)
			}
		})
	}
}

func TestParseSubjectRejects(t *testing.T) {
	tests := []string{
		"",
		"greentic",
		"greentic.events.dev.acme",
		"other.events.dev.acme.ping",
		"greentic.unknown.dev.acme.ping",
		"greentic.events.dev.a b.ping",
		"greentic.events.dev.*.ping",
		"greentic.events.>.acme.ping",
		"greentic.events..acme.ping",
		"greentic.events.dev..ping",
		"greentic.dlq.dev.acme:x.flow",
		"greentic.outbound.d\u00e9v.acme.email",
	}
	for _, s := range tests {
		t.Run(s, func(t *testing.T) {
			if got, err := ParseSubject(s); err == nil {
				t.Fatalf("ParseSubject(%q) = %+v, want an error", s, got)
			}
		})
	}
}

func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		"greentic.events.dev.acme.order.created",
		"greentic.events.dev.acme.order.created.result",
		"greentic.events.dev.acme.a..b",
		"greentic.outbound.prod.t-1.email",
		"greentic.dlq.dev.acme.flow",
		"greentic.events.dev.acme.*",
		"greentic.events.dev.acme.>",
		"greentic..dev.acme.x",
		"greentic.events.dev.acme.\xff",
		"",
		".....",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSubject(s)
		if err != nil {
			return
		}
		if err := ValidateEnv(got.Env); err != nil {
			t.Fatalf("ParseSubject(%q) accepted env %q: %v", s, got.Env, err)
		}
		if err := ValidateTenant(got.Tenant); err != nil {
			t.Fatalf("ParseSubject(%q) accepted tenant %q: %v", s, got.Tenant, err)
		}
		var rebuilt string
		switch got.Kind {
		case KindEvent:
			if ValidateEventType(got.Type) != nil {
				return
			}
			rebuilt, err = EventSubject(got.Env, got.Tenant, got.Type)
		case KindResult:
			if ValidateEventType(got.Type) != nil {
				return
			}
			rebuilt, err = ResultSubject(got.Env, got.Tenant, got.Type)
		default:
			return
		}
		if err != nil {
			t.Fatalf("rebuild %+v from %q: %v", got, s, err)
		}
		if rebuilt != s {
			t.Fatalf("ParseSubject(%q) = %+v, rebuilds %q", s, got, rebuilt)
		}
	})
}

func TestResultOfAResult(t *testing.T) {
	for _, tc := range []struct {
		typ, base string
		hops      int
		subject   string
	}{
		{"order.created", "order.created", 0, "greentic.events.dev.acme.order.created.result"},
		{"order.created.result", "order.created", 1, "greentic.events.dev.acme.order.created.result.result"},
		{"a.result.result", "a", 2, "greentic.events.dev.acme.a.result.result.result"},
	} {
		base, hops := SplitResultType(tc.typ)
		if base != tc.base || hops != tc.hops {
			t.Errorf("SplitResultType(%q) = %q, %d", tc.typ, base, hops)
		}
		s, err := ResultSubject("dev", "acme", tc.typ)
		if err != nil || s != tc.subject {
			t.Errorf("ResultSubject(%q) = %q, %v; want %q", tc.typ, s, err, tc.subject)
		}
		if p, err := ParseSubject(s); err != nil || p.Kind != KindResult || p.Type != tc.typ {
			t.Errorf("ParseSubject(%q) = %+v, %v", s, p, err)
		}
	}
	for _, bad := range []string{"result", "result.result", "order.*.result", ".result"} {
		if s, err := ResultSubject("dev", "acme", bad); err == nil {
			t.Errorf("ResultSubject(%q) = %q, want an error", bad, s)
		}
	}
}
