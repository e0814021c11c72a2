package flow

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The header every bad flow below starts with: lines 1-3.
const header = "name: f\nversion: \"1\"\nnodes:\n"

// badFlows are documents with one known problem each; FuzzCompile uses
// them as seeds too.
var badFlows = []struct {
	name string
	src  string
	// at is the problem's "line:column", want a substring of it.
	at, want string
}{
	{
		name: "duplicate node id",
		src: header + `  - {id: a, type: respond}
  - id: a
    type: respond
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "5:9", want: `duplicate node id "a" (first defined at 4:10)`,
	},
	{
		name: "dangling next",
		src: header + `  - id: a
    type: script
    config: {script: "1"}
    next: nowhere
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:11", want: `nodes[0].next: unknown node "nowhere"`,
	},
	{
		name: "dangling condition next",
		src: header + `  - id: a
    type: branch
    config:
      conditions:
        - expression: "true"
          next: b
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "9:17", want: `nodes[0].config.conditions[0].next: unknown node "b"`,
	},
	{
		name: "dangling default",
		src: header + `  - id: a
    type: branch
    config:
      conditions: [{expression: "true", next: a2}]
      default: zz
  - {id: a2, type: respond}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:16", want: `unknown node "zz"`,
	},
	{
		name: "dangling trigger target",
		src: header + `  - {id: a, type: respond}
triggers:
  - {type: event, event_type: x, target: a}
  - type: event
    event_type: y
    target: b
`,
		at: "9:13", want: `triggers[1].target: unknown node "b"`,
	},
	{
		name: "unreachable node",
		src: header + `  - {id: a, type: respond}
  - {id: lonely, type: respond}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "5:10", want: `node "lonely" is not reachable from any trigger`,
	},
	{
		name: "cycle",
		src: header + `  - id: a
    type: script
    config: {script: "1"}
    next: b
  - id: b
    type: script
    config: {script: "2"}
    next: a
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "11:11", want: "cycle: a -> b -> a",
	},
	{
		name: "self loop through branch",
		src: header + `  - id: a
    type: branch
    config:
      conditions:
        - {expression: "true", next: a}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:38", want: "cycle: a -> a",
	},
	{
		name: "unknown top-level key",
		src: `name: f
version: "1"
descripton: typo
nodes:
  - {id: a, type: respond}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "3:1", want: `descripton: unknown key "descripton"`,
	},
	{
		name: "unknown node key",
		src: header + `  - id: a
    type: respond
    nxt: b
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:5", want: `unknown key "nxt" (allowed: id, type, config, next, timeout, retry, on_error)`,
	},
	{
		name: "unknown config key",
		src: header + `  - id: a
    type: script
    config:
      script: "1"
      timeout: 5s
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:7", want: `nodes[0].config.timeout: unknown key "timeout" (allowed: script)`,
	},
	{
		name: "unknown trigger key",
		src: header + `  - {id: a, type: respond}
triggers:
  - {type: event, event_type: x, target: a, filter: y}
`,
		at: "6:45", want: `unknown key "filter"`,
	},
	{
		name: "unknown node type",
		src: header + `  - id: a
    type: respnd
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "5:11", want: `unknown node type "respnd" (known: branch, respond, script, email, sms, webhook, publish, http)`,
	},
	{
		name: "http bad method",
		src: header + `  - id: a
    type: http
    config:
      method: BREW
      url: https://api.example.com/x
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:15", want: `nodes[0].config.method: method "BREW" is not one of GET, HEAD, POST, PUT, PATCH, DELETE`,
	},
	{
		name: "http templated method",
		src: header + `  - id: a
    type: http
    config:
      method: "{{ event.payload.m }}"
      url: https://api.example.com/x
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:15", want: `(the method cannot be a template)`,
	},
	{
		name: "http missing url",
		src: header + `  - id: a
    type: http
    config:
      method: GET
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:7", want: `nodes[0].config.url: missing required key "url" for an http node`,
	},
	{
		name: "http relative url",
		src: header + `  - id: a
    type: http
    config:
      url: /orders
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:12", want: `url "/orders" is not an absolute http(s) URL`,
	},
	{
		name: "http url with credentials",
		src: header + `  - id: a
    type: http
    config:
      url: "https://u:p@api.example.com/"
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:12", want: `url must not carry credentials`,
	},
	{
		name: "http bad allowed host",
		src: header + `  - id: a
    type: http
    config:
      url: "https://{{ event.payload.host }}/x"
      allowed_hosts: [api.example.com, "https://x.example.com"]
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:40", want: `nodes[0].config.allowed_hosts[1]: allowed host "https://x.example.com" is a URL, not a host`,
	},
	{
		name: "http bare wildcard",
		src: header + `  - id: a
    type: http
    config:
      url: "https://{{ event.payload.host }}/x"
      allowed_hosts: ["*"]
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:23", want: `allowed host "*" would allow every host`,
	},
	{
		name: "http literal url not allowed",
		src: header + `  - id: a
    type: http
    config:
      url: https://evil.example.org/x?token=s3cret
      allowed_hosts: ["*.example.com"]
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:12", want: `host "evil.example.org" is not in allowed_hosts`,
	},
	{
		name: "http bad header name",
		src: header + `  - id: a
    type: http
    config:
      url: https://api.example.com/x
      headers: {"X Bad": v}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:17", want: `"X Bad" is not a valid header name`,
	},
	{
		name: "http fail_on_status not bool",
		src: header + `  - id: a
    type: http
    config:
      url: https://api.example.com/x
      fail_on_status: "no"
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:23", want: `fail_on_status must be true or false, not a string`,
	},
	{
		name: "http unknown config key",
		src: header + `  - id: a
    type: http
    config:
      url: https://api.example.com/x
      timeout: 2s
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:7", want: `nodes[0].config.timeout: unknown key "timeout" (allowed: method, url, headers, body, allowed_hosts, fail_on_status)`,
	},
	{
		name: "timeout not a duration",
		src: header + `  - id: a
    type: respond
    timeout: abc
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:14", want: `nodes[0].timeout: timeout "abc" is not a duration such as "2s" or "500ms"`,
	},
	{
		name: "timeout beyond run deadline",
		src: header + `  - id: a
    type: respond
    timeout: 10s
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:14", want: `timeout "10s" is longer than the run deadline of 5s`,
	},
	{
		name: "timeout not positive",
		src: header + `  - id: a
    type: respond
    timeout: 0s
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:14", want: `timeout "0s" must be positive`,
	},
	{
		name: "timeout without unit",
		src: header + `  - id: a
    type: respond
    timeout: 2
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:14", want: `timeout must be a duration such as "2s" or "500ms", not an integer`,
	},
	{
		name: "retry max_attempts 1",
		src: header + `  - id: a
    type: respond
    retry: {max_attempts: 1}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:27", want: `nodes[0].retry.max_attempts: max_attempts 1 must be from 2 to 10`,
	},
	{
		name: "retry max_attempts 11",
		src: header + `  - id: a
    type: respond
    retry: {max_attempts: 11}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:27", want: `max_attempts 11 must be from 2 to 10`,
	},
	{
		name: "retry max_attempts not a number",
		src: header + `  - id: a
    type: respond
    retry: {max_attempts: three}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:27", want: `max_attempts must be an integer from 2 to 10, not a string`,
	},
	{
		name: "retry without max_attempts",
		src: header + `  - id: a
    type: respond
    retry: {backoff: 1s}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:12", want: `nodes[0].retry.max_attempts: missing required key "max_attempts"`,
	},
	{
		name: "unknown retry key",
		src: header + `  - id: a
    type: respond
    retry:
      max_attempts: 3
      jitter: 1s
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:7", want: `nodes[0].retry.jitter: unknown key "jitter" (allowed: max_attempts, backoff, max_backoff)`,
	},
	{
		name: "retry bad backoff",
		src: header + `  - id: a
    type: respond
    retry: {max_attempts: 3, backoff: soon}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:39", want: `nodes[0].retry.backoff: backoff "soon" is not a duration`,
	},
	{
		name: "retry backoff above max_backoff",
		src: header + `  - id: a
    type: respond
    retry: {max_attempts: 3, backoff: 2s, max_backoff: 1s}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:39", want: `backoff 2s is longer than max_backoff 1s`,
	},
	{
		name: "retry not a mapping",
		src: header + `  - id: a
    type: respond
    retry: 3
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:12", want: `nodes[0].retry: must be a mapping, not an integer`,
	},
	{
		name: "on_error to unknown node",
		src: header + `  - id: a
    type: respond
    on_error: fallback
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:15", want: `nodes[0].on_error: unknown node "fallback"`,
	},
	{
		name: "on_error not a string",
		src: header + `  - id: a
    type: respond
    on_error: [b]
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "6:15", want: `nodes[0].on_error: must be a string, not a list`,
	},
	{
		name: "on_error cycle",
		src: header + `  - id: a
    type: script
    config: {script: "1"}
    next: b
  - id: b
    type: script
    config: {script: "2"}
    on_error: a
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "11:15", want: `nodes[1].on_error: cycle: a -> b -> a`,
	},
	{
		name: "on_error to itself",
		src: header + `  - id: a
    type: script
    config: {script: "1"}
    on_error: a
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:15", want: `cycle: a -> a`,
	},
	{
		name: "bad expression",
		src: header + `  - id: a
    type: branch
    config:
      conditions:
        - expression: "event.event_type == "
          next: a2
  - {id: a2, type: respond}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:23", want: "invalid expression: unexpected token EOF (at expression 1:20)",
	},
	{
		name: "unknown name in script",
		src: header + `  - id: a
    type: script
    config:
      script: "evnt.payload"
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:15", want: "invalid script: unknown name evnt (at expression 1:1)",
	},
	{
		name: "bad template",
		src: header + `  - id: a
    type: respond
    config:
      body:
        list:
          - "{{ event.id + }}"
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "9:13", want: "nodes[0].config.body.list[0]: invalid template expression {{ event.id + }}",
	},
	{
		name: "unclosed template",
		src: header + `  - id: a
    type: respond
    config:
      body: "hello {{ event.id"
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:13", want: `invalid template: "{{" without a closing "}}"`,
	},
	{
		name: "non-bool branch condition",
		src: header + `  - id: a
    type: branch
    config:
      conditions:
        - {expression: "'yes'", next: a2}
  - {id: a2, type: respond}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:24", want: "expected bool, but got string",
	},
	{
		name: "branch without conditions",
		src: header + `  - id: a
    type: branch
    config:
      conditions: []
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "7:19", want: "a branch needs at least one condition",
	},
	{
		name: "branch with next",
		src: header + `  - id: a
    type: branch
    config:
      conditions: [{expression: "true", next: b}]
    next: b
  - {id: b, type: respond}
triggers:
  - {type: event, event_type: x, target: a}
`,
		at: "8:5", want: "a branch node routes through its conditions and default; it cannot have next",
	},
	{
		name: "respond with next",
		src: header + `  - id: a
    type: respond
    next: b
  - {id: b, type: respond}
triggers:
  - {type: event, event_type: x, target: a}
  - {type: event, event_type: y, target: b}
`,
		at: "6:5", want: "a respond node ends the run; it cannot have next",
	},
	{
		name: "bad pattern",
		src: header + `  - {id: a, type: respond}
triggers:
  - type: event
    event_type: "order.>.x"
    target: a
`,
		at: "7:17", want: `invalid event_type pattern "order.>.x": ">" must be the last token`,
	},
	{
		name: "partial wildcard",
		src: header + `  - {id: a, type: respond}
triggers:
  - {type: event, event_type: "order.cr*", target: a}
`,
		at: "6:31", want: `"*" and ">" must be whole tokens`,
	},
	{
		name: "empty token",
		src: header + `  - {id: a, type: respond}
triggers:
  - {type: event, event_type: "order..x", target: a}
`,
		at: "6:31", want: "empty token",
	},
	{
		name: "missing triggers",
		src:  header + "  - {id: a, type: respond}\n",
		at:   "1:1", want: `missing required key "triggers"`,
	},
	{
		name: "empty triggers",
		src:  header + "  - {id: a, type: respond}\ntriggers: []\n",
		at:   "5:11", want: "a flow needs at least one trigger",
	},
	{
		name: "unknown trigger type",
		src: header + `  - {id: a, type: respond}
triggers:
  - {type: webhook, target: a}
`,
		at: "6:12", want: `unknown trigger type "webhook"`,
	},
	{
		name: "no nodes",
		src:  "name: f\nversion: \"1\"\nnodes: []\ntriggers: []\n",
		at:   "3:8", want: "a flow needs at least one node",
	},
	{
		name: "bad name",
		src:  "name: my flow\nversion: \"1\"\nnodes:\n  - {id: a, type: respond}\ntriggers:\n  - {type: event, event_type: x, target: a}\n",
		at:   "1:7", want: `name "my flow" must be a non-empty token`,
	},
	{
		name: "unquoted version",
		src:  "name: f\nversion: 1.0\nnodes:\n  - {id: a, type: respond}\ntriggers:\n  - {type: event, event_type: x, target: a}\n",
		at:   "2:10", want: `version: must be a string, not a number (quote it: "1.0")`,
	},
	{
		name: "bad node id",
		src:  header + "  - {id: a.b, type: respond}\ntriggers:\n  - {type: event, event_type: x, target: a.b}\n",
		at:   "4:10", want: `node id "a.b" must be a non-empty token`,
	},
	{
		name: "missing id",
		src:  header + "  - type: respond\ntriggers:\n  - {type: event, event_type: x, target: a}\n",
		at:   "4:5", want: `nodes[0].id: missing required key "id"`,
	},
	{
		name: "duplicate key",
		src:  "name: f\nname: g\nversion: \"1\"\nnodes:\n  - {id: a, type: respond}\ntriggers:\n  - {type: event, event_type: x, target: a}\n",
		at:   "2:1", want: `duplicate key "name" (first at 1:1)`,
	},
	{
		name: "alias",
		src:  "name: &n f\nversion: *n\nnodes:\n  - {id: a, type: respond}\ntriggers:\n  - {type: event, event_type: x, target: a}\n",
		at:   "2:10", want: "YAML aliases are not supported",
	},
	{
		name: "yaml syntax error",
		src:  "name: f\nversion: \"1\nnodes: [\n",
		at:   "2:0", want: "invalid YAML: line 2: found unexpected end of stream",
	},
	{
		name: "not a mapping",
		src:  "- a\n- b\n",
		at:   "1:1", want: "must be a mapping, not a list",
	},
	{
		name: "empty document",
		src:  "",
		at:   "0:0", want: "empty flow document",
	},
	{
		name: "two documents",
		src:  header + "  - {id: a, type: respond}\ntriggers:\n  - {type: event, event_type: x, target: a}\n---\nname: g\n",
		at:   "7:1", want: "a flow is a single YAML document",
	},
	{
		name: "expression too large",
		src:  header + "  - id: a\n    type: script\n    config:\n      script: \"" + strings.Repeat("1 + ", 6000) + "1\"\ntriggers:\n  - {type: event, event_type: x, target: a}\n",
		at:   "7:15", want: "exceeds maximum allowed nodes",
	},
}

func TestCompileProblems(t *testing.T) {
	for _, tt := range badFlows {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile([]byte(tt.src))
			if err == nil {
				t.Fatalf("Compile succeeded, want a problem at %s containing %q", tt.at, tt.want)
			}
			if p != nil {
				t.Errorf("Compile returned a program with an error")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error %T is not Problems: %v", err, err)
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

// TestAllProblemsReported checks that one document with several mistakes
// reports all of them, not just the first.
func TestAllProblemsReported(t *testing.T) {
	src := `name: f
version: "1"
extra: 1
nodes:
  - id: a
    type: script
    config: {script: "1 +"}
    next: missing
  - id: a
    type: http
triggers:
  - {type: timer, target: a}
`
	_, err := Compile([]byte(src))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		`3:1: extra: unknown key "extra"`,
		`7:22: nodes[0].config.script: invalid script: unexpected token EOF (at expression 1:3)`,
		`8:11: nodes[0].next: unknown node "missing"`,
		`9:5: nodes[1].config: missing required key "config"`,
		`9:9: nodes[1].id: duplicate node id "a"`,
		`12:5: triggers[0].cron: missing required key "cron"`,
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(ps), len(want), strings.ReplaceAll(err.Error(), "; ", "\n"))
	}
	for i := range min(len(ps), len(want)) {
		if !strings.HasPrefix(ps[i].String(), want[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, ps[i].String(), want[i])
		}
	}
}
