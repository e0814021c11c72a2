package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greentic/events/pkg/bus"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
	"github.com/greentic/events/services/admin-api/adminconv"
)

// Update mask paths of a tenant.
const (
	tenantPathDisplayName = "display_name"
	tenantPathRateLimit   = "rate_limit"
	tenantPathAccounts    = "accounts"
	tenantPathSuspended   = "suspended"
)

// tenantMutable lists the fields UpdateTenant changes, in mask path form.
var tenantMutable = []string{tenantPathDisplayName, tenantPathRateLimit, tenantPathAccounts, tenantPathSuspended}

type tenantServer struct {
	adminv1.UnimplementedTenantServiceServer
	*Server
}

// CreateTenant stores a new tenant. Nothing else is provisioned: the
// streams are shared by every tenant of the environment and keyed by
// subject, and they and the buckets were created when the service started
// (Runtime.EnsureTopology). The other services learn of the tenant from
// the tenants bucket they watch.
func (s *tenantServer) CreateTenant(ctx context.Context, req *adminv1.CreateTenantRequest) (*adminv1.CreateTenantResponse, error) {
	if err := operatorOnly(ctx, "create tenants"); err != nil {
		return nil, err
	}
	in := req.GetTenant()
	if in == nil {
		return nil, required("tenant")
	}
	t := adminconv.StoredTenant(in)
	if err := validateTenant(t); err != nil {
		return nil, err
	}
	value, err := json.Marshal(t)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode tenant %s: %v", t.ID, err)
	}
	e, err := s.store.Modify(ctx, bus.BucketTenants, t.ID, 0, func(_ tenantkv.Entry, exists bool) ([]byte, error) {
		if exists {
			return nil, tenantkv.ErrExists
		}
		return value, nil
	})
	if err != nil {
		return nil, storeErr("tenant "+t.ID, err)
	}
	s.log.Info("tenant created", "tenant", t.ID, "revision", e.Revision, "by", principal(ctx).Name)
	out := tenantOut(t, e)
	// The creation time is known only here: the bucket keeps a few
	// revisions of a key, not its first one, so the other methods leave
	// create_time unset rather than guess it.
	out.CreateTime = out.GetUpdateTime()
	return &adminv1.CreateTenantResponse{Tenant: out}, nil
}

// GetTenant returns a tenant; tenant-scoped callers may read their own.
func (s *tenantServer) GetTenant(ctx context.Context, req *adminv1.GetTenantRequest) (*adminv1.GetTenantResponse, error) {
	if err := authorize(ctx, "id", req.GetId()); err != nil {
		return nil, err
	}
	t, e, err := s.readTenant(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &adminv1.GetTenantResponse{Tenant: tenantOut(t, e)}, nil
}

// ListTenants lists every tenant for operators, and only their own tenant
// for tenant-scoped callers.
func (s *tenantServer) ListTenants(ctx context.Context, req *adminv1.ListTenantsRequest) (*adminv1.ListTenantsResponse, error) {
	var entries []tenantkv.Entry
	if own := principal(ctx).Tenant; own != "" {
		e, err := s.store.Get(ctx, bus.BucketTenants, own)
		switch {
		case err == nil:
			entries = []tenantkv.Entry{e}
		case !errors.Is(err, tenantkv.ErrNotFound):
			return nil, storeErr("tenant "+own, err)
		}
	} else {
		var err error
		if entries, err = s.store.List(ctx, bus.BucketTenants, ""); err != nil {
			return nil, storeErr("tenants", err)
		}
	}
	items, next, err := page(entries, func(e tenantkv.Entry) string { return e.Key }, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	res := &adminv1.ListTenantsResponse{NextPageToken: next}
	for _, e := range items {
		var t tenant.Tenant
		if err := json.Unmarshal(e.Value, &t); err != nil || t.ID != e.Key {
			s.log.Warn("skipping malformed stored tenant", "key", e.Key, "revision", e.Revision)
			continue
		}
		res.Tenants = append(res.Tenants, tenantOut(t, e))
	}
	return res, nil
}

// UpdateTenant changes the fields of the update mask (every mutable field
// when it is empty); with a non-zero tenant.revision only over that
// revision. The id cannot change.
//
// Tenant-scoped callers may change only their display name. Suspension and
// the rate limit are the operator's controls over a tenant, and accounts
// name deployment secrets (secret_ref): a tenant choosing its own refs
// could send through another tenant's provider account. Naming those
// fields with their stored values is allowed, so a tenant can send back
// what GetTenant returned.
func (s *tenantServer) UpdateTenant(ctx context.Context, req *adminv1.UpdateTenantRequest) (*adminv1.UpdateTenantResponse, error) {
	in := req.GetTenant()
	if in == nil {
		return nil, required("tenant")
	}
	if err := authorize(ctx, "tenant.id", in.GetId()); err != nil {
		return nil, err
	}
	paths, err := tenantMaskPaths(req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	upd := adminconv.StoredTenant(in)
	operator := principal(ctx).Operator()
	out, err := s.modifyTenant(ctx, in.GetId(), in.GetRevision(), func(t *tenant.Tenant) error {
		next := *t
		for _, p := range paths {
			switch p {
			case tenantPathDisplayName:
				next.DisplayName = upd.DisplayName
			case tenantPathRateLimit:
				next.RateLimit = upd.RateLimit
			case tenantPathAccounts:
				next.Accounts = upd.Accounts
			case tenantPathSuspended:
				next.Suspended = upd.Suspended
			}
		}
		if !operator {
			if changed := operatorFieldsChanged(*t, next); len(changed) > 0 {
				return status.Errorf(codes.PermissionDenied, "token %s may not change %s: only operators may", principal(ctx).Name, strings.Join(changed, ", "))
			}
		}
		if err := validateTenant(next); err != nil {
			return err
		}
		*t = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("tenant updated", "tenant", in.GetId(), "fields", strings.Join(paths, ","), "revision", out.GetRevision(), "by", principal(ctx).Name)
	return &adminv1.UpdateTenantResponse{Tenant: out}, nil
}

// SuspendTenant stops a tenant's intake and schedules; its configuration
// stays. Suspending a suspended tenant changes nothing.
func (s *tenantServer) SuspendTenant(ctx context.Context, req *adminv1.SuspendTenantRequest) (*adminv1.SuspendTenantResponse, error) {
	out, err := s.setSuspended(ctx, req.GetId(), true)
	if err != nil {
		return nil, err
	}
	return &adminv1.SuspendTenantResponse{Tenant: out}, nil
}

// ResumeTenant undoes SuspendTenant.
func (s *tenantServer) ResumeTenant(ctx context.Context, req *adminv1.ResumeTenantRequest) (*adminv1.ResumeTenantResponse, error) {
	out, err := s.setSuspended(ctx, req.GetId(), false)
	if err != nil {
		return nil, err
	}
	return &adminv1.ResumeTenantResponse{Tenant: out}, nil
}

func (s *tenantServer) setSuspended(ctx context.Context, id string, suspended bool) (*adminv1.Tenant, error) {
	what := "resume tenants"
	if suspended {
		what = "suspend tenants"
	}
	if err := operatorOnly(ctx, what); err != nil {
		return nil, err
	}
	if err := authorize(ctx, "id", id); err != nil {
		return nil, err
	}
	out, err := s.modifyTenant(ctx, id, 0, func(t *tenant.Tenant) error {
		t.Suspended = suspended
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("tenant suspension set", "tenant", id, "suspended", suspended, "revision", out.GetRevision(), "by", principal(ctx).Name)
	return out, nil
}

// DeleteTenant deletes a tenant and everything stored for it.
//
// The tenant's record goes first: the ingress answers 404 for a tenant it
// no longer knows and the timer stops firing its schedules at once. Then
// its sources, flows and schedules are deleted (the executor drops the
// flows, the timer the schedules), the timer's state of its schedules and
// its dead letters are purged, so a tenant created again under the same
// id starts clean. Its events and flow results stay in the events stream
// until they age out: they are history, and consumers find no flow of the
// tenant to run on them.
//
// A delete that failed half way is finished by calling it again: the
// children are removed even when the record is already gone. NotFound
// means nothing at all was stored for the tenant.
func (s *tenantServer) DeleteTenant(ctx context.Context, req *adminv1.DeleteTenantRequest) (*adminv1.DeleteTenantResponse, error) {
	if err := operatorOnly(ctx, "delete tenants"); err != nil {
		return nil, err
	}
	id := req.GetId()
	if err := authorize(ctx, "id", id); err != nil {
		return nil, err
	}
	found := false
	switch err := s.store.Delete(ctx, bus.BucketTenants, id, req.GetRevision()); {
	case err == nil:
		found = true
	case errors.Is(err, tenantkv.ErrNotFound):
		// Gone already: finish what an earlier delete left.
	default:
		return nil, storeErr("tenant "+id, err)
	}
	removed := 0
	for _, b := range []bus.Bucket{bus.BucketSources, bus.BucketFlows, bus.BucketSchedules} {
		n, err := s.deleteTenantKeys(ctx, b, id)
		removed += n
		if err != nil {
			return nil, err
		}
	}
	timers, err := s.purgeKeys(ctx, bus.BucketTimers, id)
	if err != nil {
		return nil, err
	}
	deliveries, err := s.purgeKeys(ctx, bus.BucketDeliveries, id)
	if err != nil {
		return nil, err
	}
	deadLetters, err := s.purgeDeadLetters(ctx, id)
	if err != nil {
		return nil, err
	}
	if !found && removed == 0 && timers == 0 && deliveries == 0 && deadLetters == 0 {
		return nil, notFound("tenant %s", id)
	}
	s.log.Info("tenant deleted", "tenant", id, "record", found, "config_keys", removed, "timer_states", timers, "delivery_ids", deliveries, "dead_letters", deadLetters, "by", principal(ctx).Name)
	return &adminv1.DeleteTenantResponse{}, nil
}

// deleteTenantKeys deletes every key of the tenant in a configuration
// bucket ({tenant}.{name}) and returns how many it deleted.
func (s *tenantServer) deleteTenantKeys(ctx context.Context, b bus.Bucket, id string) (int, error) {
	entries, err := s.store.List(ctx, b, id+".")
	if err != nil {
		return 0, storeErr(string(b)+" of tenant "+id, err)
	}
	n := 0
	for _, e := range entries {
		switch err := s.store.Delete(ctx, b, e.Key, 0); {
		case err == nil:
			n++
		case errors.Is(err, tenantkv.ErrNotFound):
			// Deleted meanwhile by someone else.
		default:
			return n, storeErr(fmt.Sprintf("%s %s", strings.TrimSuffix(string(b), "s"), e.Key), err)
		}
	}
	return n, nil
}

// purgeKeys removes the tenant's keys ({tenant}.…) from a bucket that
// services keep for themselves: the timer's state of the tenant's
// schedules (so a schedule of a re-created tenant never resumes from the
// old one's last tick) and the ingress's delivery ids (so a re-created
// tenant's first deliveries are not taken for duplicates of the old
// one's). The keys are purged from the bucket's stream at once, without
// delete markers: no service watches these buckets. It returns how many
// values there were.
func (s *tenantServer) purgeKeys(ctx context.Context, b bus.Bucket, id string) (uint64, error) {
	what := string(b) + " of tenant " + id
	name := s.topo().BucketName(b)
	stream, err := s.rt.JS.Stream(ctx, "KV_"+name)
	if err != nil {
		return 0, storeErr(what, err)
	}
	return purgeSubject(ctx, stream, "$KV."+name+"."+id+".>", what)
}

// purgeSubject purges the messages of stream on subject (a filter) and
// returns how many there were.
func purgeSubject(ctx context.Context, stream jetstream.Stream, subject, what string) (uint64, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, storeErr(what, err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	if n == 0 {
		return 0, nil
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return 0, storeErr(what, err)
	}
	return n, nil
}

// purgeDeadLetters purges the tenant's messages from the dead-letter
// stream and returns how many there were.
func (s *tenantServer) purgeDeadLetters(ctx context.Context, id string) (uint64, error) {
	what := "dead letters of tenant " + id
	stream, err := s.rt.JS.Stream(ctx, s.topo().DLQStream())
	if err != nil {
		return 0, storeErr(what, err)
	}
	return purgeSubject(ctx, stream, bus.TenantDLQFilter(s.topo().Env, id), what)
}

// readTenant reads and decodes a stored tenant.
func (s *tenantServer) readTenant(ctx context.Context, id string) (tenant.Tenant, tenantkv.Entry, error) {
	e, err := s.store.Get(ctx, bus.BucketTenants, id)
	if err != nil {
		return tenant.Tenant{}, e, storeErr("tenant "+id, err)
	}
	var t tenant.Tenant
	if err := json.Unmarshal(e.Value, &t); err != nil || t.ID != id {
		return tenant.Tenant{}, e, status.Errorf(codes.Internal, "stored tenant %s (revision %d) is malformed", id, e.Revision)
	}
	return t, e, nil
}

// modifyTenant applies change to the stored tenant and writes the result
// over the revision read: with rev non-zero only if that is the stored
// revision, otherwise reading again when someone else wrote in between.
// change returns a status error to refuse the change.
func (s *tenantServer) modifyTenant(ctx context.Context, id string, rev uint64, change func(*tenant.Tenant) error) (*adminv1.Tenant, error) {
	var t tenant.Tenant
	e, err := s.store.Modify(ctx, bus.BucketTenants, id, rev, func(cur tenantkv.Entry, exists bool) ([]byte, error) {
		if !exists {
			return nil, tenantkv.ErrNotFound
		}
		t = tenant.Tenant{}
		if err := json.Unmarshal(cur.Value, &t); err != nil || t.ID != id {
			return nil, status.Errorf(codes.Internal, "stored tenant %s (revision %d) is malformed", id, cur.Revision)
		}
		if err := change(&t); err != nil {
			return nil, err
		}
		value, err := json.Marshal(t)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode tenant %s: %v", id, err)
		}
		return value, nil
	})
	if err != nil {
		return nil, storeErr("tenant "+id, err)
	}
	return tenantOut(t, e), nil
}

// tenantMaskPaths checks an update mask and returns its paths; an empty
// mask names every mutable field.
func tenantMaskPaths(m *fieldmaskpb.FieldMask) ([]string, error) {
	if len(m.GetPaths()) == 0 {
		return tenantMutable, nil
	}
	var out []string
	for _, p := range m.GetPaths() {
		switch {
		case slices.Contains(tenantMutable, p):
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		case p == "id":
			return nil, invalid("update_mask", "id cannot be changed: create a new tenant instead")
		case p == "revision" || p == "create_time" || p == "update_time":
			return nil, invalid("update_mask", fmt.Sprintf("%s is output only", p))
		default:
			return nil, invalid("update_mask", fmt.Sprintf("unknown path %q (paths: %s)", p, strings.Join(tenantMutable, ", ")))
		}
	}
	return out, nil
}

// operatorFieldsChanged names the fields only operators may change that
// differ between before and after.
func operatorFieldsChanged(before, after tenant.Tenant) []string {
	var out []string
	if before.Suspended != after.Suspended {
		out = append(out, tenantPathSuspended)
	}
	if before.RateLimit != after.RateLimit {
		out = append(out, tenantPathRateLimit)
	}
	if !maps.Equal(before.Accounts, after.Accounts) {
		out = append(out, tenantPathAccounts)
	}
	return out
}

// validateTenant checks a tenant, naming the request field at fault.
func validateTenant(t tenant.Tenant) error {
	if t.ID == "" {
		return required("tenant.id")
	}
	if err := bus.ValidateTenant(t.ID); err != nil {
		return invalid("tenant.id", err.Error())
	}
	if err := t.Validate(); err != nil {
		return invalidErr("tenant", err)
	}
	return nil
}

// tenantOut is the API form of a stored tenant. create_time is left
// unset (see CreateTenant); update_time is when e was written.
func tenantOut(t tenant.Tenant, e tenantkv.Entry) *adminv1.Tenant {
	out := adminconv.Tenant(t)
	out.Revision = e.Revision
	out.UpdateTime = timestamppb.New(e.Created)
	return out
}

// tenantExists is NotFound unless the tenant is stored.
func (s *Server) tenantExists(ctx context.Context, id string) error {
	if _, err := s.store.Get(ctx, bus.BucketTenants, id); err != nil {
		return storeErr("tenant "+id, err)
	}
	return nil
}
