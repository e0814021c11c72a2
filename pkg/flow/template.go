package flow

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// template is a YAML value whose strings may hold {{ expr }} placeholders,
// compiled once and rendered on every run.
type template interface {
	render(r *run) (any, error)
}

type literalTemplate struct{ v any }

func (t literalTemplate) render(*run) (any, error) { return t.v, nil }

// exprTemplate is a string that is exactly one {{ expr }}: it renders to the
// expression's value with its own type (number, map, ...).
type exprTemplate struct{ e *expression }

func (t exprTemplate) render(r *run) (any, error) { return r.eval(t.e) }

// textTemplate mixes text and expressions; the values are stringified and
// joined.
type textTemplate struct{ parts []templatePart }

type templatePart struct {
	text string
	e    *expression // nil for text
}

func (t textTemplate) render(r *run) (any, error) {
	var b strings.Builder
	limit := r.p.limits.MaxOutputBytes
	for _, p := range t.parts {
		s := p.text
		if p.e != nil {
			v, err := r.eval(p.e)
			if err != nil {
				return nil, err
			}
			if s, err = stringify(v, limit); err != nil {
				return nil, fmt.Errorf("template {{ %s }}: %w", p.e.src, err)
			}
		}
		if b.Len()+len(s) > limit {
			return nil, fmt.Errorf("%w: rendered text exceeds %d bytes", errOutputTooLarge, limit)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

type mapTemplate struct {
	keys []string
	vals []template
}

func (t mapTemplate) render(r *run) (any, error) {
	out := make(map[string]any, len(t.keys))
	for i, k := range t.keys {
		v, err := t.vals[i].render(r)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

type listTemplate []template

func (t listTemplate) render(r *run) (any, error) {
	out := make([]any, len(t))
	for i, x := range t {
		v, err := x.render(r)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// compileTemplate compiles a YAML value, reporting every bad placeholder.
func (b *builder) compileTemplate(n *yaml.Node, path string) template {
	switch n.Kind {
	case yaml.MappingNode:
		t := mapTemplate{}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				b.problems.add(k, path, "keys must be scalars")
				continue
			}
			if seen[k.Value] {
				b.problems.add(k, path, "duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			t.keys = append(t.keys, k.Value)
			t.vals = append(t.vals, b.compileTemplate(v, joinPath(path, k.Value)))
		}
		return t
	case yaml.SequenceNode:
		t := make(listTemplate, len(n.Content))
		for i, x := range n.Content {
			t[i] = b.compileTemplate(x, fmt.Sprintf("%s[%d]", path, i))
		}
		return t
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" && strings.Contains(n.Value, "{{") {
			return b.compileTextTemplate(n, path)
		}
		var v any
		if err := n.Decode(&v); err != nil {
			b.problems.add(n, path, "invalid value: %v", err)
			return literalTemplate{}
		}
		return literalTemplate{v: v}
	}
	// Aliases were reported when the document was read.
	return literalTemplate{}
}

func (b *builder) compileTextTemplate(n *yaml.Node, path string) template {
	raw, err := splitTemplate(n.Value)
	if err != nil {
		b.problems.add(n, path, "invalid template: %v", err)
		return literalTemplate{}
	}
	parts := make([]templatePart, 0, len(raw))
	ok := true
	for _, p := range raw {
		if !p.isExpr {
			parts = append(parts, templatePart{text: p.text})
			continue
		}
		e, err := b.exprs.compile(p.text, false)
		if err != nil {
			b.problems.add(n, path, "invalid template expression {{ %s }}: %v", p.text, err)
			ok = false
			continue
		}
		parts = append(parts, templatePart{e: e})
	}
	if !ok {
		return literalTemplate{}
	}
	if len(parts) == 1 && parts[0].e != nil && isWholeTemplate(n.Value) {
		return exprTemplate{e: parts[0].e}
	}
	return textTemplate{parts: parts}
}

type rawTemplatePart struct {
	text   string
	isExpr bool
}

// splitTemplate splits s into text and {{ expr }} parts. The expression ends
// at the first "}}", so an expression cannot contain "}}" itself.
func splitTemplate(s string) ([]rawTemplatePart, error) {
	var parts []rawTemplatePart
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			parts = append(parts, rawTemplatePart{text: s})
			break
		}
		if i > 0 {
			parts = append(parts, rawTemplatePart{text: s[:i]})
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			return nil, errors.New(`"{{" without a closing "}}"`)
		}
		src := strings.TrimSpace(s[i+2 : i+2+j])
		if src == "" {
			return nil, errors.New("empty {{ }}")
		}
		parts = append(parts, rawTemplatePart{text: src, isExpr: true})
		s = s[i+2+j+2:]
	}
	return parts, nil
}

// isWholeTemplate reports whether s, ignoring surrounding space, is a single
// {{ expr }}.
func isWholeTemplate(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "{{") && strings.Index(t, "}}") == len(t)-2
}
