package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func FuzzCompile(f *testing.F) {
	for _, name := range []string{"testdata/order.yaml", "../../examples/flows/handle_event.yaml"} {
		good, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(good))
	}
	f.Add(scriptFlow(`let p = event.payload; map(p.items ?? [], # * 2)`))
	f.Add(scriptFlow(`reduce(1..64, #acc + #acc, 'ab')`))
	f.Add(chainFlow(3, `nodes.n0 ?? 1`))
	f.Add("name: f\nversion: \"1\"\nnodes:\n  - id: r\n    type: respond\n    config:\n      body: {a: \"{{ event.payload }}\", b: [\"x {{ 1 + 1 }} y\", 2]}\ntriggers:\n  - {type: event, event_type: \"a.*.>\", target: r}\n")
	f.Add(strings.Replace(httpFlow("      method: POST\n      url: \"https://{{ event.payload.id }}.example.com/x?q=1\"\n      headers: {X-A: \"{{ event.payload.total }}\"}\n      body: {a: [1, \"{{ event.payload.items }}\"]}\n      allowed_hosts: [\"*.example.com\", 10.0.0.1]\n      fail_on_status: false\n",
		"    timeout: 20ms\n    retry: {max_attempts: 2, backoff: 1ms, max_backoff: 5ms}\n    on_error: handle\n"), "triggers:", handleError+"triggers:", 1))
	for _, b := range badFlows {
		f.Add(b.src)
	}

	lim := Limits{MaxDuration: 100 * time.Millisecond}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := CompileWithLimits([]byte(src), lim)
		if err != nil {
			if p != nil {
				t.Fatalf("program returned with error %v", err)
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %v", err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil program without error")
		}
		// A compiled flow must run without panicking from every trigger.
		for _, eventType := range []string{"order.created", "x", "a.b.c"} {
			for _, tr := range p.MatchEvent(eventType) {
				res := p.Run(context.Background(), Input{Event: event(eventType, `{"id": 1, "total": 2, "items": [1]}`)}, tr.Target)
				if strings.HasPrefix(res.Error, "internal error") {
					t.Fatalf("run %s: %s", tr.Target, res.Error)
				}
				if res.Status == StatusOK && len(res.Output) == 0 {
					t.Fatalf("ok run without output")
				}
			}
		}
	})
}

// FuzzExpression runs arbitrary expressions as a script, a branch
// condition and a template against an arbitrary payload: compiling and
// running never panics, and a run never outlives its deadline by much.
func FuzzExpression(f *testing.F) {
	seeds := []struct{ expr, payload string }{
		{`event.event_type == 'order.created' && event.payload.total > 10`, `{"total": 12}`},
		{`let p = event.payload; map(p.items ?? [], # * 2)`, `{"items": [1, 2, 3]}`},
		{`reduce(1..1000000, #acc + 1, 0)`, `{}`},
		{`repeat('x', 1 << 30)`, `{}`},
		{`reduce(1..64, #acc + #acc, 'ab')`, `{}`},
		{`toJSON(event) + string(nodes) + tenant + env`, `[1, {"a": null}]`},
		{`filter(1..100000, all(1..100000, # > 0))`, `{}`},
		{`event.payload.a.b.c ?? now().Year()`, `{"a": {"b": 1}}`},
		{`sortBy(event.payload, #.n)`, `[{"n": 2}, {"n": 1}]`},
		{`upper(join(split(event.id, ""), "-"))`, `"s"`},
		{`int(event.payload) / 0`, `7`},
		{`fromJSON(event.payload.raw)`, `{"raw": "[[[[[[[[[[]]]]]]]]]]"}`},
	}
	for _, s := range seeds {
		f.Add(s.expr, s.payload)
	}
	lim := Limits{MaxDuration: 50 * time.Millisecond, MaxExprBytes: 1 << 20, MaxOutputBytes: 64 << 10}
	f.Fuzz(func(t *testing.T, expr, payload string) {
		quoted, _ := json.Marshal(expr)
		tmpl, _ := json.Marshal("{{ " + expr + " }}")
		src := "name: f\nversion: \"1\"\nnodes:\n" +
			"  - {id: s, type: script, config: {script: " + string(quoted) + "}, next: b}\n" +
			"  - id: b\n    type: branch\n    config:\n      conditions:\n        - {expression: " + string(quoted) + ", next: r}\n      default: r\n" +
			"  - {id: r, type: respond, config: {body: {v: " + string(tmpl) + "}}}\n" +
			"triggers:\n  - {type: event, event_type: \">\", target: s}\n"
		// A hang is reported with its input rather than as a stalled fuzzer.
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("compile and run of %q on %q still going after 10s", expr, payload)) })
		defer watchdog.Stop()
		p, err := CompileWithLimits([]byte(src), lim)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %v", err)
			}
			return
		}
		start := time.Now()
		res := p.Run(context.Background(), Input{Event: event("order.created", payload)}, "s")
		if took := time.Since(start); took > lim.MaxDuration+2*time.Second {
			t.Fatalf("run took %s with a deadline of %s", took, lim.MaxDuration)
		}
		if strings.HasPrefix(res.Error, "internal error") {
			t.Fatalf("%q: %s", expr, res.Error)
		}
		if res.Status == StatusOK && !json.Valid(res.Output) {
			t.Fatalf("%q: invalid output %q", expr, res.Output)
		}
	})
}
