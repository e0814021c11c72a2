package executor

import (
	"log/slog"
	"slices"
	"sort"
	"sync"

	"github.com/greentic/events/pkg/flow"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// flowSet holds the compiled flows of every tenant, replaced as the flows
// bucket changes.
type flowSet struct {
	mu    sync.RWMutex
	flows map[string]map[string]*flow.Program // tenant -> flow name -> program
	// results lists the tenants with a flow triggering on results.
	results map[string]bool
	log     *slog.Logger
	// applied, when set, is told of each change applied: loaded, removed
	// or invalid.
	applied func(outcome string)
}

func newFlowSet(log *slog.Logger) *flowSet {
	return &flowSet{flows: map[string]map[string]*flow.Program{}, results: map[string]bool{}, log: log}
}

// apply compiles a changed flow. A stored flow that no longer compiles is
// removed (admin-api validates before storing, so this means the flow
// language changed under it) and logged with its problems.
func (s *flowSet) apply(e tenantkv.FlowEntry) {
	var prog *flow.Program
	if !e.Deleted {
		var err error
		if prog, err = flow.Compile(e.Doc); err != nil {
			s.log.Error("stored flow does not compile, not running it", "tenant", e.Tenant, "flow", e.Name, "revision", e.Revision, "err", err)
		}
	}
	outcome := "loaded"
	switch {
	case e.Deleted:
		outcome = "removed"
	case prog == nil:
		outcome = "invalid"
	}
	if s.applied != nil {
		defer s.applied(outcome)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.indexResults(e.Tenant)
	if prog == nil {
		delete(s.flows[e.Tenant], e.Name)
		return
	}
	if s.flows[e.Tenant] == nil {
		s.flows[e.Tenant] = map[string]*flow.Program{}
	}
	s.flows[e.Tenant][e.Name] = prog
	s.log.Info("flow loaded", "tenant", e.Tenant, "flow", e.Name, "revision", e.Revision)
}

// indexResults updates s.results for one tenant; s.mu is held.
func (s *flowSet) indexResults(tenantID string) {
	delete(s.results, tenantID)
	for _, p := range s.flows[tenantID] {
		if p.OnResults() {
			s.results[tenantID] = true
			return
		}
	}
}

// match is one flow trigger that fires for an event.
type match struct {
	name    string
	program *flow.Program
	trigger flow.Trigger
}

// filter narrows the flows an event runs.
type filter struct {
	exclude string   // a result never runs the flow that produced it
	only    []string // a replayed dead letter runs only the flows that failed
}

func (f filter) allows(name string) bool {
	if name == f.exclude {
		return false
	}
	return f.only == nil || slices.Contains(f.only, name)
}

// match returns, for each of the tenant's flows with an event trigger
// firing for eventType, its first such trigger: a flow runs at most once
// per event. The order is stable (by flow name).
func (s *flowSet) match(tenantID, eventType string, f filter) []match {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []match
	for name, p := range s.flows[tenantID] {
		if !f.allows(name) {
			continue
		}
		if ts := p.MatchEvent(eventType); len(ts) > 0 {
			out = append(out, match{name: name, program: p, trigger: ts[0]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// timer returns the timer trigger a tick is addressed to, if the flow and
// the trigger still exist.
func (s *flowSet) timer(tenantID, name string, index int) (match, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.flows[tenantID][name]
	if !ok {
		return match{}, false
	}
	t, ok := p.MatchTimer(index)
	return match{name: name, program: p, trigger: t}, ok
}

// onResults reports whether any flow of the tenant triggers on results,
// so results of tenants without such flows are skipped undecoded.
func (s *flowSet) onResults(tenantID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.results[tenantID]
}
