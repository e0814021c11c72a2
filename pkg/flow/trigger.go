package flow

import (
	"errors"
	"strings"
	"unicode"
)

// Trigger is one event trigger of a flow.
type Trigger struct {
	Index     int    // position in the document's triggers list
	Type      string // "event"
	EventType string // the pattern as written
	Target    string // node id the run starts at
}

type compiledTrigger struct {
	Trigger
	pattern []string // EventType split on '.'
}

// validatePattern checks an event_type pattern: non-empty dot-separated
// tokens, "*" only as a whole token, ">" only as the whole last token.
func validatePattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	tokens := strings.Split(p, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return errors.New("empty token")
		case t == ">":
			if i != len(tokens)-1 {
				return errors.New(`">" must be the last token`)
			}
		case t == "*":
		case strings.ContainsAny(t, "*>"):
			return errors.New(`"*" and ">" must be whole tokens`)
		case strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			return errors.New("whitespace in token")
		}
	}
	return nil
}

// matchPattern reports whether the tokens of an event type match a pattern:
// "*" matches exactly one token, ">" one or more remaining tokens.
func matchPattern(pattern, tokens []string) bool {
	for i, p := range pattern {
		if p == ">" {
			return len(tokens) > i
		}
		if i >= len(tokens) || (p != "*" && p != tokens[i]) {
			return false
		}
	}
	return len(tokens) == len(pattern)
}

// MatchEvent returns the event triggers whose event_type pattern matches
// eventType, in document order. An event type with an empty token (or an
// empty one) matches nothing.
func (p *Program) MatchEvent(eventType string) []Trigger {
	tokens := strings.Split(eventType, ".")
	for _, t := range tokens {
		if t == "" {
			return nil
		}
	}
	var out []Trigger
	for _, t := range p.triggers {
		if matchPattern(t.pattern, tokens) {
			out = append(out, t.Trigger)
		}
	}
	return out
}
