package flow

import (
	"context"
	"errors"
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
