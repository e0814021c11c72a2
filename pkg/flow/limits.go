package flow

import "time"

// Limits bound a run. Zero fields take the value from DefaultLimits.
type Limits struct {
	// MaxSteps is the number of nodes one run may execute.
	MaxSteps int
	// MaxDuration is the run deadline, applied on top of the caller's
	// context. A node's timeout and its retry delays cannot exceed it.
	MaxDuration time.Duration
	// MaxExprNodes bounds the size of each expression's syntax tree (expr.MaxNodes).
	MaxExprNodes uint
	// MaxExprBytes bounds the memory one expression evaluation may account
	// for: values produced by loop iterations and by string-building
	// functions (see the package documentation).
	MaxExprBytes int
	// MaxOutputBytes bounds the JSON encoding of each node's output (and
	// the response body an http node reads).
	MaxOutputBytes int
}

// DefaultLimits returns the limits Compile uses.
func DefaultLimits() Limits {
	return Limits{
		MaxSteps:       100,
		MaxDuration:    5 * time.Second,
		MaxExprNodes:   10000,
		MaxExprBytes:   16 << 20,
		MaxOutputBytes: 1 << 20,
	}
}

// withDefaults fills zero (or negative) fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSteps <= 0 {
		l.MaxSteps = d.MaxSteps
	}
	if l.MaxDuration <= 0 {
		l.MaxDuration = d.MaxDuration
	}
	if l.MaxExprNodes == 0 {
		l.MaxExprNodes = d.MaxExprNodes
	}
	if l.MaxExprBytes <= 0 {
		l.MaxExprBytes = d.MaxExprBytes
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	return l
}
