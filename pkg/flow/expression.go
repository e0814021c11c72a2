package flow

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// Names the sandbox adds to every expression environment. The sandbox
// patcher rewrites expressions to call them; they are harmless if a flow
// author calls them directly.
const (
	checkFuncName  = "__flow_check"
	addFuncName    = "__flow_add"
	concatFuncName = "__flow_concat"
	loopVarName    = "__flow_v"
)

// errExprBudget is returned when one evaluation accounts for more bytes than
// Limits.MaxExprBytes allows.
var errExprBudget = errors.New("expression exceeded its memory budget")

// expression is one compiled expr program and the source it came from.
type expression struct {
	src  string
	prog *vm.Program
}

// exprCompiler compiles every expression of one flow against the same
// representative environment, so names and types are checked when the flow
// is saved rather than when it runs.
type exprCompiler struct {
	env      map[string]any
	maxNodes uint
}

func newExprCompiler(lim Limits) *exprCompiler {
	return &exprCompiler{
		env:      newEnv(representativeEvent(), map[string]any{}, "", "", time.Now, &sandbox{}),
		maxNodes: lim.MaxExprNodes,
	}
}

// compile compiles src; asBool makes a non-boolean result a compile error
// where expr can tell the type statically (and a runtime error otherwise).
func (c *exprCompiler) compile(src string, asBool bool) (e *expression, err error) {
	// expr is a third-party parser fed with tenant input: a panic in it must
	// reject the flow, not crash the caller.
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("expression could not be compiled: %v", r)
		}
	}()
	opts := []expr.Option{
		expr.Env(c.env),
		expr.MaxNodes(c.maxNodes),
		expr.Patch(sandboxPatcher{}),
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, describeExprError(err)
	}
	return &expression{src: src, prog: prog}, nil
}

// describeExprError turns expr's multi-line error (with a source snippet)
// into one line that keeps expr's own position inside the expression.
func describeExprError(err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return err
	}
	msg := fe.Message
	if fe.Line > 0 {
		msg = fmt.Sprintf("%s (at expression %d:%d)", msg, fe.Line, fe.Column+1)
	}
	return errors.New(msg)
}

// representativeEvent has every key a run's event map has, so that a typo
// such as event.evnt_type is still a runtime nil, but the map's shape is the
// same at compile time and at run time.
func representativeEvent() map[string]any {
	return map[string]any{
		"id": "", "event_type": "", "source": "", "timestamp": 0, "payload": nil,
		"metadata": map[string]any{}, "tenant": "", "env": "", "subject": "", "traceparent": "",
	}
}

// newEnv builds an expression environment. The same builder makes the
// representative environment used at compile time and the per-run one, so
// both always have the same names and types.
func newEnv(event, nodes map[string]any, tenant, envName string, now func() time.Time, sb *sandbox) map[string]any {
	return map[string]any{
		"event":  event,
		"nodes":  nodes,
		"tenant": tenant,
		"env":    envName,
		"now":    now,

		checkFuncName:  sb.check,
		addFuncName:    sb.add,
		concatFuncName: sb.concat,

		// Builtins whose output can be much larger than their input are
		// replaced by versions that charge the run's budget first.
		"upper":      sb.upper,
		"lower":      sb.lower,
		"toBase64":   sb.toBase64,
		"split":      sb.split,
		"splitAfter": sb.splitAfter,
		"join":       sb.join,
		"replace":    sb.replace,
		"toJSON":     sb.toJSON,
		"fromJSON":   sb.fromJSON,
		"string":     sb.toString,
	}
}

// sandboxPatcher rewrites an expression so that evaluation can be stopped:
//   - every predicate body (map, filter, all, reduce, ...) becomes
//     `let v = body; __flow_check(v); v`, so each loop iteration checks the
//     run's context and charges the size of its value to the budget;
//   - `+` that may concatenate strings calls a function that charges the
//     size of the result before building it.
type sandboxPatcher struct{}

func (sandboxPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.PredicateNode:
		body := n.Node
		loc := body.Location()
		check := &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: checkFuncName},
			Arguments: []ast.Node{&ast.IdentifierNode{Value: loopVarName}},
		}
		seq := &ast.SequenceNode{Nodes: []ast.Node{check, &ast.IdentifierNode{Value: loopVarName}}}
		decl := &ast.VariableDeclaratorNode{Name: loopVarName, Value: body, Expr: seq}
		for _, x := range []ast.Node{check, check.Callee, check.Arguments[0], seq, seq.Nodes[1], decl} {
			x.SetLocation(loc)
		}
		n.Node = decl
	case *ast.BinaryNode:
		if n.Operator != "+" {
			return
		}
		fn, ok := addFuncFor(n.Left.Type(), n.Right.Type())
		if !ok {
			return
		}
		ast.Patch(node, &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: fn},
			Arguments: []ast.Node{n.Left, n.Right},
		})
	}
}

// addFuncFor picks the checked replacement for `l + r`. Numeric, time and
// mismatched static types are left alone: they cannot build strings, and
// the checker must still report a mismatch such as 1 + "a".
func addFuncFor(l, r reflect.Type) (string, bool) {
	ls, rs := isStringType(l), isStringType(r)
	lu, ru := isUnknownType(l), isUnknownType(r)
	switch {
	case ls && rs:
		return concatFuncName, true
	case (ls || lu) && (rs || ru):
		return addFuncName, true
	}
	return "", false
}

func isStringType(t reflect.Type) bool  { return t != nil && t.Kind() == reflect.String }
func isUnknownType(t reflect.Type) bool { return t == nil || t.Kind() == reflect.Interface }

// sandbox carries the per-evaluation state the patched expression and the
// replaced builtins consult. One sandbox serves one run (one goroutine).
type sandbox struct {
	ctx   context.Context
	limit int
	used  int
}

// reset starts the budget of a new evaluation.
func (s *sandbox) reset() { s.used = 0 }

// charge accounts n bytes and reports whether evaluation may continue.
func (s *sandbox) charge(n int) error {
	if s.ctx == nil { // the representative sandbox is never evaluated
		return nil
	}
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("evaluation stopped: %w", context.Cause(s.ctx))
	}
	if n < 0 || s.used+n > s.limit {
		return errExprBudget
	}
	s.used += n
	return nil
}

func (s *sandbox) remaining() int { return s.limit - s.used }

func (s *sandbox) check(v any) (bool, error) {
	return true, s.charge(sizeOf(v, s.remaining()+1) + 1)
}

func (s *sandbox) add(a, b any) (any, error) {
	if as, ok := a.(string); ok {
		if bs, ok := b.(string); ok {
			return s.concat(as, bs)
		}
	}
	return runtime.Add(a, b), nil
}

func (s *sandbox) concat(a, b string) (string, error) {
	if err := s.charge(len(a) + len(b)); err != nil {
		return "", err
	}
	return a + b, nil
}

func (s *sandbox) upper(v string) (string, error) {
	if err := s.charge(len(v)); err != nil {
		return "", err
	}
	return strings.ToUpper(v), nil
}

func (s *sandbox) lower(v string) (string, error) {
	if err := s.charge(len(v)); err != nil {
		return "", err
	}
	return strings.ToLower(v), nil
}

func (s *sandbox) toBase64(v string) (string, error) {
	if err := s.charge(base64.StdEncoding.EncodedLen(len(v))); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString([]byte(v)), nil
}

func (s *sandbox) split(v, sep string, n ...int) ([]string, error) {
	limit := -1
	if len(n) > 0 {
		limit = n[0]
	}
	if err := s.charge(16 * (strings.Count(v, sep) + 1)); err != nil {
		return nil, err
	}
	return strings.SplitN(v, sep, limit), nil
}

func (s *sandbox) splitAfter(v, sep string, n ...int) ([]string, error) {
	limit := -1
	if len(n) > 0 {
		limit = n[0]
	}
	if err := s.charge(16 * (strings.Count(v, sep) + 1)); err != nil {
		return nil, err
	}
	return strings.SplitAfterN(v, sep, limit), nil
}

func (s *sandbox) join(list any, glue ...string) (string, error) {
	sep := ""
	if len(glue) > 0 {
		sep = glue[0]
	}
	var parts []string
	switch l := list.(type) {
	case []string:
		parts = l
	case []any:
		parts = make([]string, len(l))
		for i, x := range l {
			str, ok := x.(string)
			if !ok {
				return "", fmt.Errorf("join: element %d is %T, not a string", i, x)
			}
			parts[i] = str
		}
	default:
		return "", fmt.Errorf("join: cannot join %T", list)
	}
	size := len(sep) * max(len(parts)-1, 0)
	for _, p := range parts {
		size += len(p)
	}
	if err := s.charge(size); err != nil {
		return "", err
	}
	return strings.Join(parts, sep), nil
}

func (s *sandbox) replace(v, old, repl string, n ...int) (string, error) {
	limit := -1
	count := strings.Count(v, old)
	if len(n) > 0 {
		limit = n[0]
		if limit >= 0 && limit < count {
			count = limit
		}
	}
	if err := s.charge(max(len(v)+count*(len(repl)-len(old)), 0)); err != nil {
		return "", err
	}
	return strings.Replace(v, old, repl, limit), nil
}

func (s *sandbox) toJSON(v any) (string, error) {
	// Indentation can make the text larger than sizeOf's estimate; the
	// remainder is charged after encoding.
	est := sizeOf(v, s.remaining()+1)
	if err := s.charge(est); err != nil {
		return "", err
	}
	b, err := marshalIndent(v)
	if err != nil {
		return "", err
	}
	if len(b) > est {
		if err := s.charge(len(b) - est); err != nil {
			return "", err
		}
	}
	return string(b), nil
}

func (s *sandbox) fromJSON(v string) (any, error) {
	if err := s.charge(2 * len(v)); err != nil {
		return nil, err
	}
	return decodeJSON([]byte(v))
}

func (s *sandbox) toString(v any) (string, error) {
	if err := s.charge(sizeOf(v, s.remaining()+1)); err != nil {
		return "", err
	}
	if str, ok := v.(string); ok {
		return str, nil
	}
	return fmt.Sprintf("%v", v), nil
}

// sizeOf estimates the memory v holds, generously, and stops counting once
// the estimate passes limit so that sizing a huge value stays cheap.
func sizeOf(v any, limit int) int {
	switch t := v.(type) {
	case nil, bool:
		return 1
	case string:
		return 16 + len(t)
	case int, int64, float64, time.Duration:
		return 8
	case time.Time:
		return 24
	case []any:
		n := 24
		for _, x := range t {
			if n > limit {
				break
			}
			n += sizeOf(x, limit-n)
		}
		return n
	case []string:
		n := 24
		for _, x := range t {
			if n > limit {
				break
			}
			n += 16 + len(x)
		}
		return n
	case map[string]any:
		n := 48
		for k, x := range t {
			if n > limit {
				break
			}
			n += 16 + len(k) + sizeOf(x, limit-n)
		}
		return n
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		n := 24
		for i := 0; i < rv.Len() && n <= limit; i++ {
			n += sizeOf(rv.Index(i).Interface(), limit-n)
		}
		return n
	case reflect.Map:
		n := 48
		it := rv.MapRange()
		for it.Next() && n <= limit {
			n += sizeOf(it.Key().Interface(), limit-n) + sizeOf(it.Value().Interface(), limit-n)
		}
		return n
	case reflect.String:
		return 16 + rv.Len()
	}
	return 16
}
