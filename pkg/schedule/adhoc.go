package schedule

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/greentic/events/pkg/bus"
)

// Missed-tick policies: what the timer does about the ticks of a schedule
// that fell while no timer replica could fire them.
const (
	MissedSkip     = "skip"      // fire none of them
	MissedFireOnce = "fire_once" // fire the latest one (the default)
	MissedFireAll  = "fire_all"  // fire each of them, oldest first (bounded by the timer)
)

// DefaultEventType is the event type of a timer tick.
const DefaultEventType = "timer.tick"

// ValidMissed reports whether p is a missed-tick policy ("" is the default).
func ValidMissed(p string) bool {
	switch p {
	case "", MissedSkip, MissedFireOnce, MissedFireAll:
		return true
	}
	return false
}

// Schedule is an ad-hoc schedule of a tenant, stored in the schedules
// bucket under {tenant}.{name} (admin-api's ScheduleService writes them; the
// timer fires them). Exactly one of Cron and At is set: Cron is a cron spec
// or "@every <duration>" in Timezone; At is a one-shot time (RFC 3339).
type Schedule struct {
	Tenant    string          `json:"tenant"`
	Name      string          `json:"name"`
	Cron      string          `json:"cron,omitempty"`
	At        string          `json:"at,omitempty"`
	Timezone  string          `json:"timezone,omitempty"`
	EventType string          `json:"event_type,omitempty"` // default DefaultEventType
	Payload   json.RawMessage `json:"payload,omitempty"`    // the ticks' payload (JSON); default {}
	Missed    string          `json:"missed,omitempty"`     // default MissedFireOnce
	Paused    bool            `json:"paused,omitempty"`
}

// FieldError is a schedule setting that cannot be used: its text is
// "schedule NAME: FIELD: REASON". Field is the JSON name of the setting
// (cron, at, timezone, payload, missed), so an API can point at it.
// Unusable tenant, name and event_type tokens are *bus.TokenError instead.
type FieldError struct {
	Schedule string
	Field    string
	Reason   string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("schedule %s: %s: %s", e.Schedule, e.Field, e.Reason)
}

// Validate names the first unusable field: a *bus.TokenError for the
// tenant, the name and the event type, a *FieldError for the others.
func (s Schedule) Validate() error {
	if err := bus.ValidateTenant(s.Tenant); err != nil {
		return err
	}
	if err := bus.ValidateName("name", s.Name); err != nil {
		return err
	}
	switch {
	case s.Cron == "" && s.At == "":
		return &FieldError{s.Name, "cron", "one of cron and at is required"}
	case s.Cron != "" && s.At != "":
		return &FieldError{s.Name, "at", "cron and at are exclusive: set one of them"}
	}
	if _, err := Location(s.Timezone); err != nil {
		return &FieldError{s.Name, "timezone", err.Error()}
	}
	if s.Cron != "" {
		if _, err := ParseCron(s.Cron, s.Timezone); err != nil {
			return &FieldError{s.Name, "cron", err.Error()}
		}
	} else if _, err := s.AtTime(); err != nil {
		return err
	}
	if s.EventType != "" {
		if err := bus.ValidateEventType(s.EventType); err != nil {
			return fmt.Errorf("schedule %s: %w", s.Name, err)
		}
	}
	if len(s.Payload) > 0 && !json.Valid(s.Payload) {
		return &FieldError{s.Name, "payload", "not valid JSON"}
	}
	if !ValidMissed(s.Missed) {
		return &FieldError{s.Name, "missed", fmt.Sprintf("unknown policy %q (allowed: %s, %s, %s)", s.Missed, MissedSkip, MissedFireOnce, MissedFireAll)}
	}
	return nil
}

// AtTime parses At (RFC 3339, with its offset); the error is a *FieldError.
func (s Schedule) AtTime() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s.At)
	if err != nil {
		return time.Time{}, &FieldError{s.Name, "at", fmt.Sprintf("%q is not an RFC 3339 time such as 2026-12-01T09:00:00+01:00", s.At)}
	}
	return t, nil
}

// Key is the schedule's key in the schedules bucket: {tenant}.{name}.
func (s Schedule) Key() string { return s.Tenant + "." + s.Name }
