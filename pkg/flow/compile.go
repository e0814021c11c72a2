package flow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/schedule"
)

// Compile parses, validates and compiles a flow with DefaultLimits. On
// failure the error is Problems (use errors.As), listing every problem found,
// each with its line and column.
func Compile(src []byte) (*Program, error) {
	return CompileWithLimits(src, DefaultLimits())
}

// CompileWithLimits is Compile with explicit limits; zero fields of lim take
// their default.
func CompileWithLimits(src []byte, lim Limits) (*Program, error) {
	lim = lim.withDefaults()
	b := &builder{lim: lim, byID: map[string]*nodeDecl{}, exprs: newExprCompiler(lim)}
	p := b.build(src)
	if len(b.problems.list) > 0 {
		return nil, b.problems.sorted()
	}
	return p, nil
}

// builder checks one flow document and compiles it at the same time, so
// that one pass reports every problem.
type builder struct {
	lim      Limits
	problems problemList
	exprs    *exprCompiler

	nodes []*nodeDecl // document order
	byID  map[string]*nodeDecl
	edges []edge // from nodes to nodes
	roots []edge // from triggers to nodes

	triggers []compiledTrigger
}

// nodeDecl is one entry of `nodes` as far as it could be understood.
type nodeDecl struct {
	id     string     // "" when missing or invalid
	idNode *yaml.Node // position of the id
	path   string     // "nodes[3]"
	typ    string
	next   string
	dup    bool // a node with the same id came earlier
	exec   executor
}

// edge is one reference to a node: a next, a branch target or a trigger
// target, with the position of the name.
type edge struct {
	from string // "" for triggers and for nodes without a usable id
	to   string
	at   *yaml.Node
	path string
}

// addEdge records that node n refers to node `to` at value node at.
func (b *builder) addEdge(n *nodeDecl, to string, at *yaml.Node, path string) {
	from := n.id
	if n.dup {
		from = ""
	}
	b.edges = append(b.edges, edge{from: from, to: to, at: at, path: path})
}

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (b *builder) build(src []byte) *Program {
	root := b.parse(src)
	if root == nil {
		return nil
	}
	b.rejectAliases(root, "")
	top, ok := b.mapping(root, "")
	if !ok {
		return nil
	}
	b.onlyKeys(top, "", "name", "version", "nodes", "triggers")

	p := &Program{limits: b.lim, nodes: map[string]*compiledNode{}}
	if name, n, ok := b.requiredString(top, root, "", "name"); ok {
		if !tokenPattern.MatchString(name) {
			b.problems.add(n, "name", "name %q must be a non-empty token of letters, digits, '_' and '-'", name)
		}
		p.name = name
	}
	if version, n, ok := b.requiredString(top, root, "", "version"); ok {
		if strings.TrimSpace(version) == "" {
			b.problems.add(n, "version", "version must not be empty")
		}
		p.version = version
	}
	if kv, ok := top.get("nodes"); !ok {
		b.problems.add(root, "nodes", "missing required key \"nodes\"")
	} else {
		b.buildNodes(kv.value)
	}
	if kv, ok := top.get("triggers"); !ok {
		b.problems.add(root, "triggers", "missing required key \"triggers\": a flow needs at least one trigger")
	} else {
		b.buildTriggers(kv.value)
	}
	b.checkGraph()

	for _, n := range b.nodes {
		if n.id != "" && !n.dup && n.exec != nil {
			p.nodes[n.id] = &compiledNode{id: n.id, typ: n.typ, next: n.next, exec: n.exec}
		}
	}
	p.triggers = b.triggers
	return p
}

// parse reads exactly one YAML document and returns its root node.
func (b *builder) parse(src []byte) (root *yaml.Node) {
	// yaml.v3 is fed with tenant input; a panic in it must reject the
	// document, not crash the caller.
	defer func() {
		if r := recover(); r != nil {
			b.problems.add(nil, "", "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			b.problems.add(nil, "", "empty flow document")
		} else {
			b.addYAMLError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		b.addYAMLError(err)
		return nil
	default:
		b.problems.add(&extra, "", "a flow is a single YAML document; found another one")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		b.problems.add(&doc, "", "empty flow document")
		return nil
	}
	return doc.Content[0]
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// addYAMLError reports a syntax error; yaml.v3 gives only a line in the text.
func (b *builder) addYAMLError(err error) {
	p := Problem{Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
	}
	b.problems.list = append(b.problems.list, p)
}

// rejectAliases reports every alias: expanding them could blow up a small
// document (billion laughs), and flows have no need for them.
func (b *builder) rejectAliases(n *yaml.Node, path string) {
	if n.Kind == yaml.AliasNode {
		b.problems.add(n, path, "YAML aliases are not supported in flows")
		return
	}
	for _, c := range n.Content {
		b.rejectAliases(c, path)
	}
}

// fields is a YAML mapping with string keys, in document order.
type fields struct {
	order []keyValue
}

type keyValue struct {
	name       string
	key, value *yaml.Node
}

func (f fields) get(name string) (keyValue, bool) {
	for _, kv := range f.order {
		if kv.name == name {
			return kv, true
		}
	}
	return keyValue{}, false
}

// mapping reads n as a mapping, reporting non-string and duplicate keys.
func (b *builder) mapping(n *yaml.Node, path string) (fields, bool) {
	if n.Kind != yaml.MappingNode {
		b.problems.add(n, path, "must be a mapping, not %s", describeKind(n))
		return fields{}, false
	}
	var f fields
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			b.problems.add(k, path, "keys must be strings")
			continue
		}
		if first, ok := seen[k.Value]; ok {
			b.problems.add(k, joinPath(path, k.Value), "duplicate key %q (first at %d:%d)", k.Value, first.Line, first.Column)
			continue
		}
		seen[k.Value] = k
		f.order = append(f.order, keyValue{name: k.Value, key: k, value: v})
	}
	return f, true
}

// onlyKeys reports keys of f that are not in allowed.
func (b *builder) onlyKeys(f fields, path string, allowed ...string) {
	for _, kv := range f.order {
		if !slices.Contains(allowed, kv.name) {
			b.problems.add(kv.key, joinPath(path, kv.name), "unknown key %q (allowed: %s)", kv.name, strings.Join(allowed, ", "))
		}
	}
}

// requiredString reads key from f; parent locates the problem if it is missing.
func (b *builder) requiredString(f fields, parent *yaml.Node, path, key string) (string, *yaml.Node, bool) {
	kv, ok := f.get(key)
	if !ok {
		b.problems.add(parent, joinPath(path, key), "missing required key %q", key)
		return "", nil, false
	}
	s, ok := b.stringValue(kv.value, joinPath(path, key))
	return s, kv.value, ok
}

// optionalString reads key from f if present; ok is false if it is absent
// or not a string.
func (b *builder) optionalString(f fields, path, key string) (string, *yaml.Node, bool) {
	kv, ok := f.get(key)
	if !ok {
		return "", nil, false
	}
	s, ok := b.stringValue(kv.value, joinPath(path, key))
	return s, kv.value, ok
}

func (b *builder) stringValue(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			hint = fmt.Sprintf(" (quote it: %q)", n.Value)
		}
		b.problems.add(n, path, "must be a string, not %s%s", describeKind(n), hint)
		return "", false
	}
	return n.Value, true
}

func describeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a " + strings.TrimPrefix(n.ShortTag(), "!!") + " value"
	}
	return "empty"
}

func (b *builder) sequence(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		b.problems.add(n, path, "must be a list, not %s", describeKind(n))
		return nil, false
	}
	return n.Content, true
}

func (b *builder) buildNodes(list *yaml.Node) {
	items, ok := b.sequence(list, "nodes")
	if !ok {
		return
	}
	if len(items) == 0 {
		b.problems.add(list, "nodes", "a flow needs at least one node")
		return
	}
	for i, item := range items {
		b.buildNode(item, fmt.Sprintf("nodes[%d]", i))
	}
}

func (b *builder) buildNode(item *yaml.Node, path string) {
	f, ok := b.mapping(item, path)
	if !ok {
		return
	}
	b.onlyKeys(f, path, append([]string{"id", "type", "config", "next"}, policyKeys...)...)
	n := &nodeDecl{path: path}
	if id, at, ok := b.requiredString(f, item, path, "id"); ok {
		n.idNode = at
		switch first, seen := b.byID[id]; {
		case !tokenPattern.MatchString(id):
			b.problems.add(at, joinPath(path, "id"), "node id %q must be a non-empty token of letters, digits, '_' and '-'", id)
		case seen:
			b.problems.add(at, joinPath(path, "id"), "duplicate node id %q (first defined at %d:%d)", id, first.idNode.Line, first.idNode.Column)
			n.id, n.dup = id, true
		default:
			n.id = id
			b.byID[id] = n
		}
	}
	b.nodes = append(b.nodes, n)

	typ, typNode, typOK := b.requiredString(f, item, path, "type")
	n.typ = typ
	kind, known := nodeKindFor(typ)
	if typOK && !known {
		b.problems.add(typNode, joinPath(path, "type"), "unknown node type %q (known: %s)", typ, strings.Join(knownNodeTypes(), ", "))
	}

	if next, at, ok := b.optionalString(f, path, "next"); ok {
		if known && kind.noNext != "" {
			kv, _ := f.get("next")
			b.problems.add(kv.key, joinPath(path, "next"), "%s", kind.noNext)
		} else {
			n.next = next
			b.addEdge(n, next, at, joinPath(path, "next"))
		}
	}
	policy := b.nodePolicy(f, n, path)

	if !known {
		return
	}
	cfgPath := joinPath(path, "config")
	var cfg fields
	cfgNode := item
	if kv, ok := f.get("config"); ok {
		cfgNode = kv.value
		if cfg, ok = b.mapping(kv.value, cfgPath); !ok {
			return
		}
		b.onlyKeys(cfg, cfgPath, kind.configKeys...)
	} else if kind.configRequired {
		b.problems.add(item, cfgPath, "missing required key \"config\"")
		return
	}
	n.exec = guard(kind.compile(b, n, cfg, cfgNode, cfgPath), policy)
}

func (b *builder) buildTriggers(list *yaml.Node) {
	items, ok := b.sequence(list, "triggers")
	if !ok {
		return
	}
	if len(items) == 0 {
		b.problems.add(list, "triggers", "a flow needs at least one trigger")
		return
	}
	for i, item := range items {
		path := fmt.Sprintf("triggers[%d]", i)
		f, ok := b.mapping(item, path)
		if !ok {
			continue
		}
		typ, typNode, ok := b.requiredString(f, item, path, "type")
		if !ok {
			continue
		}
		target, targetNode, hasTarget := "", (*yaml.Node)(nil), false
		switch typ {
		case "event":
			b.onlyKeys(f, path, "type", "event_type", "target")
			pattern, patNode, patOK := b.requiredString(f, item, path, "event_type")
			if patOK {
				if err := validatePattern(pattern); err != nil {
					b.problems.add(patNode, joinPath(path, "event_type"), "invalid event_type pattern %q: %v", pattern, err)
					patOK = false
				}
			}
			target, targetNode, hasTarget = b.requiredString(f, item, path, "target")
			if patOK && hasTarget {
				b.triggers = append(b.triggers, compiledTrigger{
					Trigger:   Trigger{Index: i, Type: TriggerEvent, EventType: pattern, Target: target},
					pattern:   strings.Split(pattern, "."),
					onResults: len(pattern) > len(resultToken) && strings.HasSuffix(pattern, "."+resultToken),
				})
			}
		case "timer":
			b.onlyKeys(f, path, "type", "cron", "timezone", "event_type", "missed", "target")
			t, ok := b.timerTrigger(f, item, path)
			target, targetNode, hasTarget = b.requiredString(f, item, path, "target")
			if ok && hasTarget {
				t.Index, t.Target = i, target
				b.triggers = append(b.triggers, compiledTrigger{Trigger: t})
			}
		default:
			b.problems.add(typNode, joinPath(path, "type"), "unknown trigger type %q (supported: event, timer)", typ)
			// The target still counts as a root so that its nodes are not
			// also reported as unreachable.
			target, targetNode, hasTarget = b.optionalString(f, path, "target")
		}
		if hasTarget {
			b.roots = append(b.roots, edge{to: target, at: targetNode, path: joinPath(path, "target")})
		}
	}
}

// timerTrigger reads the schedule of a timer trigger: cron (required),
// timezone, event_type and missed.
func (b *builder) timerTrigger(f fields, item *yaml.Node, path string) (Trigger, bool) {
	t := Trigger{Type: TriggerTimer, EventType: DefaultTimerEventType, Missed: MissedFireOnce}
	ok := true
	tz, tzNode, hasTZ := b.optionalString(f, path, "timezone")
	if _, present := f.get("timezone"); present && !hasTZ {
		ok = false
	}
	if hasTZ {
		if _, err := schedule.Location(tz); err != nil {
			b.problems.add(tzNode, joinPath(path, "timezone"), "%v", err)
			ok = false
		}
		t.Timezone = tz
	}
	if spec, specNode, isStr := b.requiredString(f, item, path, "cron"); !isStr {
		ok = false
	} else if _, err := schedule.ParseCron(spec, ""); err != nil {
		b.problems.add(specNode, joinPath(path, "cron"), "invalid cron %q: %v", spec, err)
		ok = false
	} else {
		t.Cron = spec
	}
	if typ, typNode, isStr := b.optionalString(f, path, "event_type"); isStr {
		if err := bus.ValidateEventType(typ); err != nil {
			b.problems.add(typNode, joinPath(path, "event_type"), "%v", err)
			ok = false
		}
		t.EventType = typ
	} else if _, present := f.get("event_type"); present {
		ok = false
	}
	if missed, missedNode, isStr := b.optionalString(f, path, "missed"); isStr {
		switch missed {
		case MissedSkip, MissedFireOnce, MissedFireAll:
			t.Missed = missed
		default:
			b.problems.add(missedNode, joinPath(path, "missed"), "unknown missed-tick policy %q (allowed: %s, %s, %s)", missed, MissedSkip, MissedFireOnce, MissedFireAll)
			ok = false
		}
	} else if _, present := f.get("missed"); present {
		ok = false
	}
	return t, ok
}

// checkGraph reports references to unknown nodes, nodes no trigger can
// reach, and cycles.
func (b *builder) checkGraph() {
	adj := map[string][]edge{}
	for _, e := range append(b.roots[:len(b.roots):len(b.roots)], b.edges...) {
		if _, ok := b.byID[e.to]; !ok {
			b.problems.add(e.at, e.path, "unknown node %q", e.to)
			continue
		}
		if e.from != "" {
			adj[e.from] = append(adj[e.from], e)
		}
	}

	reached := map[string]bool{}
	var queue []string
	for _, r := range b.roots {
		if _, ok := b.byID[r.to]; ok && !reached[r.to] {
			reached[r.to] = true
			queue = append(queue, r.to)
		}
	}
	if len(queue) > 0 {
		for len(queue) > 0 {
			id := queue[0]
			queue = queue[1:]
			for _, e := range adj[id] {
				if !reached[e.to] {
					reached[e.to] = true
					queue = append(queue, e.to)
				}
			}
		}
		for _, n := range b.nodes {
			if n.id != "" && !n.dup && !reached[n.id] {
				b.problems.add(n.idNode, joinPath(n.path, "id"), "node %q is not reachable from any trigger", n.id)
			}
		}
	}

	// Depth-first search in document order; a back edge closes a cycle and
	// is reported where it is written.
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(id string)
	visit = func(id string) {
		state[id] = onStack
		stack = append(stack, id)
		for _, e := range adj[id] {
			switch state[e.to] {
			case unvisited:
				visit(e.to)
			case onStack:
				start := len(stack) - 1
				for stack[start] != e.to {
					start--
				}
				cycle := append(stack[start:len(stack):len(stack)], e.to)
				b.problems.add(e.at, e.path, "cycle: %s", strings.Join(cycle, " -> "))
			}
		}
		stack = stack[:len(stack)-1]
		state[id] = done
	}
	for _, n := range b.nodes {
		if n.id != "" && !n.dup && state[n.id] == unvisited {
			visit(n.id)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
