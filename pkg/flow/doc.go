// Package flow parses, validates, compiles and runs Greentic event flows:
// the YAML documents tenants write to process their events.
//
// A flow is compiled once, when it is saved (Compile), and every problem in
// it is reported with its line and column. The compiled Program is then run
// for each matching event (MatchEvent, Run). The package has no I/O of its
// own; node types that talk to the outside world are added as executors
// behind small interfaces: the email, sms, webhook and publish nodes build
// commands (and events) with the id {event id}:{flow}:{node} and hand them to
// the run's Effects.
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
