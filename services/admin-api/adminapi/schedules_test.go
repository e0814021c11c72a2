package adminapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greentic/events/pkg/bus"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

func nightly(tenantID, name string) *adminv1.Schedule {
	return &adminv1.Schedule{
		Tenant: tenantID, Name: name, Cron: "0 2 * * *", Timezone: "Europe/Paris",
		EventType: "report.due", Payload: []byte(`{"kind":"nightly"}`), Missed: schedule.MissedSkip,
	}
}

func TestCreateSchedule(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme", "globex")
	ctx := h.acme.ctx(t)

	res, err := h.acme.Schedules.CreateSchedule(ctx, &adminv1.CreateScheduleRequest{Schedule: nightly("acme", "nightly")})
	if err != nil {
		t.Fatal(err)
	}
	got := res.GetSchedule()
	if got.GetRevision() == 0 || got.GetCron() != "0 2 * * *" || got.GetTimezone() != "Europe/Paris" || string(got.GetPayload()) != `{"kind":"nightly"}` || got.GetPaused() || got.GetUpdateTime() == nil {
		t.Fatalf("created: %v", got)
	}
	// The stored form is the JSON of schedule.Schedule.
	e, err := h.store.Get(ctx, bus.BucketSchedules, "acme.nightly")
	if err != nil {
		t.Fatal(err)
	}
	var stored schedule.Schedule
	if err := json.Unmarshal(e.Value, &stored); err != nil || stored.Validate() != nil || stored.Tenant != "acme" || stored.Name != "nightly" || stored.Missed != schedule.MissedSkip || string(stored.Payload) != `{"kind":"nightly"}` {
		t.Fatalf("stored %s: %v", e.Value, err)
	}

	t.Run("one-shot", func(t *testing.T) {
		at := time.Date(2031, 12, 1, 8, 0, 0, 0, time.UTC)
		res, err := h.acme.Schedules.CreateSchedule(ctx, &adminv1.CreateScheduleRequest{Schedule: &adminv1.Schedule{Tenant: "acme", Name: "once", At: timestamppb.New(at)}})
		if err != nil || !res.GetSchedule().GetAt().AsTime().Equal(at) || res.GetSchedule().GetCron() != "" {
			t.Fatalf("one-shot: %v %v", res, err)
		}
		e, err := h.store.Get(ctx, bus.BucketSchedules, "acme.once")
		if err != nil {
			t.Fatal(err)
		}
		var s schedule.Schedule
		if err := json.Unmarshal(e.Value, &s); err != nil || s.At != "2031-12-01T08:00:00Z" {
			t.Fatalf("stored %s: %v", e.Value, err)
		}
	})

	mod := func(f func(s *adminv1.Schedule)) *adminv1.Schedule {
		s := nightly("acme", "other")
		f(s)
		return s
	}
	for name, tc := range map[string]struct {
		c    *client
		s    *adminv1.Schedule
		code codes.Code
		fld  string
	}{
		"exists":           {h.acme, nightly("acme", "nightly"), codes.AlreadyExists, ""},
		"no schedule":      {h.acme, nil, codes.InvalidArgument, "schedule"},
		"no tenant":        {h.operator, mod(func(s *adminv1.Schedule) { s.Tenant = "" }), codes.InvalidArgument, "schedule.tenant"},
		"no name":          {h.acme, mod(func(s *adminv1.Schedule) { s.Name = "" }), codes.InvalidArgument, "schedule.name"},
		"bad name":         {h.acme, mod(func(s *adminv1.Schedule) { s.Name = "a.b" }), codes.InvalidArgument, "schedule.name"},
		"bad cron":         {h.acme, mod(func(s *adminv1.Schedule) { s.Cron = "0 25 * * *" }), codes.InvalidArgument, "schedule.cron"},
		"neither":          {h.acme, mod(func(s *adminv1.Schedule) { s.Cron = "" }), codes.InvalidArgument, "schedule.cron"},
		"cron and at":      {h.acme, mod(func(s *adminv1.Schedule) { s.At = timestamppb.Now() }), codes.InvalidArgument, "schedule.at"},
		"bad at":           {h.acme, mod(func(s *adminv1.Schedule) { s.Cron, s.At = "", &timestamppb.Timestamp{Nanos: -1} }), codes.InvalidArgument, "schedule.at"},
		"bad timezone":     {h.acme, mod(func(s *adminv1.Schedule) { s.Timezone = "Mars/Olympus" }), codes.InvalidArgument, "schedule.timezone"},
		"bad event type":   {h.acme, mod(func(s *adminv1.Schedule) { s.EventType = "report.>" }), codes.InvalidArgument, "schedule.event_type"},
		"bad payload":      {h.acme, mod(func(s *adminv1.Schedule) { s.Payload = []byte(`{`) }), codes.InvalidArgument, "schedule.payload"},
		"bad missed":       {h.acme, mod(func(s *adminv1.Schedule) { s.Missed = "sometimes" }), codes.InvalidArgument, "schedule.missed"},
		"unknown tenant":   {h.operator, nightly("initech", "n"), codes.NotFound, ""},
		"other tenant":     {h.acme, nightly("globex", "n"), codes.PermissionDenied, ""},
		"no token":         {h.anonymous, nightly("acme", "n"), codes.Unauthenticated, ""},
		"operator, globex": {h.operator, nightly("globex", "n"), codes.OK, ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.c.Schedules.CreateSchedule(tc.c.ctx(t), &adminv1.CreateScheduleRequest{Schedule: tc.s})
			wantCode(t, err, tc.code)
			if tc.fld != "" {
				wantField(t, err, tc.fld)
			}
		})
	}
	t.Run("errors name what is wrong", func(t *testing.T) {
		_, err := h.acme.Schedules.CreateSchedule(ctx, &adminv1.CreateScheduleRequest{Schedule: mod(func(s *adminv1.Schedule) { s.Cron = "0 25 * * *" })})
		if vs := violations(t, err); len(vs) != 1 || !strings.Contains(vs[0].GetDescription(), "25") {
			t.Errorf("violations: %v", vs)
		}
		_, err = h.operator.Schedules.CreateSchedule(h.operator.ctx(t), &adminv1.CreateScheduleRequest{Schedule: nightly("initech", "n")})
		if !strings.Contains(status.Convert(err).Message(), "tenant initech") {
			t.Errorf("message: %v", err)
		}
	})
}

func TestPutAndGetSchedule(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme", "globex")
	ctx := h.acme.ctx(t)

	res, err := h.acme.Schedules.PutSchedule(ctx, &adminv1.PutScheduleRequest{Schedule: nightly("acme", "nightly")})
	if err != nil {
		t.Fatal(err)
	}
	first := res.GetSchedule()
	if first.GetRevision() == 0 {
		t.Fatalf("put: %v", first)
	}
	// Applying the same schedule again changes nothing.
	res, err = h.acme.Schedules.PutSchedule(ctx, &adminv1.PutScheduleRequest{Schedule: nightly("acme", "nightly")})
	if err != nil || res.GetSchedule().GetRevision() != first.GetRevision() {
		t.Fatalf("put again: %v %v", res, err)
	}
	changed := nightly("acme", "nightly")
	changed.Cron, changed.Revision = "@every 10m", first.GetRevision()
	res, err = h.acme.Schedules.PutSchedule(ctx, &adminv1.PutScheduleRequest{Schedule: changed})
	if err != nil || res.GetSchedule().GetRevision() <= first.GetRevision() || res.GetSchedule().GetCron() != "@every 10m" {
		t.Fatalf("update: %v %v", res, err)
	}
	_, err = h.acme.Schedules.PutSchedule(ctx, &adminv1.PutScheduleRequest{Schedule: changed})
	wantCode(t, err, codes.FailedPrecondition)
	stale := nightly("acme", "absent")
	stale.Revision = 3
	_, err = h.acme.Schedules.PutSchedule(ctx, &adminv1.PutScheduleRequest{Schedule: stale})
	wantCode(t, err, codes.NotFound)
	bad := nightly("acme", "nightly")
	bad.Cron = "every day"
	_, err = h.acme.Schedules.PutSchedule(ctx, &adminv1.PutScheduleRequest{Schedule: bad})
	wantField(t, err, "schedule.cron")
	_, err = h.acme.Schedules.PutSchedule(ctx, &adminv1.PutScheduleRequest{Schedule: nightly("globex", "n")})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.operator.Schedules.PutSchedule(h.operator.ctx(t), &adminv1.PutScheduleRequest{Schedule: nightly("initech", "n")})
	wantCode(t, err, codes.NotFound)

	got, err := h.acme.Schedules.GetSchedule(ctx, &adminv1.GetScheduleRequest{Tenant: "acme", Name: "nightly"})
	if err != nil || got.GetSchedule().GetCron() != "@every 10m" || got.GetSchedule().GetEventType() != "report.due" || got.GetSchedule().GetRevision() != res.GetSchedule().GetRevision() {
		t.Fatalf("get: %v %v", got, err)
	}
	_, err = h.acme.Schedules.GetSchedule(ctx, &adminv1.GetScheduleRequest{Tenant: "acme", Name: "absent"})
	wantCode(t, err, codes.NotFound)
	_, err = h.acme.Schedules.GetSchedule(ctx, &adminv1.GetScheduleRequest{Tenant: "globex", Name: "n"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.acme.Schedules.GetSchedule(ctx, &adminv1.GetScheduleRequest{Tenant: "acme"})
	wantField(t, err, "name")
	_, err = h.anonymous.Schedules.GetSchedule(h.anonymous.ctx(t), &adminv1.GetScheduleRequest{Tenant: "acme", Name: "nightly"})
	wantCode(t, err, codes.Unauthenticated)
}

func TestListSchedules(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme", "globex")
	for _, s := range []*adminv1.Schedule{nightly("acme", "s1"), nightly("acme", "s2"), nightly("acme", "s3"), nightly("globex", "g1")} {
		if _, err := h.operator.Schedules.CreateSchedule(h.operator.ctx(t), &adminv1.CreateScheduleRequest{Schedule: s}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(ss []*adminv1.Schedule) string {
		var out []string
		for _, s := range ss {
			out = append(out, s.GetTenant()+"/"+s.GetName())
		}
		return strings.Join(out, " ")
	}
	res, err := h.acme.Schedules.ListSchedules(h.acme.ctx(t), &adminv1.ListSchedulesRequest{})
	if err != nil || names(res.GetSchedules()) != "acme/s1 acme/s2 acme/s3" {
		t.Fatalf("acme: %v %v", res, err)
	}
	res, err = h.operator.Schedules.ListSchedules(h.operator.ctx(t), &adminv1.ListSchedulesRequest{})
	if err != nil || names(res.GetSchedules()) != "acme/s1 acme/s2 acme/s3 globex/g1" {
		t.Fatalf("operator: %v %v", res, err)
	}
	if s := res.GetSchedules()[0]; s.GetRevision() == 0 || s.GetCron() != "0 2 * * *" || s.GetUpdateTime() == nil {
		t.Fatalf("listed: %v", s)
	}
	res, err = h.acme.Schedules.ListSchedules(h.acme.ctx(t), &adminv1.ListSchedulesRequest{Tenant: "acme", PageSize: 2})
	if err != nil || names(res.GetSchedules()) != "acme/s1 acme/s2" || res.GetNextPageToken() == "" {
		t.Fatalf("page 1: %v %v", res, err)
	}
	res, err = h.acme.Schedules.ListSchedules(h.acme.ctx(t), &adminv1.ListSchedulesRequest{Tenant: "acme", PageSize: 2, PageToken: res.GetNextPageToken()})
	if err != nil || names(res.GetSchedules()) != "acme/s3" || res.GetNextPageToken() != "" {
		t.Fatalf("page 2: %v %v", res, err)
	}
	_, err = h.acme.Schedules.ListSchedules(h.acme.ctx(t), &adminv1.ListSchedulesRequest{PageToken: "not base64!"})
	wantField(t, err, "page_token")
	_, err = h.acme.Schedules.ListSchedules(h.acme.ctx(t), &adminv1.ListSchedulesRequest{Tenant: "globex"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.anonymous.Schedules.ListSchedules(h.anonymous.ctx(t), &adminv1.ListSchedulesRequest{})
	wantCode(t, err, codes.Unauthenticated)
}

func TestPauseResumeDeleteSchedule(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme", "globex")
	ctx := h.acme.ctx(t)
	created, err := h.acme.Schedules.CreateSchedule(ctx, &adminv1.CreateScheduleRequest{Schedule: nightly("acme", "nightly")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.operator.Schedules.CreateSchedule(h.operator.ctx(t), &adminv1.CreateScheduleRequest{Schedule: nightly("globex", "g1")}); err != nil {
		t.Fatal(err)
	}

	p, err := h.acme.Schedules.PauseSchedule(ctx, &adminv1.PauseScheduleRequest{Tenant: "acme", Name: "nightly"})
	if err != nil || !p.GetSchedule().GetPaused() || p.GetSchedule().GetRevision() <= created.GetSchedule().GetRevision() || p.GetSchedule().GetCron() != "0 2 * * *" {
		t.Fatalf("pause: %v %v", p, err)
	}
	// Pausing again changes nothing.
	p2, err := h.acme.Schedules.PauseSchedule(ctx, &adminv1.PauseScheduleRequest{Tenant: "acme", Name: "nightly"})
	if err != nil || !p2.GetSchedule().GetPaused() || p2.GetSchedule().GetRevision() != p.GetSchedule().GetRevision() {
		t.Fatalf("pause again: %v %v", p2, err)
	}
	e, err := h.store.Get(ctx, bus.BucketSchedules, "acme.nightly")
	var stored schedule.Schedule
	if err != nil || json.Unmarshal(e.Value, &stored) != nil || !stored.Paused || stored.EventType != "report.due" {
		t.Fatalf("stored after pause %s: %v", e.Value, err)
	}
	r, err := h.acme.Schedules.ResumeSchedule(ctx, &adminv1.ResumeScheduleRequest{Tenant: "acme", Name: "nightly"})
	if err != nil || r.GetSchedule().GetPaused() || r.GetSchedule().GetRevision() <= p.GetSchedule().GetRevision() {
		t.Fatalf("resume: %v %v", r, err)
	}
	r2, err := h.acme.Schedules.ResumeSchedule(ctx, &adminv1.ResumeScheduleRequest{Tenant: "acme", Name: "nightly"})
	if err != nil || r2.GetSchedule().GetRevision() != r.GetSchedule().GetRevision() {
		t.Fatalf("resume again: %v %v", r2, err)
	}

	_, err = h.acme.Schedules.PauseSchedule(ctx, &adminv1.PauseScheduleRequest{Tenant: "acme", Name: "absent"})
	wantCode(t, err, codes.NotFound)
	_, err = h.acme.Schedules.ResumeSchedule(ctx, &adminv1.ResumeScheduleRequest{Tenant: "acme", Name: "absent"})
	wantCode(t, err, codes.NotFound)
	_, err = h.acme.Schedules.PauseSchedule(ctx, &adminv1.PauseScheduleRequest{Tenant: "globex", Name: "g1"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.acme.Schedules.ResumeSchedule(ctx, &adminv1.ResumeScheduleRequest{Tenant: "globex", Name: "g1"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.acme.Schedules.PauseSchedule(ctx, &adminv1.PauseScheduleRequest{Tenant: "acme"})
	wantField(t, err, "name")
	_, err = h.anonymous.Schedules.PauseSchedule(h.anonymous.ctx(t), &adminv1.PauseScheduleRequest{Tenant: "acme", Name: "nightly"})
	wantCode(t, err, codes.Unauthenticated)

	_, err = h.acme.Schedules.DeleteSchedule(ctx, &adminv1.DeleteScheduleRequest{Tenant: "acme", Name: "nightly", Revision: created.GetSchedule().GetRevision()})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = h.acme.Schedules.DeleteSchedule(ctx, &adminv1.DeleteScheduleRequest{Tenant: "globex", Name: "g1"})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := h.acme.Schedules.DeleteSchedule(ctx, &adminv1.DeleteScheduleRequest{Tenant: "acme", Name: "nightly", Revision: r.GetSchedule().GetRevision()}); err != nil {
		t.Fatal(err)
	}
	_, err = h.acme.Schedules.DeleteSchedule(ctx, &adminv1.DeleteScheduleRequest{Tenant: "acme", Name: "nightly"})
	wantCode(t, err, codes.NotFound)
	_, err = h.acme.Schedules.GetSchedule(ctx, &adminv1.GetScheduleRequest{Tenant: "acme", Name: "nightly"})
	wantCode(t, err, codes.NotFound)
	if _, err := h.operator.Schedules.GetSchedule(h.operator.ctx(t), &adminv1.GetScheduleRequest{Tenant: "globex", Name: "g1"}); err != nil {
		t.Fatalf("another tenant's schedule went too: %v", err)
	}
}

// TestScheduleIsWhatTheTimerReads checks the stored form through the
// watch the timer uses: created, paused and deleted through the API.
func TestScheduleIsWhatTheTimerReads(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	seen := make(chan tenantkv.ScheduleEntry, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.store.WatchSchedules(ctx, h.rt.Log, func(e tenantkv.ScheduleEntry) { seen <- e }, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
	next := func() tenantkv.ScheduleEntry {
		t.Helper()
		select {
		case e := <-seen:
			return e
		case <-ctx.Done():
			t.Fatal("the watch saw nothing")
		}
		return tenantkv.ScheduleEntry{}
	}

	if _, err := h.acme.Schedules.CreateSchedule(h.acme.ctx(t), &adminv1.CreateScheduleRequest{Schedule: nightly("acme", "nightly")}); err != nil {
		t.Fatal(err)
	}
	e := next()
	want := schedule.Schedule{Tenant: "acme", Name: "nightly", Cron: "0 2 * * *", Timezone: "Europe/Paris", EventType: "report.due", Payload: json.RawMessage(`{"kind":"nightly"}`), Missed: schedule.MissedSkip}
	if e.Deleted || e.Tenant != "acme" || e.Name != "nightly" || e.Schedule.Cron != want.Cron || e.Schedule.Timezone != want.Timezone || e.Schedule.EventType != want.EventType || string(e.Schedule.Payload) != string(want.Payload) || e.Schedule.Missed != want.Missed || e.Schedule.Paused {
		t.Fatalf("watched %+v, want %+v", e, want)
	}
	if _, err := h.acme.Schedules.PauseSchedule(h.acme.ctx(t), &adminv1.PauseScheduleRequest{Tenant: "acme", Name: "nightly"}); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Deleted || !e.Schedule.Paused {
		t.Fatalf("after pause: %+v", e)
	}
	if _, err := h.acme.Schedules.DeleteSchedule(h.acme.ctx(t), &adminv1.DeleteScheduleRequest{Tenant: "acme", Name: "nightly"}); err != nil {
		t.Fatal(err)
	}
	if e := next(); !e.Deleted || e.Name != "nightly" {
		t.Fatalf("after delete: %+v", e)
	}
}
