package flow

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// nodeKind is what the compiler knows about one node type. A new node type
// is one more case in nodeKindFor: its config keys, whether it may name a
// successor, and a compile function returning its executor.
type nodeKind struct {
	configKeys     []string
	configRequired bool
	// noNext, when set, is the problem reported for a node-level `next`.
	noNext string
	// compile checks the node's config (already checked for unknown keys)
	// and returns its executor; references to other nodes are recorded with
	// b.addEdge. at locates problems about missing config keys.
	compile func(b *builder, n *nodeDecl, cfg fields, at *yaml.Node, path string) executor
}

func nodeKindFor(typ string) (nodeKind, bool) {
	switch typ {
	case "branch":
		return nodeKind{
			configKeys:     []string{"conditions", "default"},
			configRequired: true,
			noNext:         "a branch node routes through its conditions and default; it cannot have next",
			compile:        compileBranch,
		}, true
	case "respond":
		return nodeKind{
			configKeys: []string{"body"},
			noNext:     "a respond node ends the run; it cannot have next",
			compile:    compileRespond,
		}, true
	case "script":
		return nodeKind{
			configKeys:     []string{"script"},
			configRequired: true,
			compile:        compileScript,
		}, true
	case "email":
		return nodeKind{configKeys: emailKeys, configRequired: true, compile: compileEmail}, true
	case "sms":
		return nodeKind{configKeys: smsKeys, configRequired: true, compile: compileSMS}, true
	case "webhook":
		return nodeKind{configKeys: webhookKeys, configRequired: true, compile: compileWebhook}, true
	case "publish":
		return nodeKind{configKeys: publishKeys, configRequired: true, compile: compilePublish}, true
	case "http":
		return nodeKind{configKeys: httpKeys, configRequired: true, compile: compileHTTP}, true
	}
	return nodeKind{}, false
}

func knownNodeTypes() []string {
	return []string{"branch", "respond", "script", "email", "sms", "webhook", "publish", "http"}
}

// executor runs one compiled node.
type executor interface {
	exec(r *run) (step, error)
}

// step is what a node did.
type step struct {
	out  any    // the node's output, stored in nodes.<id>
	next string // the next node; "" means the node's own next
	end  bool   // the run ends after this node
}

type branchCondition struct {
	cond *expression
	next string
}

type branchExec struct {
	conditions []branchCondition
	fallback   string // config.default
}

func (x branchExec) exec(r *run) (step, error) {
	for i, c := range x.conditions {
		v, err := r.eval(c.cond)
		if err != nil {
			return step{}, fmt.Errorf("condition %d: %w", i, err)
		}
		ok, isBool := v.(bool)
		if !isBool {
			return step{}, fmt.Errorf("condition %d: result is %T, not a boolean", i, v)
		}
		if ok {
			return step{out: c.next, next: c.next}, nil
		}
	}
	if x.fallback != "" {
		return step{out: x.fallback, next: x.fallback}, nil
	}
	return step{end: true}, nil
}

func compileBranch(b *builder, n *nodeDecl, cfg fields, at *yaml.Node, path string) executor {
	x := branchExec{}
	ok := true
	condPath := joinPath(path, "conditions")
	kv, found := cfg.get("conditions")
	switch {
	case !found:
		b.problems.add(at, condPath, "a branch needs at least one condition")
		ok = false
	default:
		items, isList := b.sequence(kv.value, condPath)
		if !isList {
			ok = false
			break
		}
		if len(items) == 0 {
			b.problems.add(kv.value, condPath, "a branch needs at least one condition")
			ok = false
		}
		for i, item := range items {
			p := fmt.Sprintf("%s[%d]", condPath, i)
			c, isMap := b.mapping(item, p)
			if !isMap {
				ok = false
				continue
			}
			b.onlyKeys(c, p, "expression", "next")
			var bc branchCondition
			if src, srcNode, isStr := b.requiredString(c, item, p, "expression"); isStr {
				e, err := b.exprs.compile(src, true)
				if err != nil {
					b.problems.add(srcNode, joinPath(p, "expression"), "invalid expression: %v", err)
					ok = false
				}
				bc.cond = e
			} else {
				ok = false
			}
			if next, nextNode, isStr := b.requiredString(c, item, p, "next"); isStr {
				bc.next = next
				b.addEdge(n, next, nextNode, joinPath(p, "next"))
			} else {
				ok = false
			}
			x.conditions = append(x.conditions, bc)
		}
	}
	if def, defNode, isStr := b.optionalString(cfg, path, "default"); isStr {
		x.fallback = def
		b.addEdge(n, def, defNode, joinPath(path, "default"))
	} else if _, present := cfg.get("default"); present {
		ok = false
	}
	if !ok {
		return nil
	}
	return x
}

type scriptExec struct{ script *expression }

func (x scriptExec) exec(r *run) (step, error) {
	v, err := r.eval(x.script)
	if err != nil {
		return step{}, err
	}
	return step{out: v}, nil
}

func compileScript(b *builder, _ *nodeDecl, cfg fields, at *yaml.Node, path string) executor {
	src, srcNode, ok := b.requiredString(cfg, at, path, "script")
	if !ok {
		return nil
	}
	e, err := b.exprs.compile(src, false)
	if err != nil {
		b.problems.add(srcNode, joinPath(path, "script"), "invalid script: %v", err)
		return nil
	}
	return scriptExec{script: e}
}

type respondExec struct{ body template }

func (x respondExec) exec(r *run) (step, error) {
	v, err := x.body.render(r)
	if err != nil {
		return step{}, fmt.Errorf("body: %w", err)
	}
	return step{out: v, end: true}, nil
}

func compileRespond(b *builder, _ *nodeDecl, cfg fields, _ *yaml.Node, path string) executor {
	kv, ok := cfg.get("body")
	if !ok {
		return respondExec{body: literalTemplate{}}
	}
	before := len(b.problems.list)
	body := b.compileTemplate(kv.value, joinPath(path, "body"))
	if len(b.problems.list) > before {
		return nil
	}
	return respondExec{body: body}
}
