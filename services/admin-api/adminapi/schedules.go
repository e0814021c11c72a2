package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greentic/events/pkg/bus"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant/tenantkv"
	"github.com/greentic/events/services/admin-api/adminconv"
)

type scheduleServer struct {
	adminv1.UnimplementedScheduleServiceServer
	*Server
}

// CreateSchedule stores a new schedule; AlreadyExists if the name is taken.
func (s *scheduleServer) CreateSchedule(ctx context.Context, req *adminv1.CreateScheduleRequest) (*adminv1.CreateScheduleResponse, error) {
	sc, value, err := s.checkSchedule(ctx, req.GetSchedule())
	if err != nil {
		return nil, err
	}
	rev, err := s.store.Create(ctx, bus.BucketSchedules, sc.Key(), value)
	if err != nil {
		return nil, storeErr(scheduleWhat(sc.Tenant, sc.Name), err)
	}
	s.log.Info("schedule created", "tenant", sc.Tenant, "schedule", sc.Name, "revision", rev, "by", principal(ctx).Name)
	return &adminv1.CreateScheduleResponse{Schedule: scheduleOut(sc, rev, s.now())}, nil
}

// PutSchedule creates or replaces a schedule; with schedule.revision only
// over that revision.
func (s *scheduleServer) PutSchedule(ctx context.Context, req *adminv1.PutScheduleRequest) (*adminv1.PutScheduleResponse, error) {
	sc, value, err := s.checkSchedule(ctx, req.GetSchedule())
	if err != nil {
		return nil, err
	}
	e, err := s.store.Modify(ctx, bus.BucketSchedules, sc.Key(), req.GetSchedule().GetRevision(), replaceWith(value))
	if err != nil {
		return nil, storeErr(scheduleWhat(sc.Tenant, sc.Name), err)
	}
	s.log.Info("schedule stored", "tenant", sc.Tenant, "schedule", sc.Name, "revision", e.Revision, "by", principal(ctx).Name)
	return &adminv1.PutScheduleResponse{Schedule: scheduleOut(sc, e.Revision, e.Created)}, nil
}

func (s *scheduleServer) GetSchedule(ctx context.Context, req *adminv1.GetScheduleRequest) (*adminv1.GetScheduleResponse, error) {
	key, err := itemKey(ctx, "tenant", "name", req.GetTenant(), req.GetName())
	if err != nil {
		return nil, err
	}
	e, err := s.store.Get(ctx, bus.BucketSchedules, key)
	if err != nil {
		return nil, storeErr(scheduleWhat(req.GetTenant(), req.GetName()), err)
	}
	out, err := scheduleOf(e)
	if err != nil {
		return nil, err
	}
	return &adminv1.GetScheduleResponse{Schedule: out}, nil
}

// ListSchedules lists the schedules of a tenant, or of every tenant for
// an operator naming none.
func (s *scheduleServer) ListSchedules(ctx context.Context, req *adminv1.ListSchedulesRequest) (*adminv1.ListSchedulesResponse, error) {
	items, next, err := s.listPage(ctx, bus.BucketSchedules, req.GetTenant(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	res := &adminv1.ListSchedulesResponse{NextPageToken: next}
	for _, e := range items {
		out, err := scheduleOf(e)
		if err != nil {
			// A stored value the timer cannot read either: list the rest
			// rather than hide them all behind it.
			s.log.Error("stored schedule is not valid", "key", e.Key, "revision", e.Revision, "err", err)
			continue
		}
		res.Schedules = append(res.Schedules, out)
	}
	return res, nil
}

// PauseSchedule stops a schedule's ticks until it is resumed; pausing a
// paused schedule changes nothing.
func (s *scheduleServer) PauseSchedule(ctx context.Context, req *adminv1.PauseScheduleRequest) (*adminv1.PauseScheduleResponse, error) {
	out, err := s.setPaused(ctx, req.GetTenant(), req.GetName(), true)
	if err != nil {
		return nil, err
	}
	return &adminv1.PauseScheduleResponse{Schedule: out}, nil
}

// ResumeSchedule lets a paused schedule tick again; resuming a running
// schedule changes nothing.
func (s *scheduleServer) ResumeSchedule(ctx context.Context, req *adminv1.ResumeScheduleRequest) (*adminv1.ResumeScheduleResponse, error) {
	out, err := s.setPaused(ctx, req.GetTenant(), req.GetName(), false)
	if err != nil {
		return nil, err
	}
	return &adminv1.ResumeScheduleResponse{Schedule: out}, nil
}

// DeleteSchedule removes a schedule; with a revision only if it is still at it.
func (s *scheduleServer) DeleteSchedule(ctx context.Context, req *adminv1.DeleteScheduleRequest) (*adminv1.DeleteScheduleResponse, error) {
	key, err := itemKey(ctx, "tenant", "name", req.GetTenant(), req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, bus.BucketSchedules, key, req.GetRevision()); err != nil {
		return nil, storeErr(scheduleWhat(req.GetTenant(), req.GetName()), err)
	}
	s.log.Info("schedule deleted", "tenant", req.GetTenant(), "schedule", req.GetName(), "by", principal(ctx).Name)
	return &adminv1.DeleteScheduleResponse{}, nil
}

// setPaused updates the paused flag over the revision read, reading again
// when someone else wrote in between.
func (s *scheduleServer) setPaused(ctx context.Context, tenantID, name string, paused bool) (*adminv1.Schedule, error) {
	key, err := itemKey(ctx, "tenant", "name", tenantID, name)
	if err != nil {
		return nil, err
	}
	what := scheduleWhat(tenantID, name)
	var sc schedule.Schedule
	e, err := s.store.Modify(ctx, bus.BucketSchedules, key, 0, func(cur tenantkv.Entry, exists bool) ([]byte, error) {
		if !exists {
			return nil, tenantkv.ErrNotFound
		}
		sc = schedule.Schedule{}
		if err := json.Unmarshal(cur.Value, &sc); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "stored %s is not valid (%v): put it again", what, err)
		}
		if sc.Paused == paused {
			return cur.Value, nil
		}
		sc.Paused = paused
		value, err := json.Marshal(sc)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode %s: %v", what, err)
		}
		return value, nil
	})
	if err != nil {
		return nil, storeErr(what, err)
	}
	s.log.Info("schedule paused or resumed", "tenant", tenantID, "schedule", name, "paused", paused, "revision", e.Revision, "by", principal(ctx).Name)
	return scheduleOut(sc, e.Revision, e.Created), nil
}

// checkSchedule authorizes and validates the schedule of a create or put
// and returns it with its stored form (the JSON of schedule.Schedule,
// which the timer reads).
func (s *scheduleServer) checkSchedule(ctx context.Context, in *adminv1.Schedule) (schedule.Schedule, []byte, error) {
	if in == nil {
		return schedule.Schedule{}, nil, required("schedule")
	}
	if err := authorize(ctx, "schedule.tenant", in.GetTenant()); err != nil {
		return schedule.Schedule{}, nil, err
	}
	if err := s.tenantExists(ctx, in.GetTenant()); err != nil {
		return schedule.Schedule{}, nil, err
	}
	sc, err := adminconv.StoredSchedule(in)
	if err != nil {
		return schedule.Schedule{}, nil, conversionInvalid("schedule", err)
	}
	if err := sc.Validate(); err != nil {
		return schedule.Schedule{}, nil, scheduleInvalid(err)
	}
	value, err := json.Marshal(sc)
	if err != nil {
		return schedule.Schedule{}, nil, status.Errorf(codes.Internal, "encode schedule: %v", err)
	}
	return sc, value, nil
}

// scheduleOut is the API form of a stored schedule.
func scheduleOut(sc schedule.Schedule, rev uint64, updated time.Time) *adminv1.Schedule {
	out := adminconv.Schedule(sc)
	out.Revision = rev
	out.UpdateTime = timestamppb.New(updated)
	return out
}

// scheduleOf decodes a stored schedule.
func scheduleOf(e tenantkv.Entry) (*adminv1.Schedule, error) {
	var sc schedule.Schedule
	if err := json.Unmarshal(e.Value, &sc); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "stored schedule %s is not valid (%v): put it again", e.Key, err)
	}
	return scheduleOut(sc, e.Revision, e.Created), nil
}

// scheduleInvalid names the field of a schedule validation error:
// schedule.cron, schedule.at, schedule.timezone, schedule.payload,
// schedule.missed (schedule.FieldError), schedule.tenant, schedule.name,
// schedule.event_type (bus.TokenError).
func scheduleInvalid(err error) error {
	var fe *schedule.FieldError
	if errors.As(err, &fe) {
		return invalid("schedule."+fe.Field, fe.Reason)
	}
	return invalidErr("schedule", err)
}

func scheduleWhat(tenantID, name string) string { return "schedule " + tenantID + "/" + name }
