package executor

import (
	"log/slog"
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
	log   *slog.Logger
}

func newFlowSet(log *slog.Logger) *flowSet {
	return &flowSet{flows: map[string]map[string]*flow.Program{}, log: log}
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
	s.mu.Lock()
	defer s.mu.Unlock()
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

// match is one flow trigger that fires for an event.
type match struct {
	name    string
	program *flow.Program
	trigger flow.Trigger
}

// match returns, for each of the tenant's flows with a trigger firing for
// eventType, its first such trigger: a flow runs at most once per event.
// The order is stable (by flow name).
func (s *flowSet) match(tenantID, eventType string) []match {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []match
	for name, p := range s.flows[tenantID] {
		if ts := p.MatchEvent(eventType); len(ts) > 0 {
			out = append(out, match{name: name, program: p, trigger: ts[0]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
