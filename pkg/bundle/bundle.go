// Package bundle reads a declarative configuration bundle (tenants with
// their provider accounts, webhook sources, flows and ad-hoc schedules) and
// applies it idempotently to a Store: the configuration buckets themselves
// (standalone loads one at start) or the admin API (greenticctl apply).
//
//	tenants:
//	  - id: acme
//	    display_name: ACME
//	    rate_limit: { per_second: 50, burst: 100 }
//	    accounts:
//	      marketing: { provider: sendgrid, secret_ref: acme-sendgrid }
//	    sources:
//	      - name: shop
//	        scheme: hmac-sha256
//	        secrets: [a-long-shared-secret]
//	        signature: { header: X-Signature }
//	        event_type: { field: type }
//	    flows:
//	      - flows/orders.yaml      # relative to the bundle file
//	    schedules:
//	      - name: nightly
//	        cron: "0 2 * * *"
//	        timezone: Europe/Paris
//	        event_type: report.nightly
//	        payload: { kind: nightly }
//
// Sources, accounts and schedules use the JSON names of tenant.Source,
// tenant.Account and schedule.Schedule; the tenant of a source or schedule
// defaults to the one it is listed under.
package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/greentic/events/pkg/flow"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant"
)

// Bundle is a parsed, validated bundle.
type Bundle struct {
	Tenants []Tenant
}

// Tenant is one tenant of a bundle (with its accounts) and its sources,
// validated flows and schedules.
type Tenant struct {
	tenant.Tenant
	Sources   []tenant.Source
	Flows     []Flow
	Schedules []schedule.Schedule
}

// Flow is a flow document of a bundle, already validated.
type Flow struct {
	Name string
	Path string
	Doc  []byte
}

type fileDoc struct {
	Tenants []struct {
		ID          string                    `json:"id"`
		DisplayName string                    `json:"display_name"`
		Suspended   bool                      `json:"suspended"`
		RateLimit   tenant.RateLimit          `json:"rate_limit"`
		Accounts    map[string]tenant.Account `json:"accounts"`
		Sources     []tenant.Source           `json:"sources"`
		Flows       []string                  `json:"flows"`
		Schedules   []schedule.Schedule       `json:"schedules"`
	} `json:"tenants"`
}

// DecodeYAML decodes a YAML document into v by v's JSON field names,
// refusing unknown keys: the form of every item of a bundle, which
// greenticctl also reads from single-item files (a source, a schedule).
func DecodeYAML(doc []byte, v any) error {
	var generic any
	if err := yaml.Unmarshal(doc, &generic); err != nil {
		return err
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Load reads a bundle file; flow paths are relative to the file. Every
// problem names where it is.
func Load(path string) (*Bundle, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	var doc fileDoc
	if err := DecodeYAML(raw, &doc); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	b := &Bundle{}
	// Items are keyed by id or name in the buckets: a second definition
	// would silently replace the first, and re-applying would never settle.
	tenantAt := map[string]int{}
	for i, dt := range doc.Tenants {
		t := Tenant{Tenant: tenant.Tenant{ID: dt.ID, DisplayName: dt.DisplayName, Suspended: dt.Suspended, RateLimit: dt.RateLimit, Accounts: dt.Accounts}}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("bundle %s: tenants[%d]: %w", path, i, err)
		}
		if first, dup := tenantAt[t.ID]; dup {
			return nil, fmt.Errorf("bundle %s: tenants[%d]: tenant %q is already defined by tenants[%d]", path, i, t.ID, first)
		}
		tenantAt[t.ID] = i
		sourceAt := map[string]int{}
		for j, s := range dt.Sources {
			if s.Tenant == "" {
				s.Tenant = t.ID
			}
			if s.Tenant != t.ID {
				return nil, fmt.Errorf("bundle %s: tenants[%d].sources[%d]: tenant %q differs from %q", path, i, j, s.Tenant, t.ID)
			}
			if err := s.Validate(); err != nil {
				return nil, fmt.Errorf("bundle %s: tenants[%d].sources[%d]: %w", path, i, j, err)
			}
			if first, dup := sourceAt[s.Name]; dup {
				return nil, fmt.Errorf("bundle %s: tenants[%d].sources[%d]: source %q is already defined by sources[%d]", path, i, j, s.Name, first)
			}
			sourceAt[s.Name] = j
			t.Sources = append(t.Sources, s)
		}
		flowAt := map[string]int{}
		for j, fp := range dt.Flows {
			full := fp
			if !filepath.IsAbs(fp) {
				full = filepath.Join(dir, fp)
			}
			src, err := os.ReadFile(full)
			if err != nil {
				return nil, fmt.Errorf("bundle %s: tenants[%d].flows[%d]: %w", path, i, j, err)
			}
			prog, err := flow.Compile(src)
			if err != nil {
				return nil, fmt.Errorf("bundle %s: tenants[%d].flows[%d]: flow %s: %w", path, i, j, full, err)
			}
			if first, dup := flowAt[prog.Name()]; dup {
				return nil, fmt.Errorf("bundle %s: tenants[%d].flows[%d]: flow %q is already defined by flows[%d]", path, i, j, prog.Name(), first)
			}
			flowAt[prog.Name()] = j
			t.Flows = append(t.Flows, Flow{Name: prog.Name(), Path: full, Doc: src})
		}
		scheduleAt := map[string]int{}
		for j, sc := range dt.Schedules {
			if sc.Tenant == "" {
				sc.Tenant = t.ID
			}
			if sc.Tenant != t.ID {
				return nil, fmt.Errorf("bundle %s: tenants[%d].schedules[%d]: tenant %q differs from %q", path, i, j, sc.Tenant, t.ID)
			}
			if sc.Name == "" {
				return nil, fmt.Errorf("bundle %s: tenants[%d].schedules[%d]: name: required", path, i, j)
			}
			if err := sc.Validate(); err != nil {
				return nil, fmt.Errorf("bundle %s: tenants[%d].schedules[%d]: %w", path, i, j, err)
			}
			if first, dup := scheduleAt[sc.Name]; dup {
				return nil, fmt.Errorf("bundle %s: tenants[%d].schedules[%d]: schedule %q is already defined by schedules[%d]", path, i, j, sc.Name, first)
			}
			scheduleAt[sc.Name] = j
			t.Schedules = append(t.Schedules, sc)
		}
		b.Tenants = append(b.Tenants, t)
	}
	return b, nil
}

// Store is where a bundle is applied: tenantkv.Store, or the admin API
// (greenticctl). Each Put reports whether it changed anything.
type Store interface {
	PutTenant(ctx context.Context, t tenant.Tenant) (bool, error)
	PutSource(ctx context.Context, s tenant.Source) (bool, error)
	PutFlow(ctx context.Context, tenantID, name string, doc []byte) (bool, error)
	PutSchedule(ctx context.Context, s schedule.Schedule) (bool, error)
}

// Applied counts what Apply changed.
type Applied struct {
	Changed, Unchanged int
}

// Apply writes every tenant, source, flow and schedule of b, in that order;
// unchanged items are not rewritten, so applying a bundle twice changes
// nothing the second time. Items that are not in the bundle are left alone.
func Apply(ctx context.Context, s Store, b *Bundle) (Applied, error) {
	var a Applied
	count := func(changed bool) {
		if changed {
			a.Changed++
		} else {
			a.Unchanged++
		}
	}
	for _, t := range b.Tenants {
		ch, err := s.PutTenant(ctx, t.Tenant)
		if err != nil {
			return a, fmt.Errorf("apply tenant %s: %w", t.ID, err)
		}
		count(ch)
		for _, src := range t.Sources {
			ch, err := s.PutSource(ctx, src)
			if err != nil {
				return a, fmt.Errorf("apply source %s/%s: %w", t.ID, src.Name, err)
			}
			count(ch)
		}
		for _, f := range t.Flows {
			ch, err := s.PutFlow(ctx, t.ID, f.Name, f.Doc)
			if err != nil {
				return a, fmt.Errorf("apply flow %s/%s: %w", t.ID, f.Name, err)
			}
			count(ch)
		}
		for _, sc := range t.Schedules {
			ch, err := s.PutSchedule(ctx, sc)
			if err != nil {
				return a, fmt.Errorf("apply schedule %s/%s: %w", t.ID, sc.Name, err)
			}
			count(ch)
		}
	}
	return a, nil
}
