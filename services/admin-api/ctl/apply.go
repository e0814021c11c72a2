package ctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/greentic/events/pkg/bundle"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/services/admin-api/adminconv"
)

func applyCommand() *command {
	return &command{
		name: "apply", summary: "apply a declarative bundle (tenants, accounts, sources, flows, schedules) idempotently", setup: applyBundle,
	}
}

// appliedItem is one item of a bundle and what applying it did.
type appliedItem struct {
	Kind    string  `json:"kind"`
	Name    string  `json:"name"`
	Outcome outcome `json:"outcome"`
}

type applyReport struct {
	Changed   int           `json:"changed"`
	Unchanged int           `json:"unchanged"`
	Items     []appliedItem `json:"items"`
}

func applyBundle(fs *flag.FlagSet) runFunc {
	var file string
	fs.StringVar(&file, "f", "", "the bundle file (required); flow paths in it are relative to it")
	return func(ctx context.Context, c *cli, _ []string) error {
		if file == "" {
			return &usageError{msg: "missing -f FILE"}
		}
		b, err := bundle.Load(file)
		if err != nil {
			return err
		}
		store := &apiStore{c: c}
		a, err := bundle.Apply(ctx, store, b)
		report := applyReport{Changed: a.Changed, Unchanged: a.Unchanged, Items: store.items}
		if report.Items == nil {
			report.Items = []appliedItem{}
		}
		if c.jsonOut() {
			if err != nil {
				return err
			}
			out, err := json.Marshal(report)
			if err != nil {
				return err
			}
			return c.writeJSON(out)
		}
		t := c.table("KIND", "NAME", "OUTCOME")
		for _, it := range report.Items {
			t.row(it.Kind, it.Name, it.Outcome)
		}
		if ferr := t.flush(); ferr != nil {
			return ferr
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%d changed, %d unchanged\n", report.Changed, report.Unchanged)
		return err
	}
}

// apiStore applies a bundle through the admin API. Every item is read
// first and written only when it differs, and what changed is judged by
// the revision before and after, so a second apply reports everything
// unchanged.
type apiStore struct {
	c     *cli
	items []appliedItem
}

func (s *apiStore) record(kind, name string, o outcome) bool {
	s.items = append(s.items, appliedItem{Kind: kind, Name: name, Outcome: o})
	return o != unchanged
}

// notFound reports a NotFound error; any other error is returned.
func notFound(err error) (bool, error) {
	if status.Code(err) == codes.NotFound {
		return true, nil
	}
	return false, err
}

func (s *apiStore) PutTenant(ctx context.Context, t tenant.Tenant) (bool, error) {
	want := adminconv.Tenant(t)
	res, err := s.c.tenants.GetTenant(ctx, &adminv1.GetTenantRequest{Id: t.ID})
	if missing, err := notFound(err); err != nil {
		return false, err
	} else if missing {
		res, err := s.c.tenants.CreateTenant(ctx, &adminv1.CreateTenantRequest{Tenant: want})
		if err != nil {
			return false, err
		}
		if t.Suspended && !res.GetTenant().GetSuspended() {
			if _, err := s.c.tenants.SuspendTenant(ctx, &adminv1.SuspendTenantRequest{Id: t.ID}); err != nil {
				return false, err
			}
		}
		return s.record("tenant", t.ID, created), nil
	}
	cur := res.GetTenant()
	var paths []string
	if cur.GetDisplayName() != want.GetDisplayName() {
		paths = append(paths, "display_name")
	}
	if !sameRateLimit(cur.GetRateLimit(), want.GetRateLimit()) {
		paths = append(paths, "rate_limit")
	}
	if !sameAccounts(cur.GetAccounts(), want.GetAccounts()) {
		paths = append(paths, "accounts")
	}
	rev := cur.GetRevision()
	if len(paths) > 0 {
		want.Revision = rev
		upd, err := s.c.tenants.UpdateTenant(ctx, &adminv1.UpdateTenantRequest{Tenant: want, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		if err != nil {
			return false, err
		}
		rev = upd.GetTenant().GetRevision()
	}
	if cur.GetSuspended() != t.Suspended {
		var after *adminv1.Tenant
		if t.Suspended {
			r, err := s.c.tenants.SuspendTenant(ctx, &adminv1.SuspendTenantRequest{Id: t.ID})
			if err != nil {
				return false, err
			}
			after = r.GetTenant()
		} else {
			r, err := s.c.tenants.ResumeTenant(ctx, &adminv1.ResumeTenantRequest{Id: t.ID})
			if err != nil {
				return false, err
			}
			after = r.GetTenant()
		}
		rev = after.GetRevision()
	}
	return s.record("tenant", t.ID, outcomeOf(true, cur.GetRevision(), rev)), nil
}

// PutSource always writes the source, because its secrets are write-only
// and cannot be compared; the server keeps the revision of an identical
// source, which tells whether anything changed.
func (s *apiStore) PutSource(ctx context.Context, src tenant.Source) (bool, error) {
	want, secrets, err := sourceProto(src)
	if err != nil {
		return false, err
	}
	res, err := s.c.sources.GetSource(ctx, &adminv1.GetSourceRequest{Tenant: src.Tenant, Name: src.Name})
	missing, err := notFound(err)
	if err != nil {
		return false, err
	}
	before := res.GetSource().GetRevision()
	want.Revision = before
	put, err := s.c.sources.PutSource(ctx, &adminv1.PutSourceRequest{Source: want, Secrets: secrets})
	if err != nil {
		return false, err
	}
	return s.record("source", src.Tenant+"/"+src.Name, outcomeOf(!missing, before, put.GetSource().GetRevision())), nil
}

func (s *apiStore) PutFlow(ctx context.Context, tenantID, name string, doc []byte) (bool, error) {
	_, o, err := s.c.putFlow(ctx, tenantID, name, doc, 0)
	if err != nil {
		return false, err
	}
	return s.record("flow", tenantID+"/"+name, o), nil
}

func (s *apiStore) PutSchedule(ctx context.Context, sc schedule.Schedule) (bool, error) {
	want, err := scheduleProto(sc)
	if err != nil {
		return false, err
	}
	res, err := s.c.schedules.GetSchedule(ctx, &adminv1.GetScheduleRequest{Tenant: sc.Tenant, Name: sc.Name})
	missing, err := notFound(err)
	if err != nil {
		return false, err
	}
	cur := res.GetSchedule()
	if !missing && sameSchedule(cur, want) {
		return s.record("schedule", sc.Tenant+"/"+sc.Name, unchanged), nil
	}
	want.Revision = cur.GetRevision()
	put, err := s.c.schedules.PutSchedule(ctx, &adminv1.PutScheduleRequest{Schedule: want})
	if err != nil {
		return false, err
	}
	return s.record("schedule", sc.Tenant+"/"+sc.Name, outcomeOf(!missing, cur.GetRevision(), put.GetSchedule().GetRevision())), nil
}

// sameSchedule compares what a schedule says, not its bookkeeping; a
// difference the server does not keep (a default spelled out, say) costs
// one put that leaves the revision as it is.
func sameSchedule(cur, want *adminv1.Schedule) bool {
	a, b := proto.CloneOf(cur), proto.CloneOf(want)
	for _, x := range []*adminv1.Schedule{a, b} {
		x.Revision, x.UpdateTime = 0, nil
	}
	return proto.Equal(a, b)
}
