package timer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/greentic/events/pkg/flow"
	"github.com/greentic/events/pkg/schedule"
)

// Metadata the timer sets on every tick, next to flow.MetaTimerFlow and
// flow.MetaTimerTrigger (ticks of flow timer triggers) or MetaSchedule
// (ticks of ad-hoc schedules).
const (
	// MetaSchedule names the ad-hoc schedule a tick belongs to.
	MetaSchedule = "schedule"
	// MetaScheduledAt is the tick's scheduled time, MetaFiredAt the time
	// the replica that stored it fired it (RFC 3339, milliseconds, UTC).
	MetaScheduledAt = "scheduled_at"
	MetaFiredAt     = "fired_at"
	// MetaCatchUp is "true" on a missed tick fired late by its policy.
	MetaCatchUp = "catch_up"
)

// timeFormat is RFC 3339 with milliseconds, used in UTC.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// definition is one schedule as the timer fires it: a timer trigger of a
// flow (id flow.{flow}.{index}) or an ad-hoc schedule (id {name}). Ad-hoc
// names are single tokens without dots, so they never collide with the
// ids of flow triggers.
type definition struct {
	tenant, id string
	// spec identifies the fire times: a change of it restarts the
	// schedule from now; other changes (type, payload, policy) do not.
	spec      string
	tk        ticker
	oneShot   bool
	eventType string
	payload   []byte
	missed    string
	meta      map[string]string // flow and trigger, or schedule name
}

// key is the schedule's key in the timers bucket: {tenant}.{schedule id}.
func (d *definition) key() string { return stateKey(d.tenant, d.id) }

func stateKey(tenantID, id string) string { return tenantID + "." + id }

// flowScheduleID is the schedule id of a flow's timer trigger.
func flowScheduleID(flowName string, index int) string {
	return "flow." + flowName + "." + strconv.Itoa(index)
}

// eventID is the id of the tick at of a schedule:
// {tenant}:{schedule id}:{scheduled unix seconds}.
func (d *definition) eventID(at time.Time) string {
	return d.tenant + ":" + d.id + ":" + strconv.FormatInt(at.Unix(), 10)
}

var emptyPayload = []byte("{}")

// flowDefinitions returns the timer triggers of a compiled flow.
func flowDefinitions(tenantID, name string, p *flow.Program) ([]*definition, error) {
	var out []*definition
	for _, tr := range p.Timers() {
		tk, spec, err := parseTicker(tr.Cron, tr.Timezone)
		if err != nil {
			return nil, fmt.Errorf("trigger %d: %w", tr.Index, err)
		}
		out = append(out, &definition{
			tenant: tenantID, id: flowScheduleID(name, tr.Index), spec: spec, tk: tk,
			eventType: tr.EventType, payload: emptyPayload, missed: tr.Missed,
			meta: map[string]string{flow.MetaTimerFlow: name, flow.MetaTimerTrigger: strconv.Itoa(tr.Index)},
		})
	}
	return out, nil
}

// scheduleDefinition returns an ad-hoc schedule (already validated).
func scheduleDefinition(s schedule.Schedule) (*definition, error) {
	d := &definition{
		tenant: s.Tenant, id: s.Name, eventType: s.EventType, payload: s.Payload, missed: s.Missed,
		meta: map[string]string{MetaSchedule: s.Name},
	}
	if d.eventType == "" {
		d.eventType = schedule.DefaultEventType
	}
	if len(d.payload) == 0 {
		d.payload = emptyPayload
	} else if !json.Valid(d.payload) {
		return nil, fmt.Errorf("schedule %s: payload is not JSON", s.Name)
	}
	if d.missed == "" {
		d.missed = schedule.MissedFireOnce
	}
	if s.Cron != "" {
		tk, spec, err := parseTicker(s.Cron, s.Timezone)
		if err != nil {
			return nil, fmt.Errorf("schedule %s: %w", s.Name, err)
		}
		d.tk, d.spec = tk, spec
		return d, nil
	}
	at, err := s.AtTime()
	if err != nil {
		return nil, err
	}
	// Ticks are whole seconds, as the ids and the stored state are.
	at = at.Truncate(time.Second).UTC()
	d.tk, d.oneShot = onceTicker{at: at}, true
	d.spec = "at " + at.Format(time.RFC3339)
	return d, nil
}

// parseTicker parses a cron spec or "@every" interval in its zone.
func parseTicker(spec, tz string) (ticker, string, error) {
	c, err := schedule.ParseCron(spec, tz)
	if err != nil {
		return nil, "", err
	}
	key := "cron " + c.Spec + " in " + c.Location.String()
	if rest, ok := strings.CutPrefix(c.Spec, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, "", err
		}
		return everyTicker{d: d}, "every " + d.String(), nil
	}
	return cronTicker{c: c}, key, nil
}
