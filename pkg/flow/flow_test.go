package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"google.golang.org/protobuf/proto"
)

func mustCompile(t testing.TB, src string, lim Limits) *Program {
	t.Helper()
	p, err := CompileWithLimits([]byte(src), lim)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

func readFlow(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func event(typ, payload string) *eventsv1.Event {
	return &eventsv1.Event{
		Id: "ev-1", EventType: typ, Source: "test", Timestamp: 1700000000000,
		Payload: []byte(payload), Metadata: map[string]string{"k": "v"},
		Tenant: "acme", Env: "dev",
	}
}

// jsonEqual compares JSON documents ignoring formatting and key order.
func jsonEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("output\n got %s\nwant %s", gb, wb)
	}
}

func traceIDs(tr []NodeTrace) string {
	var ids []string
	for _, n := range tr {
		ids = append(ids, n.ID+":"+n.Outcome)
	}
	return strings.Join(ids, ",")
}

func TestOrderFlow(t *testing.T) {
	p := mustCompile(t, readFlow(t, "order.yaml"), Limits{})
	if p.Name() != "handle_event" || p.Version() != "1.0" {
		t.Fatalf("name/version = %q/%q", p.Name(), p.Version())
	}
	fixed := time.Unix(1700000000, 0)
	tests := []struct {
		name      string
		eventType string
		payload   string
		want      string
		trace     string
	}{
		{
			name:      "created",
			eventType: "order.created",
			payload:   `{"id": "A-1", "total": 21.5, "items": [1, 2, 3]}`,
			want: `{"message": "Order A-1 confirmed", "status": "confirmed", "total": 21.5,
				"items": [3, 2, true, null], "tenant": "acme/dev"}`,
			trace: "on_order:ok,send_confirmation:ok",
		},
		{
			name:      "shipped",
			eventType: "order.shipped",
			payload:   `{"id": 7, "total": 21}`,
			want:      `{"message": "Order 7 shipped, doubled 42", "doubled": 42}`,
			trace:     "on_order:ok,compute:ok,send_tracking:ok",
		},
		{
			name:      "default route",
			eventType: "order.cancelled",
			payload:   `not json`,
			want:      `{"type": "order.cancelled", "at": 1700000000}`,
			trace:     "on_order:ok,other:ok",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trs := p.MatchEvent(tt.eventType)
			if len(trs) == 0 {
				t.Fatalf("no trigger matches %q", tt.eventType)
			}
			res := p.Run(context.Background(), Input{Event: event(tt.eventType, tt.payload), Now: func() time.Time { return fixed }}, trs[0].Target)
			if res.Status != StatusOK {
				t.Fatalf("status %v: %s", res.Status, res.Error)
			}
			jsonEqual(t, res.Output, tt.want)
			if got := traceIDs(res.Trace); got != tt.trace {
				t.Errorf("trace = %s, want %s", got, tt.trace)
			}
		})
	}
}

// TestBriefFlow runs the flow of the brief as the examples ship it: a
// dry run records an email for order.created, an sms for order.shipped,
// and the timer trigger fetches the report (from a local fake of
// api.example.com) and mails it.
func TestBriefFlow(t *testing.T) {
	src, err := os.ReadFile("../../examples/flows/handle_event.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, string(src), Limits{})
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "api.example.com" || r.URL.Path != "/reports/daily" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"orders": 12, "revenue": 340.5}`)
	}))
	defer api.Close()
	// The fake answers for api.example.com.
	client := api.Client()
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, api.Listener.Addr().String())
	}
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "example.com"

	tests := []struct {
		eventType, want, effect string
		check                   func(t *testing.T, m proto.Message)
	}{
		{"order.created", `{"action": "confirmation", "order_id": 42, "message": "Order 42 confirmed"}`, EffectEmail, func(t *testing.T, m proto.Message) {
			c := m.(*eventsv1.EmailCommand)
			if c.Id != "ev-1:handle_event:send_confirmation" || c.To[0].Email != "ada@example.com" || c.Subject != "Order 42 confirmed" {
				t.Errorf("email %v", c)
			}
		}},
		{"order.shipped", `{"action": "tracking", "order_id": 42, "message": "Order 42 shipped"}`, EffectSMS, func(t *testing.T, m proto.Message) {
			c := m.(*eventsv1.SmsCommand)
			if c.To != "+15005550009" || c.Body != "Order 42 shipped: ZX-1" {
				t.Errorf("sms %v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			trs := p.MatchEvent(tt.eventType)
			if len(trs) != 1 || trs[0].Target != "on_order" {
				t.Fatalf("MatchEvent(%q) = %+v", tt.eventType, trs)
			}
			rec := &Recorder{}
			res := p.Run(context.Background(), Input{Event: event(tt.eventType, `{"id": 42, "tracking": "ZX-1", "customer": {"email": "ada@example.com", "phone": "+15005550009"}}`), Effects: rec}, trs[0].Target)
			if res.Status != StatusOK {
				t.Fatalf("status %v: %s", res.Status, res.Error)
			}
			jsonEqual(t, res.Output, tt.want)
			if fx := rec.Effects(); len(fx) != 1 || fx[0].Kind != tt.effect {
				t.Fatalf("effects %v, want one %s", fx, tt.effect)
			}
			tt.check(t, rec.Effects()[0].Message)
		})
	}
	if trs := p.MatchEvent("order.cancelled"); len(trs) != 0 {
		t.Errorf("order.cancelled matched %+v", trs)
	}

	timers := p.Timers()
	if len(timers) != 1 || timers[0].Cron != "0 9 * * *" || timers[0].Target != "daily_report" {
		t.Fatalf("timers %+v", timers)
	}
	rec := &Recorder{}
	tick := event(DefaultTimerEventType, `{}`)
	res := p.Run(context.Background(), Input{Event: tick, Effects: rec, HTTP: client}, timers[0].Target)
	if res.Status != StatusOK {
		t.Fatalf("timer run: %s", res.Error)
	}
	fx := rec.Effects()
	if len(fx) != 1 || fx[0].Kind != EffectEmail {
		t.Fatalf("effects of the timer run %v, want one email", fx)
	}
	mail := fx[0].Message.(*eventsv1.EmailCommand)
	if mail.To[0].Email != "ops@example.com" || mail.Subject != "Daily report" {
		t.Errorf("report email %v", mail)
	}
	jsonEqual(t, json.RawMessage(mail.Text), `{"orders": 12, "revenue": 340.5}`)
	if got := traceIDs(res.Trace); got != "daily_report:ok,send_email:ok" {
		t.Errorf("trace %s", got)
	}
}

func TestMatchEvent(t *testing.T) {
	const src = `
name: m
version: "1"
nodes:
  - {id: a, type: respond}
triggers:
  - {type: event, event_type: "order.created", target: a}
  - {type: event, event_type: "order.*", target: a}
  - {type: event, event_type: "order.>", target: a}
  - {type: event, event_type: "*", target: a}
  - {type: event, event_type: ">", target: a}
  - {type: event, event_type: "*.created.>", target: a}
`
	p := mustCompile(t, src, Limits{})
	tests := []struct {
		eventType string
		want      []int
	}{
		{"order.created", []int{0, 1, 2, 4}},
		{"order.shipped", []int{1, 2, 4}},
		{"order.created.eu", []int{2, 4, 5}},
		{"order", []int{3, 4}},
		{"member.created.x.y", []int{4, 5}},
		{"", nil},
		{"order..created", nil},
	}
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			var got []int
			for _, tr := range p.MatchEvent(tt.eventType) {
				if tr.Type != "event" || tr.Target != "a" {
					t.Errorf("trigger %+v", tr)
				}
				got = append(got, tr.Index)
			}
			if !equalInts(got, tt.want) {
				t.Errorf("MatchEvent(%q) = %v, want %v", tt.eventType, got, tt.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// scriptFlow is a one-node flow running script.
func scriptFlow(script string) string {
	b, _ := json.Marshal(script)
	return "name: s\nversion: \"1\"\nnodes:\n  - id: s\n    type: script\n    config:\n      script: " + string(b) +
		"\ntriggers:\n  - {type: event, event_type: \">\", target: s}\n"
}

func TestExpressions(t *testing.T) {
	fixed := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		script  string
		payload string
		want    string
		wantErr string
	}{
		{name: "single quotes", script: `'it' + "s"`, want: `"its"`},
		{name: "let", script: `let p = event.payload; let t = p.total; t * 2`, payload: `{"total": 21}`, want: `42`},
		{name: "float payload", script: `event.payload.total * 2`, payload: `{"total": 1.25}`, want: `2.5`},
		{name: "big integer stays exact", script: `event.payload.n + 1`, payload: `{"n": 9007199254740993}`, want: `9007199254740994`},
		{name: "metadata and fields", script: `[event.metadata.k, event.id, event.timestamp, tenant, env]`, want: `["v", "ev-1", 1700000000000, "acme", "dev"]`},
		{name: "now uses input clock", script: `now().Year()`, want: `2024`},
		{name: "invalid payload is nil", script: `event.payload == nil`, payload: `{bad`, want: `true`},
		{name: "optional chaining", script: `event.payload?.missing ?? 'dflt'`, payload: `{}`, want: `"dflt"`},
		{name: "builtins", script: `upper(join(map(filter([1,2,3], # > 1), string(#)), "-"))`, want: `"2-3"`},
		{name: "pipes", script: `'a,b' | split(',') | join('+')`, want: `"a+b"`},
		{name: "replace", script: `replace('aaa', 'a', 'bb')`, want: `"bbbbbb"`},
		{name: "toJSON fromJSON", script: `fromJSON(toJSON({'a': [1, 2]})).a[1] + 1`, want: `3`},
		{name: "reduce", script: `reduce(1..10, #acc + #, 0)`, want: `55`},
		{name: "group keys stringified", script: `groupBy([1, 2, 3], # % 2)`, want: `{"0": [2], "1": [1, 3]}`},
		{name: "runtime error names expression", script: `event.payload.id + 1`, payload: `{"id": "x"}`, wantErr: `node "s" (script): invalid operation`},
		{name: "not JSON encodable", script: `1.0 / 0`, wantErr: `cannot encode`},
		{name: "string doubling stopped", script: `reduce(1..64, #acc + #acc, 'ab')`, wantErr: "memory budget"},
		{name: "big range refused", script: `len(1..100000000)`, wantErr: "memory budget exceeded"},
		{name: "join doubling stopped", script: `let a = repeat('x', 500000); let b = join([a, a, a, a, a, a, a, a], ''); join([b, b, b, b, b, b, b, b])`, wantErr: "memory budget"},
		{name: "repeat uses expr's budget", script: `repeat('x', 999999) + repeat('y', 100000)`, wantErr: "memory budget exceeded"},
		{name: "output too large", script: `let a = repeat('x', 600000); a + a`, wantErr: "output is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, scriptFlow(tt.script), Limits{})
			ev := event("x.y", tt.payload)
			res := p.Run(context.Background(), Input{Event: ev, Now: func() time.Time { return fixed }}, "s")
			if tt.wantErr != "" {
				if res.Status != StatusError || !strings.Contains(res.Error, tt.wantErr) {
					t.Fatalf("got status %v error %q output %.200s, want error containing %q", res.Status, res.Error, res.Output, tt.wantErr)
				}
				if string(res.Output) != "null" || len(res.Trace) != 1 || res.Trace[0].Outcome != OutcomeError {
					t.Errorf("output %.200s trace %+v", res.Output, res.Trace)
				}
				return
			}
			if res.Status != StatusOK {
				t.Fatalf("status %v: %s", res.Status, res.Error)
			}
			jsonEqual(t, res.Output, tt.want)
		})
	}
}

func TestBranchWithoutMatch(t *testing.T) {
	const src = `
name: b
version: "1"
nodes:
  - id: b
    type: branch
    config:
      conditions:
        - {expression: "event.payload.n > 10", next: r}
  - id: r
    type: respond
    config: {body: big}
triggers:
  - {type: event, event_type: "n", target: b}
`
	p := mustCompile(t, src, Limits{})
	for _, tt := range []struct{ payload, out string }{{`{"n": 11}`, `"big"`}, {`{"n": 1}`, `null`}} {
		t.Run(tt.payload, func(t *testing.T) {
			res := p.Run(context.Background(), Input{Event: event("n", tt.payload)}, "b")
			if res.Status != StatusOK || string(res.Output) != tt.out {
				t.Fatalf("got %v %s %q, want ok %s", res.Status, res.Output, res.Error, tt.out)
			}
		})
	}
	t.Run("non-bool condition at run time", func(t *testing.T) {
		res := p.Run(context.Background(), Input{Event: event("n", `{"n": "str"}`)}, "b")
		if res.Status != StatusError || !strings.Contains(res.Error, `node "b" (branch): condition 0`) {
			t.Fatalf("got %v %q", res.Status, res.Error)
		}
	})
	t.Run("unknown target", func(t *testing.T) {
		res := p.Run(context.Background(), Input{}, "nope")
		if res.Status != StatusError || !strings.Contains(res.Error, `unknown target node "nope"`) {
			t.Fatalf("got %v %q", res.Status, res.Error)
		}
	})
}

// chainFlow is n script nodes in a row.
func chainFlow(n int, script string) string {
	var b strings.Builder
	b.WriteString("name: chain\nversion: \"1\"\nnodes:\n")
	for i := 0; i < n; i++ {
		s, _ := json.Marshal(script)
		b.WriteString("  - id: n" + strconv.Itoa(i) + "\n    type: script\n    config: {script: " + string(s) + "}\n")
		if i+1 < n {
			b.WriteString("    next: n" + strconv.Itoa(i+1) + "\n")
		}
	}
	b.WriteString("triggers:\n  - {type: event, event_type: \">\", target: n0}\n")
	return b.String()
}

func TestRunLimits(t *testing.T) {
	const slow = `let a = 1..1000; all(a, all(a, all(a, true)))`
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		src     string
		lim     Limits
		ctx     context.Context
		wantErr string
		trace   string
	}{
		{
			name:    "step limit",
			src:     chainFlow(5, "1"),
			lim:     Limits{MaxSteps: 3},
			wantErr: `step limit of 3 exceeded before node "n3"`,
			trace:   "n0:ok,n1:ok,n2:ok,n3:skipped",
		},
		{
			name:  "chain within limit",
			src:   chainFlow(5, "1"),
			lim:   Limits{MaxSteps: 5},
			trace: "n0:ok,n1:ok,n2:ok,n3:ok,n4:ok",
		},
		{
			name:    "deadline inside an expression",
			src:     chainFlow(2, slow),
			lim:     Limits{MaxDuration: 50 * time.Millisecond},
			wantErr: `node "n0": run deadline of 50ms exceeded`,
			trace:   "n0:error",
		},
		{
			name:    "loop budget",
			src:     chainFlow(1, slow),
			lim:     Limits{MaxExprBytes: 10000},
			wantErr: "memory budget (10000 bytes)",
			trace:   "n0:error",
		},
		{
			name:    "caller cancelled",
			src:     chainFlow(2, "1"),
			ctx:     cancelled,
			wantErr: `node "n0": run stopped: context canceled`,
			trace:   "n0:skipped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.src, tt.lim)
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			start := time.Now()
			res := p.Run(ctx, Input{Event: event("x", "{}")}, "n0")
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("run took %s", elapsed)
			}
			if got := traceIDs(res.Trace); got != tt.trace {
				t.Errorf("trace = %s, want %s", got, tt.trace)
			}
			if tt.wantErr == "" {
				if res.Status != StatusOK {
					t.Fatalf("status %v: %s", res.Status, res.Error)
				}
				return
			}
			if res.Status != StatusError || !strings.Contains(res.Error, tt.wantErr) {
				t.Fatalf("got %v %q, want error containing %q", res.Status, res.Error, tt.wantErr)
			}
		})
	}
}

func TestConcurrentRuns(t *testing.T) {
	p := mustCompile(t, readFlow(t, "order.yaml"), Limits{})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				res := p.Run(context.Background(), Input{Event: event("order.shipped", `{"id": 1, "total": 2}`)}, "on_order")
				if res.Status != StatusOK {
					t.Errorf("run: %s", res.Error)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestProblemsError(t *testing.T) {
	_, err := Compile([]byte("name: x\n"))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) < 3 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "; ") {
		t.Errorf("Error() = %q", err.Error())
	}
	p := Problem{Line: 12, Column: 5, Path: "nodes[1].next", Message: `unknown node "x"`}
	if got := p.String(); got != `12:5: nodes[1].next: unknown node "x"` {
		t.Errorf("String() = %q", got)
	}
}
