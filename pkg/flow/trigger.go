package flow

import (
	"errors"

	"strings"
	"unicode"

	"github.com/greentic/events/pkg/schedule"
)

// Trigger types.
const (
	TriggerEvent = "event"
	TriggerTimer = "timer"
)

// Missed-tick policies of timer triggers (see package schedule).
const (
	MissedSkip     = schedule.MissedSkip
	MissedFireOnce = schedule.MissedFireOnce
	MissedFireAll  = schedule.MissedFireAll
)

// DefaultTimerEventType is the event type of a timer tick.
const DefaultTimerEventType = schedule.DefaultEventType

// A timer tick addressed to a flow is an event from TimerSource whose
// metadata names the flow (MetaTimerFlow) and the trigger's index in the
// flow's triggers list (MetaTimerTrigger). The flow-executor runs only that
// trigger of that flow for it (MatchTimer); event triggers do not see it.
const (
	TimerSource      = "greentic/timer"
	MetaTimerFlow    = "timer_flow"
	MetaTimerTrigger = "timer_trigger"
)

// Trigger is one trigger of a flow.
type Trigger struct {
	Index  int    // position in the document's triggers list
	Type   string // TriggerEvent or TriggerTimer
	Target string // node id the run starts at
	// EventType is, for an event trigger, the pattern as written; for a
	// timer trigger, the type of its ticks (DefaultTimerEventType unless set).
	EventType string
	// Timer triggers only.
	Cron     string // the spec as written (see package schedule)
	Timezone string // IANA zone; "" is UTC
	Missed   string // MissedSkip, MissedFireOnce or MissedFireAll
}

type compiledTrigger struct {
	Trigger
	pattern   []string // EventType split on '.'
	onResults bool     // an event trigger whose pattern ends in "result"
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
//
// The type of a flow result ends in the token "result"
// ("order.created.result"); it matches only patterns whose last token is
// "result" too ("order.created.result", "order.*.result"), so a flow
// listening to "order.>" is not also run on every result of order events.
func (p *Program) MatchEvent(eventType string) []Trigger {
	tokens := strings.Split(eventType, ".")
	for _, t := range tokens {
		if t == "" {
			return nil
		}
	}
	isResult := len(tokens) > 1 && tokens[len(tokens)-1] == resultToken
	var out []Trigger
	for _, t := range p.triggers {
		if t.Type == TriggerEvent && isResult == t.onResults && matchPattern(t.pattern, tokens) {
			out = append(out, t.Trigger)
		}
	}
	return out
}

// resultToken ends the type of a flow result.
const resultToken = "result"

// OnResults reports whether the flow has a trigger for flow results.
func (p *Program) OnResults() bool {
	for _, t := range p.triggers {
		if t.onResults {
			return true
		}
	}
	return false
}

// Triggers returns every trigger of the flow in document order.
func (p *Program) Triggers() []Trigger {
	out := make([]Trigger, len(p.triggers))
	for i, t := range p.triggers {
		out[i] = t.Trigger
	}
	return out
}

// Timers returns the flow's timer triggers in document order.
func (p *Program) Timers() []Trigger {
	var out []Trigger
	for _, t := range p.triggers {
		if t.Type == TriggerTimer {
			out = append(out, t.Trigger)
		}
	}
	return out
}

// MatchTimer returns the timer trigger at index (its position in the
// triggers list, as in MetaTimerTrigger).
func (p *Program) MatchTimer(index int) (Trigger, bool) {
	for _, t := range p.triggers {
		if t.Type == TriggerTimer && t.Index == index {
			return t.Trigger, true
		}
	}
	return Trigger{}, false
}
