package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Node-level keys valid on every node type, next to id, type, config and
// next.
var policyKeys = []string{"timeout", "retry", "on_error"}

// Retry defaults and bounds.
const (
	minRetryAttempts  = 2
	maxRetryAttempts  = 10
	defaultBackoff    = 200 * time.Millisecond
	defaultMaxBackoff = 5 * time.Second
)

// nodePolicy is what the node-level keys timeout, retry and on_error say
// about running a node.
type nodePolicy struct {
	timeout     time.Duration // 0: only the run deadline applies
	maxAttempts int           // 1 when the node is not retried
	backoff     time.Duration // delay before the second attempt
	maxBackoff  time.Duration // the delay doubles up to this
	onError     string        // node to continue at when this one fails
}

var defaultPolicy = nodePolicy{maxAttempts: 1}

// guarded is a node's executor together with its node-level policy. Its
// exec runs one attempt without the policy; the run loop unwraps it
// (policyOf) and applies the policy around the inner executor.
type guarded struct {
	inner  executor
	policy nodePolicy
}

func (g guarded) exec(r *run) (step, error) { return g.inner.exec(r) }

// guard attaches a policy to an executor; a nil executor (the node's config
// had problems) stays nil.
func guard(x executor, p nodePolicy) executor {
	if x == nil {
		return nil
	}
	return guarded{inner: x, policy: p}
}

// policyOf splits a compiled node's executor into the executor proper and
// its policy.
func policyOf(x executor) (executor, nodePolicy) {
	if g, ok := x.(guarded); ok {
		return g.inner, g.policy
	}
	return x, defaultPolicy
}

// transientError marks a failure that may not happen again: a node timeout,
// an HTTP transport error or a 408, 429 or 5xx status, an error of Effects.
// Only transient failures are retried, and a run that fails with one says
// so in Result.Transient.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

func transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err: err}
}

func isTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}

// nodePolicy reads the node-level keys timeout, retry and on_error of the
// node n (a mapping f at path); on_error is an edge of the graph.
func (b *builder) nodePolicy(f fields, n *nodeDecl, path string) nodePolicy {
	p := defaultPolicy
	if kv, ok := f.get("timeout"); ok {
		if d, ok := b.duration(kv.value, joinPath(path, "timeout"), "timeout"); ok {
			p.timeout = d
		}
	}
	if kv, ok := f.get("retry"); ok {
		p.maxAttempts, p.backoff, p.maxBackoff = b.retryPolicy(kv.value, joinPath(path, "retry"))
	}
	if to, at, ok := b.optionalString(f, path, "on_error"); ok {
		p.onError = to
		b.addEdge(n, to, at, joinPath(path, "on_error"))
	}
	return p
}

// duration reads a duration such as "2s" that must be positive and within
// the run deadline (a longer one could never be reached).
func (b *builder) duration(n *yaml.Node, path, key string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		b.problems.add(n, path, "%s must be a duration such as \"2s\" or \"500ms\", not %s", key, describeKind(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		b.problems.add(n, path, "%s %q is not a duration such as \"2s\" or \"500ms\"", key, n.Value)
		return 0, false
	case d <= 0:
		b.problems.add(n, path, "%s %q must be positive", key, n.Value)
		return 0, false
	case d > b.lim.MaxDuration:
		b.problems.add(n, path, "%s %q is longer than the run deadline of %s", key, n.Value, b.lim.MaxDuration)
		return 0, false
	}
	return d, true
}

// retryPolicy reads `retry: {max_attempts, backoff, max_backoff}`.
func (b *builder) retryPolicy(n *yaml.Node, path string) (attempts int, backoff, maxBackoff time.Duration) {
	attempts, backoff, maxBackoff = 1, defaultBackoff, defaultMaxBackoff
	f, ok := b.mapping(n, path)
	if !ok {
		return
	}
	b.onlyKeys(f, path, "max_attempts", "backoff", "max_backoff")
	if kv, ok := f.get("max_attempts"); !ok {
		b.problems.add(n, joinPath(path, "max_attempts"), "missing required key \"max_attempts\" (%d to %d)", minRetryAttempts, maxRetryAttempts)
	} else {
		v, err := parseInt(kv.value)
		switch {
		case err != nil:
			b.problems.add(kv.value, joinPath(path, "max_attempts"), "max_attempts must be an integer from %d to %d, not %s", minRetryAttempts, maxRetryAttempts, describeKind(kv.value))
		case v < minRetryAttempts || v > maxRetryAttempts:
			b.problems.add(kv.value, joinPath(path, "max_attempts"), "max_attempts %d must be from %d to %d (it counts the first attempt)", v, minRetryAttempts, maxRetryAttempts)
		default:
			attempts = v
		}
	}
	var backoffNode *yaml.Node
	explicitMax := false
	if kv, ok := f.get("backoff"); ok {
		if d, ok := b.duration(kv.value, joinPath(path, "backoff"), "backoff"); ok {
			backoff, backoffNode = d, kv.value
		}
	}
	if kv, ok := f.get("max_backoff"); ok {
		if d, ok := b.duration(kv.value, joinPath(path, "max_backoff"), "max_backoff"); ok {
			maxBackoff, explicitMax = d, true
		}
	}
	switch {
	case backoffNode != nil && explicitMax && backoff > maxBackoff:
		b.problems.add(backoffNode, joinPath(path, "backoff"), "backoff %s is longer than max_backoff %s", backoff, maxBackoff)
	case backoff > maxBackoff:
		// Only one of them was given: the cap wins.
		backoff = maxBackoff
	}
	return
}

func parseInt(n *yaml.Node) (int, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, errors.New("not an integer")
	}
	var v int
	if err := n.Decode(&v); err != nil {
		return 0, err
	}
	return v, nil
}

// setContext makes ctx the context the node's expressions and requests see.
func (r *run) setContext(ctx context.Context) {
	r.ctx = ctx
	r.sb.ctx = ctx
}

// execute runs one node with its policy: each attempt under its own timeout,
// transient failures retried with a doubling delay. It returns the step of
// the last attempt, the number of attempts and the last error. The run's
// context is r.ctx when it is called and when it returns.
func (r *run) execute(exec executor) (st step, attempts int, err error) {
	x, p := policyOf(exec)
	runCtx := r.ctx
	defer r.setContext(runCtx)
	delay := p.backoff
	for attempts = 1; ; attempts++ {
		st, err = r.attempt(runCtx, x, p.timeout)
		if err == nil || attempts >= p.maxAttempts || !isTransient(err) || runCtx.Err() != nil {
			return st, attempts, err
		}
		if !sleep(runCtx, delay) {
			return st, attempts, err
		}
		delay = min(2*delay, p.maxBackoff)
	}
}

// attempt runs x once, under the node timeout if there is one.
func (r *run) attempt(runCtx context.Context, x executor, timeout time.Duration) (step, error) {
	if timeout <= 0 {
		r.setContext(runCtx)
		return x.exec(r)
	}
	timedOut := transient(fmt.Errorf("node timeout of %s exceeded", timeout))
	ctx, cancel := context.WithTimeoutCause(runCtx, timeout, timedOut)
	defer cancel()
	r.setContext(ctx)
	st, err := x.exec(r)
	if err != nil && runCtx.Err() == nil && errors.Is(context.Cause(ctx), timedOut) {
		// Whatever the node saw of it (an expression stopped, a request
		// cancelled), the failure is the timeout.
		err = timedOut
	}
	return st, err
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
