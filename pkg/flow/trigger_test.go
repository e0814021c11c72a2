package flow

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestTimerTriggers(t *testing.T) {
	src := `name: reports
version: "1"
nodes:
  - {id: daily, type: respond, config: {body: "{{ event.metadata.timer_trigger }}"}}
  - {id: on_order, type: respond}
triggers:
  - type: event
    event_type: order.created
    target: on_order
  - type: timer
    cron: "0 9 * * *"
    target: daily
  - type: timer
    cron: "*/30 * * * * *"
    timezone: Europe/Paris
    event_type: report.tick
    missed: fire_all
    target: daily
`
	p, err := Compile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Trigger{
		{Index: 1, Type: TriggerTimer, Target: "daily", EventType: DefaultTimerEventType, Cron: "0 9 * * *", Missed: MissedFireOnce},
		{Index: 2, Type: TriggerTimer, Target: "daily", EventType: "report.tick", Cron: "*/30 * * * * *", Timezone: "Europe/Paris", Missed: MissedFireAll},
	}
	if got := p.Timers(); !reflect.DeepEqual(got, want) {
		t.Errorf("Timers() = %+v\nwant %+v", got, want)
	}
	if got := p.Triggers(); len(got) != 3 || got[0].Type != TriggerEvent || got[0].EventType != "order.created" || !reflect.DeepEqual(got[1:], want) {
		t.Errorf("Triggers() = %+v", got)
	}
	if tr, ok := p.MatchTimer(2); !ok || tr.Target != "daily" || tr.EventType != "report.tick" {
		t.Errorf("MatchTimer(2) = %+v, %v", tr, ok)
	}
	for _, i := range []int{0, 3, -1} {
		if tr, ok := p.MatchTimer(i); ok {
			t.Errorf("MatchTimer(%d) = %+v, want none (not a timer trigger)", i, tr)
		}
	}
	// Event triggers never match a tick's type through a timer trigger.
	if got := p.MatchEvent("timer.tick"); len(got) != 0 {
		t.Errorf("MatchEvent(timer.tick) = %+v, want none", got)
	}
	if got := p.MatchEvent("order.created"); len(got) != 1 || got[0].Type != TriggerEvent {
		t.Errorf("MatchEvent(order.created) = %+v", got)
	}
}

func TestTimerTriggerProblems(t *testing.T) {
	tests := []struct{ name, trigger, at, want string }{
		{"missing cron", "{type: timer, target: a}", "6:5", `missing required key "cron"`},
		{"bad cron", `{type: timer, cron: "0 25 * * *", target: a}`, "6:25", `invalid cron "0 25 * * *"`},
		{"four fields", `{type: timer, cron: "0 9 * *", target: a}`, "6:25", "expected 5 to 6 fields"},
		{"cron not a string", "{type: timer, cron: 5, target: a}", "6:25", "must be a string"},
		{"tz prefix", `{type: timer, cron: "CRON_TZ=UTC 0 9 * * *", target: a}`, "6:25", "timezone setting"},
		{"bad zone", `{type: timer, cron: "@daily", timezone: Moon/Base, target: a}`, "6:45", `unknown time zone "Moon/Base"`},
		{"bad tick type", `{type: timer, cron: "@daily", event_type: "a.*", target: a}`, "6:47", "invalid event_type"},
		{"bad missed", `{type: timer, cron: "@daily", missed: always, target: a}`, "6:43", `unknown missed-tick policy "always"`},
		{"unknown key", `{type: timer, cron: "@daily", every: 5m, target: a}`, "6:35", `unknown key "every"`},
		{"missing target", `{type: timer, cron: "@daily"}`, "6:5", `missing required key "target"`},
		{"unknown target", `{type: timer, cron: "@daily", target: b}`, "6:43", `unknown node "b"`},
		{"short interval", `{type: timer, cron: "@every 100ms", target: a}`, "6:25", "at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := header + "  - {id: a, type: respond}\ntriggers:\n  - " + tt.trigger + "\n"
			_, err := Compile([]byte(src))
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Compile = %v, want Problems", err)
			}
			for _, pr := range ps {
				if fmt.Sprintf("%d:%d", pr.Line, pr.Column) == tt.at && strings.Contains(pr.String(), tt.want) {
					return
				}
			}
			t.Errorf("no problem at %s containing %q; got:\n%s", tt.at, tt.want, strings.ReplaceAll(err.Error(), "; ", "\n"))
		})
	}
}

func TestResultTriggers(t *testing.T) {
	src := `name: chain
version: "1"
nodes:
  - {id: a, type: respond}
triggers:
  - {type: event, event_type: "order.>", target: a}
  - {type: event, event_type: "order.*.result", target: a}
  - {type: event, event_type: "*.result", target: a}
`
	p, err := Compile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	indexes := func(typ string) []int {
		var out []int
		for _, tr := range p.MatchEvent(typ) {
			out = append(out, tr.Index)
		}
		return out
	}
	for typ, want := range map[string][]int{
		"order.created":               {0},
		"order.created.result":        {1}, // not order.>: results need a pattern ending in result
		"signup.result":               {2},
		"order.created.result.result": nil,
		"result":                      nil,
	} {
		if got := indexes(typ); !reflect.DeepEqual(got, want) {
			t.Errorf("MatchEvent(%q) = %v, want %v", typ, got, want)
		}
	}
	if !p.OnResults() {
		t.Error("OnResults() = false")
	}
	q, err := Compile([]byte(header + "  - {id: a, type: respond}\ntriggers:\n  - {type: event, event_type: \"order.>\", target: a}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if q.OnResults() {
		t.Error("OnResults() = true for a flow without result triggers")
	}
}
