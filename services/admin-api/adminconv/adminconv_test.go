package adminconv

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant"
)

func TestTenantRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    tenant.Tenant
	}{
		{"bare", tenant.Tenant{ID: "acme"}},
		{"full", tenant.Tenant{
			ID: "acme", DisplayName: "Acme", Suspended: true,
			RateLimit: tenant.RateLimit{PerSecond: 2.5, Burst: 10},
			Accounts:  map[string]tenant.Account{"marketing": {Provider: "sendgrid", SecretRef: "acme-sendgrid"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StoredTenant(Tenant(tc.t)); !reflect.DeepEqual(got, tc.t) {
				t.Errorf("round trip = %+v, want %+v", got, tc.t)
			}
		})
	}
}

func TestSourceRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from     tenant.ValueFrom
		wantText string
	}{
		{"unset", tenant.ValueFrom{}, ""},
		{"field", tenant.ValueFrom{Field: "type"}, "field:type"},
		{"header", tenant.ValueFrom{Header: "X-Event"}, "header:X-Event"},
		{"value", tenant.ValueFrom{Value: "order.paid"}, "value:order.paid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tenant.Source{
				Tenant: "acme", Name: "shop", Scheme: tenant.SchemeHMACSHA256,
				Signature: tenant.Signature{Header: "X-Sig", Encoding: "hex", Prefix: "sha256="},
				Tolerance: tenant.Duration(5 * time.Minute), URL: "https://example.com/hook",
				EventType: tc.from, EventID: tc.from, MaxBodyBytes: 1 << 20, Disabled: true,
			}
			msg := Source(src)
			if msg.GetEventType() != tc.wantText || msg.GetEventId() != tc.wantText {
				t.Errorf("event_type, event_id = %q, %q, want %q", msg.GetEventType(), msg.GetEventId(), tc.wantText)
			}
			got, err := StoredSource(msg)
			if err != nil {
				t.Fatalf("StoredSource: %v", err)
			}
			if !reflect.DeepEqual(got, src) {
				t.Errorf("round trip = %+v, want %+v", got, src)
			}
		})
	}
}

func TestSourceFieldErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    *adminv1.Source
		field string
	}{
		{"event_type", &adminv1.Source{EventType: "body:type"}, "event_type"},
		{"event_id", &adminv1.Source{EventId: "field:"}, "event_id"},
		{"negative tolerance", &adminv1.Source{ToleranceSeconds: -1}, "tolerance_seconds"},
		{"tolerance over the maximum", &adminv1.Source{ToleranceSeconds: int64(tenant.MaxTolerance/time.Second) + 1}, "tolerance_seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := StoredSource(tc.in)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("StoredSource error = %v, want a FieldError of %s", err, tc.field)
			}
		})
	}
}

func TestScheduleRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		sc   schedule.Schedule
	}{
		{"at", schedule.Schedule{Tenant: "acme", Name: "launch", At: "2030-01-02T03:04:05.5Z", EventType: "launch.started"}},
		{"cron", schedule.Schedule{
			Tenant: "acme", Name: "nightly", Cron: "0 2 * * *", Timezone: "Europe/Paris",
			Payload: json.RawMessage(`{"report":"daily"}`), Missed: schedule.MissedSkip, Paused: true,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := StoredSchedule(Schedule(tc.sc))
			if err != nil {
				t.Fatalf("StoredSchedule: %v", err)
			}
			if !reflect.DeepEqual(got, tc.sc) {
				t.Errorf("round trip = %+v, want %+v", got, tc.sc)
			}
		})
	}
}

func TestScheduleAtInUTC(t *testing.T) {
	msg := Schedule(schedule.Schedule{Tenant: "acme", Name: "launch", At: "2030-01-02T04:04:05+01:00"})
	got, err := StoredSchedule(msg)
	if err != nil {
		t.Fatalf("StoredSchedule: %v", err)
	}
	if want := "2030-01-02T03:04:05Z"; got.At != want {
		t.Errorf("at = %q, want %q", got.At, want)
	}
}
