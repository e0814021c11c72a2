package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/expr-lang/expr/vm"

	gevent "github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Program is a compiled flow. It is immutable and safe for concurrent Runs.
type Program struct {
	name, version string
	limits        Limits
	nodes         map[string]*compiledNode
	triggers      []compiledTrigger
}

type compiledNode struct {
	id, typ string
	next    string
	exec    executor
}

// Name is the flow's name.
func (p *Program) Name() string { return p.name }

// Version is the flow's version string.
func (p *Program) Version() string { return p.version }

// Input is what a run sees.
type Input struct {
	Event       *eventsv1.Event
	Tenant, Env string           // empty: taken from the event
	Now         func() time.Time // nil => time.Now
	// Effects carries out email, sms, webhook and publish nodes; without
	// it those nodes fail with ErrNoEffects.
	Effects Effects
	// HTTP sends the requests of http nodes; without it they fail with
	// ErrNoHTTP. Requests carry the run's context (and the node's timeout).
	HTTP HTTPClient
}

// Status is the outcome of a run.
type Status int

const (
	StatusOK Status = iota
	StatusError
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusError:
		return "error"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is the outcome of a run.
type Result struct {
	Status Status
	// Output is the respond node's body as JSON; if the run ends without a
	// respond node, the last node's output; null if there is none (and on
	// error).
	Output json.RawMessage
	Error  string
	// Transient is set when the run failed for a reason that may go away:
	// the failing node's last error was transient (a node timeout, an HTTP
	// transport error or a 408, 429 or 5xx status, an error of Effects), or
	// the run was stopped by its deadline or the caller's context. Running
	// the event again later may succeed. Step limits and errors of the
	// flow's own logic are not transient.
	Transient bool
	Trace     []NodeTrace
}

// NodeTrace records one node of a run.
type NodeTrace struct {
	ID, Type string
	Duration time.Duration
	Outcome  string // "ok", "error", "skipped"
	Error    string
	// Attempts is how many times the node ran: 1, more when it was
	// retried, 0 when it was skipped.
	Attempts int
}

// Outcomes of NodeTrace.
const (
	OutcomeOK      = "ok"
	OutcomeError   = "error"
	OutcomeSkipped = "skipped"
)

// errRunDeadline is the cause of a run's own deadline, to tell it apart
// from the caller cancelling.
var errRunDeadline = errors.New("run deadline exceeded")

// run is the state of one execution of a Program.
type run struct {
	ctx    context.Context
	p      *Program
	in     Input
	ev     *eventsv1.Event
	tenant string
	now    func() time.Time
	env    map[string]any
	nodes  map[string]any
	sb     *sandbox
	vm     vm.VM
}

// Run executes the flow from node target. It never panics: a panic becomes
// an error result.
func (p *Program) Run(ctx context.Context, in Input, target string) (res Result) {
	res.Output = nullJSON
	defer func() {
		if v := recover(); v != nil {
			res.Status, res.Output = StatusError, nullJSON
			res.Error = fmt.Sprintf("internal error: %v", v)
		}
	}()
	fail := func(format string, args ...any) Result {
		res.Status, res.Output = StatusError, nullJSON
		res.Error = fmt.Sprintf(format, args...)
		return res
	}
	// halted fails a run stopped by its deadline or by the caller.
	halted := func(msg string) Result {
		res.Transient = true
		return fail("%s", msg)
	}
	if _, ok := p.nodes[target]; !ok {
		return fail("unknown target node %q", target)
	}

	ctx, cancel := context.WithTimeoutCause(ctx, p.limits.MaxDuration, errRunDeadline)
	defer cancel()
	r := p.newRun(ctx, in)

	stopped := func(id string) string {
		if errors.Is(context.Cause(ctx), errRunDeadline) {
			return fmt.Sprintf("node %q: run deadline of %s exceeded", id, p.limits.MaxDuration)
		}
		return fmt.Sprintf("node %q: run stopped: %v", id, context.Cause(ctx))
	}

	steps := 0
	for id := target; id != ""; {
		n, ok := p.nodes[id]
		if !ok { // validated at compile time; kept for safety
			return fail("unknown node %q", id)
		}
		if ctx.Err() != nil {
			res.Trace = append(res.Trace, NodeTrace{ID: n.id, Type: n.typ, Outcome: OutcomeSkipped, Error: "run stopped"})
			return halted(stopped(n.id))
		}
		if steps++; steps > p.limits.MaxSteps {
			res.Trace = append(res.Trace, NodeTrace{ID: n.id, Type: n.typ, Outcome: OutcomeSkipped, Error: "step limit exceeded"})
			return fail("step limit of %d exceeded before node %q", p.limits.MaxSteps, n.id)
		}

		start := time.Now()
		st, attempts, err := r.execute(n.exec)
		var out json.RawMessage
		if err == nil {
			out, err = encodeJSON(st.out, p.limits.MaxOutputBytes)
			if err != nil {
				err = fmt.Errorf("output: %w", err)
			}
		}
		trace := NodeTrace{ID: n.id, Type: n.typ, Duration: time.Since(start), Outcome: OutcomeOK, Attempts: attempts}
		if err != nil {
			trace.Outcome, trace.Error = OutcomeError, err.Error()
		}
		res.Trace = append(res.Trace, trace)
		if err != nil {
			if ctx.Err() != nil {
				return halted(stopped(n.id))
			}
			_, pol := policyOf(n.exec)
			if pol.onError == "" {
				res.Transient = isTransient(err)
				tries := ""
				if attempts > 1 {
					tries = fmt.Sprintf(" (after %d attempts)", attempts)
				}
				return fail("node %q (%s): %v%s", n.id, n.typ, err, tries)
			}
			// on_error: the node's output is its error, and the run goes
			// on at the on_error node.
			st = step{out: map[string]any{"error": err.Error()}, next: pol.onError}
			if out, err = encodeJSON(st.out, p.limits.MaxOutputBytes); err != nil {
				return fail("node %q (%s): output: %v", n.id, n.typ, err)
			}
		}
		res.Output = out

		switch {
		case st.end:
			id = ""
		case st.next != "":
			id = st.next
		default:
			id = n.next
		}
		if id == "" {
			break // no later expression reads this output
		}
		// Later expressions see the output as JSON would give it back.
		stored, err := decodeJSON(out)
		if err != nil {
			return fail("node %q (%s): output: %v", n.id, n.typ, err)
		}
		r.nodes[n.id] = stored
	}
	res.Status = StatusOK
	return res
}

func (p *Program) newRun(ctx context.Context, in Input) *run {
	ev := in.Event
	if ev == nil {
		ev = &eventsv1.Event{}
	}
	var payload any
	if len(ev.Payload) > 0 {
		if v, err := decodeJSON(ev.Payload); err == nil {
			payload = v
		}
	}
	metadata := make(map[string]any, len(ev.Metadata))
	for k, v := range ev.Metadata {
		metadata[k] = v
	}
	event := map[string]any{
		"id":          ev.Id,
		"event_type":  ev.EventType,
		"source":      ev.Source,
		"timestamp":   int(ev.Timestamp),
		"payload":     payload,
		"metadata":    metadata,
		"tenant":      ev.Tenant,
		"env":         ev.Env,
		"subject":     ev.Subject,
		"traceparent": ev.Traceparent,
	}
	tenant, envName := in.Tenant, in.Env
	if tenant == "" {
		tenant = ev.Tenant
	}
	if envName == "" {
		envName = ev.Env
	}
	now := in.Now
	if now == nil {
		now = time.Now
	}
	sb := &sandbox{ctx: ctx, limit: p.limits.MaxExprBytes}
	nodes := map[string]any{}
	return &run{
		ctx:    ctx,
		p:      p,
		in:     in,
		ev:     ev,
		tenant: tenant,
		now:    now,
		env:    newEnv(event, nodes, tenant, envName, now, sb),
		nodes:  nodes,
		sb:     sb,
		// expr's own budget (counted in elements of ranges, arrays and
		// maps it builds) stays at its default.
		vm: vm.VM{},
	}
}

// eval evaluates one expression with a fresh budget.
func (r *run) eval(e *expression) (any, error) {
	if r.ctx.Err() != nil {
		return nil, fmt.Errorf("evaluation stopped: %w", context.Cause(r.ctx))
	}
	r.sb.reset()
	v, err := r.vm.Run(e.prog, r.env)
	if err != nil {
		switch {
		case r.ctx.Err() != nil:
			return nil, fmt.Errorf("evaluation stopped: %w", context.Cause(r.ctx))
		case errors.Is(err, errExprBudget):
			return nil, fmt.Errorf("%w (%d bytes) in %q", errExprBudget, r.p.limits.MaxExprBytes, shorten(e.src))
		}
		return nil, fmt.Errorf("%w in %q", describeExprError(err), shorten(e.src))
	}
	return v, nil
}

func shorten(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// FlowResult is the result message of a run of flow's trigger on ev that
// started and finished at the given times: what the flow-executor
// publishes and a dry run returns.
func (r Result) FlowResult(ev *eventsv1.Event, flow string, trig Trigger, started, finished time.Time) *eventsv1.FlowResult {
	res := &eventsv1.FlowResult{
		EventId:     ev.Id,
		EventType:   ev.EventType,
		Tenant:      ev.Tenant,
		Env:         ev.Env,
		Flow:        flow,
		Trigger:     strconv.Itoa(trig.Index) + ":" + trig.Target,
		Status:      eventsv1.FlowStatus_FLOW_STATUS_OK,
		Output:      r.Output,
		Error:       r.Error,
		StartedAt:   started.UnixMilli(),
		FinishedAt:  finished.UnixMilli(),
		Traceparent: gevent.ChildTraceparent(ev.Traceparent),
	}
	if r.Status != StatusOK {
		res.Status = eventsv1.FlowStatus_FLOW_STATUS_ERROR
	}
	for _, nt := range r.Trace {
		res.Trace = append(res.Trace, &eventsv1.NodeTrace{
			Id: nt.ID, Type: nt.Type, DurationMicros: nt.Duration.Microseconds(), Outcome: nt.Outcome, Error: nt.Error, Attempts: int32(nt.Attempts),
		})
	}
	return res
}
