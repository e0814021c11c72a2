// Package flow parses, validates, compiles and runs Greentic event flows:
// the YAML documents tenants write to process their events.
//
// A flow is compiled once, when it is saved (Compile), and every problem in
// it is reported with its line and column. The compiled Program is then run
// for each matching event (MatchEvent, Run). The package has no I/O of its
// own; node types that talk to the outside world are added as executors
// behind small interfaces: the email, sms, webhook and publish nodes build
// commands (and events) with the id {event id}:{flow}:{node} and hand them to
// the run's Effects, and the http node sends its request with the run's
// HTTPClient (Input.HTTP).
//
// # Triggers
//
//	triggers:
//	  - {type: event, event_type: "order.*", target: on_order}
//	  - {type: event, event_type: "order.created.result", target: audit}
//	  - type: timer
//	    cron: "0 9 * * *"          # 5 fields, 6 with seconds, @daily, @every 5m
//	    timezone: Europe/Paris     # IANA name; default UTC
//	    event_type: report.tick    # type of the ticks; default timer.tick
//	    missed: fire_once          # skip | fire_once (default) | fire_all
//	    target: daily_report
//
// An event trigger's pattern matches event types token by token: "*" one
// token, ">" one or more trailing tokens. The result of a flow is an event
// too, of type {event type}.result; it matches only patterns whose last
// token is "result" (so "order.>" does not see results), and the
// flow-executor never runs a result through the flow that produced it.
// MatchEvent returns the event triggers for a type.
//
// A timer trigger is fired by the timer service: its ticks are events from
// TimerSource whose metadata names the flow (MetaTimerFlow) and the
// trigger's index (MetaTimerTrigger); the executor runs that trigger's
// target only (MatchTimer), and event triggers never see them. The cron
// spec and time zone are validated with package schedule, the parser the
// timer uses. Timers lists them.
//
// # The http node
//
//	nodes:
//	  - id: lookup
//	    type: http
//	    config:
//	      method: POST          # GET (default), HEAD, POST, PUT, PATCH, DELETE
//	      url: "https://api.example.com/orders/{{ event.payload.id }}"
//	      headers: {Authorization: "Bearer {{ event.payload.token }}"}
//	      body: {id: "{{ event.payload.id }}"}
//	      allowed_hosts: [api.example.com, "*.example.net"]
//	      fail_on_status: true  # the default
//	    timeout: 2s
//	    retry: {max_attempts: 3}
//	    on_error: lookup_failed
//
// method, allowed_hosts and fail_on_status are literals checked at Compile
// time; url, headers and body are templates. The rendered url must be an
// absolute http or https URL without credentials. A body that renders to
// a mapping, a list, a number or a boolean is sent as JSON with
// Content-Type application/json (unless a header sets it); a string is
// sent as is. When allowed_hosts is given, the URL's host must be one of
// its entries; "*.example.com" matches any subdomain of example.com (not
// example.com itself). The request carries the run's context and the node's
// timeout. At most Limits.MaxOutputBytes of the response body are read; a
// longer body fails the node. The node's output is
//
//	{"status": 200, "headers": {"content-type": "application/json"}, "body": ...}
//
// with header names in lower case (repeated headers joined with ", ") and
// the body decoded when the response is JSON (Content-Type application/json
// or *+json) and parses, else as text. With fail_on_status (the default), a
// status of 400 or more fails the node. Errors name the method and the URL
// as scheme://host/path: the query, which may carry secrets, and header
// values are never shown. Without Input.HTTP the node fails with ErrNoHTTP.
// The package does not resolve or check addresses itself: the
// flow-executor passes a safehttp client, which refuses private, loopback
// and metadata addresses.
//
// # Timeouts, retries and errors
//
// Every node type accepts three keys next to id, type, config and next:
//
//	timeout: 2s                 # each attempt of the node; at most Limits.MaxDuration
//	retry: {max_attempts: 3, backoff: 200ms, max_backoff: 5s}
//	on_error: fallback          # node to continue at when this one fails
//
// A node that runs past its timeout fails with "node timeout of 2s
// exceeded"; expressions stop at the node timeout as they do at the run
// deadline, which still applies on top of it. retry.max_attempts (2 to 10)
// counts the first attempt; the delay before the next attempt starts at
// backoff (default 200ms) and doubles up to max_backoff (default 5s). Only
// transient failures are retried:
//   - a node timeout;
//   - an HTTP transport error (the server could not be reached, the
//     connection broke), and the statuses 408, 429 and 5xx;
//   - an error of Effects (the command or event could not be published).
//
// Everything else is an error of the flow's own logic and fails at once:
// expression and type errors, other 4xx statuses, a destination refused by
// the HTTP client's policy or by allowed_hosts, a response that is too
// large, ErrNoHTTP and ErrNoEffects. A run deadline reached while waiting
// to retry stops the run. NodeTrace.Attempts counts the attempts made.
//
// When a node with on_error fails (after its retries), its trace has
// Outcome "error", its output (nodes.<id>) is {"error": "<message>"} and the
// run continues at the on_error node, so it can still end ok. on_error is
// an edge of the graph like next: it must name a node, and cycles through
// it are rejected. It does not catch the run deadline, the caller's
// cancellation or the step limit. A failing node without on_error fails the
// run; Result.Transient then says whether the failure was transient (or the
// run was stopped by its deadline or its caller), that is whether running
// the event again later may succeed.
//
// # Expressions
//
// Branch conditions, scripts and {{ }} templates are expr-lang expressions
// (single-quoted strings and `let x = ...; expr` included), compiled at
// Compile time against this environment:
//
//	event   map: id, event_type, source, timestamp (unix ms), payload (the
//	        JSON payload; integral numbers are int, others float64; nil if
//	        the payload is not valid JSON), metadata, tenant, env, subject,
//	        traceparent
//	nodes   map: node id -> that node's output, as decoded from its JSON
//	tenant, env   strings
//	now()   the run's clock (Input.Now)
//
// # What is bounded
//
// A run executes at most Limits.MaxSteps nodes and stops at
// Limits.MaxDuration (or when the caller's context ends). Flows cannot loop:
// cycles are rejected at Compile time. Each expression has at most
// Limits.MaxExprNodes syntax nodes.
//
// expr has no context and no step hook, so an expression runs in the
// calling goroutine and is bounded by rewriting it at compile time:
//   - every loop body (map, filter, all, reduce, sortBy, ...) checks the
//     run's context and charges the size of the value it produced against
//     Limits.MaxExprBytes, so nested loops stop at the deadline and cannot
//     build unbounded collections;
//   - `+` on strings (or on values of unknown type), join, replace, upper,
//     lower, split, splitAfter, toBase64, toJSON, fromJSON and string charge
//     the size of their result before building it, which stops repeated
//     doubling;
//   - expr's own memory budget (elements of ranges, arrays, maps, repeat)
//     stays in force.
//
// Each node's output must encode to JSON within Limits.MaxOutputBytes; the
// size is checked while the value is converted, before it is encoded.
//
// Not bounded: a single call of an expr builtin between two checks (for
// example sort or a regular-expression match on a large payload) runs to
// completion, so the deadline can be overshot by the time of one such call;
// and builtins that are not listed above (trim, indexOf, date functions,
// ...) allocate without being charged, which is safe only because their
// output is no larger than their input.
package flow
