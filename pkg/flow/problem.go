package flow

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a flow document, located in the YAML source.
type Problem struct {
	Line, Column int    // 1-based, from the yaml.Node of the offending value (0 if unknown)
	Path         string // e.g. "nodes[1].config.conditions[0].expression"
	Message      string
}

// String formats the problem as "line:column: path: message", leaving out
// the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a flow document. Compile returns it as
// its error so that a caller (admin-api) can show all of them at once.
type Problems []Problem

// Error joins all problems with "; ".
func (ps Problems) Error() string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// problemList collects problems while a document is checked.
type problemList struct {
	list Problems
}

func (l *problemList) add(n *yaml.Node, path, format string, args ...any) {
	p := Problem{Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	l.list = append(l.list, p)
}

// sorted returns the problems in source order; problems found by later
// passes (graph checks) are interleaved with the ones found while walking.
func (l *problemList) sorted() Problems {
	out := slices.Clone(l.list)
	slices.SortStableFunc(out, func(a, b Problem) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Column, b.Column)
	})
	return out
}
