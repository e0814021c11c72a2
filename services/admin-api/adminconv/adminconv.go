// Package adminconv holds the conversions between the stored forms
// (package tenant's Tenant and Source, package schedule's Schedule, the
// JSON the buckets keep and greenticctl's files use) and the admin API's
// messages.
//
// The API messages it builds carry no output-only fields (revision,
// timestamps, a source's secret_count): the server sets them. Secrets are
// not part of an API source either: they travel in the request beside it.
package adminconv

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant"
)

// MaxSchedulePayload bounds the payload of a schedule's ticks.
const MaxSchedulePayload = 64 << 10

// Prefixes of the event_type and event_id strings of an API source.
const (
	valueFromField  = "field:"
	valueFromHeader = "header:"
	valueFromValue  = "value:"
)

// FieldError is an API message field that has no stored form. Field is
// the field's name in the message (event_type, tolerance_seconds, at,
// payload), so the server can name the request field at fault.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Tenant is the API form of a tenant.
func Tenant(t tenant.Tenant) *adminv1.Tenant {
	out := &adminv1.Tenant{Id: t.ID, DisplayName: t.DisplayName, Suspended: t.Suspended}
	if t.RateLimit != (tenant.RateLimit{}) {
		out.RateLimit = &adminv1.RateLimit{PerSecond: t.RateLimit.PerSecond, Burst: int32(t.RateLimit.Burst)}
	}
	if len(t.Accounts) > 0 {
		out.Accounts = make(map[string]*adminv1.ProviderAccount, len(t.Accounts))
		for name, a := range t.Accounts {
			out.Accounts[name] = &adminv1.ProviderAccount{Provider: a.Provider, SecretRef: a.SecretRef}
		}
	}
	return out
}

// StoredTenant is the stored form of an API tenant; output-only fields are
// ignored.
func StoredTenant(in *adminv1.Tenant) tenant.Tenant {
	t := tenant.Tenant{
		ID:          in.GetId(),
		DisplayName: in.GetDisplayName(),
		Suspended:   in.GetSuspended(),
		RateLimit:   tenant.RateLimit{PerSecond: in.GetRateLimit().GetPerSecond(), Burst: int(in.GetRateLimit().GetBurst())},
	}
	if len(in.GetAccounts()) > 0 {
		t.Accounts = make(map[string]tenant.Account, len(in.GetAccounts()))
		for name, a := range in.GetAccounts() {
			t.Accounts[name] = tenant.Account{Provider: a.GetProvider(), SecretRef: a.GetSecretRef()}
		}
	}
	return t
}

// ValueFrom is the API form of where a value comes from: "field:NAME",
// "header:NAME", "value:TEXT", or "" when nothing is configured.
func ValueFrom(v tenant.ValueFrom) string {
	switch {
	case v.Field != "":
		return valueFromField + v.Field
	case v.Header != "":
		return valueFromHeader + v.Header
	case v.Value != "":
		return valueFromValue + v.Value
	}
	return ""
}

// ParseValueFrom undoes ValueFrom.
func ParseValueFrom(v string) (tenant.ValueFrom, error) {
	switch {
	case v == "":
		return tenant.ValueFrom{}, nil
	case strings.HasPrefix(v, valueFromField) && len(v) > len(valueFromField):
		return tenant.ValueFrom{Field: v[len(valueFromField):]}, nil
	case strings.HasPrefix(v, valueFromHeader) && len(v) > len(valueFromHeader):
		return tenant.ValueFrom{Header: v[len(valueFromHeader):]}, nil
	case strings.HasPrefix(v, valueFromValue) && len(v) > len(valueFromValue):
		return tenant.ValueFrom{Value: v[len(valueFromValue):]}, nil
	}
	return tenant.ValueFrom{}, fmt.Errorf("%q: want field:<name>, header:<name> or value:<text>", v)
}

// Source is the API form of a source, without its secrets. The tolerance
// is in whole seconds: a fraction is dropped.
func Source(s tenant.Source) *adminv1.Source {
	return &adminv1.Source{
		Tenant:            s.Tenant,
		Name:              s.Name,
		Scheme:            s.Scheme,
		EventType:         ValueFrom(s.EventType),
		EventId:           ValueFrom(s.EventID),
		MaxBodyBytes:      s.MaxBodyBytes,
		ToleranceSeconds:  int64(time.Duration(s.Tolerance) / time.Second),
		Url:               s.URL,
		PublicKeys:        s.PublicKeys,
		SignatureHeader:   s.Signature.Header,
		SignatureEncoding: s.Signature.Encoding,
		SignaturePrefix:   s.Signature.Prefix,
		Disabled:          s.Disabled,
	}
}

// StoredSource is the stored form of an API source, without secrets;
// output-only fields are ignored. A field that has no stored form is a
// *FieldError.
func StoredSource(in *adminv1.Source) (tenant.Source, error) {
	src := tenant.Source{
		Tenant:       in.GetTenant(),
		Name:         in.GetName(),
		Scheme:       in.GetScheme(),
		PublicKeys:   slices.Clone(in.GetPublicKeys()),
		URL:          in.GetUrl(),
		MaxBodyBytes: in.GetMaxBodyBytes(),
		Disabled:     in.GetDisabled(),
		Signature: tenant.Signature{
			Header:   in.GetSignatureHeader(),
			Encoding: in.GetSignatureEncoding(),
			Prefix:   in.GetSignaturePrefix(),
		},
	}
	var err error
	if src.EventType, err = ParseValueFrom(in.GetEventType()); err != nil {
		return tenant.Source{}, &FieldError{Field: "event_type", Reason: err.Error()}
	}
	if src.EventID, err = ParseValueFrom(in.GetEventId()); err != nil {
		return tenant.Source{}, &FieldError{Field: "event_id", Reason: err.Error()}
	}
	switch ts := in.GetToleranceSeconds(); {
	case ts < 0:
		return tenant.Source{}, &FieldError{Field: "tolerance_seconds", Reason: "must not be negative"}
	case ts > int64(tenant.MaxTolerance/time.Second):
		return tenant.Source{}, &FieldError{Field: "tolerance_seconds", Reason: fmt.Sprintf("at most %d (%s)", int64(tenant.MaxTolerance/time.Second), tenant.MaxTolerance)}
	default:
		src.Tolerance = tenant.Duration(time.Duration(ts) * time.Second)
	}
	return src, nil
}

// Schedule is the API form of a schedule. A one-shot time keeps its
// instant; one that does not parse is left out (Schedule.Validate refuses
// it).
func Schedule(sc schedule.Schedule) *adminv1.Schedule {
	out := &adminv1.Schedule{
		Tenant:    sc.Tenant,
		Name:      sc.Name,
		Cron:      sc.Cron,
		Timezone:  sc.Timezone,
		EventType: sc.EventType,
		Payload:   sc.Payload,
		Missed:    sc.Missed,
		Paused:    sc.Paused,
	}
	if t, err := sc.AtTime(); sc.At != "" && err == nil {
		out.At = timestamppb.New(t)
	}
	return out
}

// StoredSchedule is the stored form of an API schedule: a one-shot time in
// UTC, the payload checked to be JSON of at most MaxSchedulePayload bytes;
// output-only fields are ignored. A field that has no stored form is a
// *FieldError.
func StoredSchedule(in *adminv1.Schedule) (schedule.Schedule, error) {
	sc := schedule.Schedule{
		Tenant: in.GetTenant(), Name: in.GetName(), Cron: in.GetCron(), Timezone: in.GetTimezone(),
		EventType: in.GetEventType(), Missed: in.GetMissed(), Paused: in.GetPaused(),
	}
	if in.GetAt() != nil {
		if err := in.GetAt().CheckValid(); err != nil {
			return schedule.Schedule{}, &FieldError{Field: "at", Reason: err.Error()}
		}
		sc.At = in.GetAt().AsTime().UTC().Format(time.RFC3339Nano)
	}
	if p := in.GetPayload(); len(p) > 0 {
		if len(p) > MaxSchedulePayload {
			return schedule.Schedule{}, &FieldError{Field: "payload", Reason: fmt.Sprintf("%d bytes; at most %d are accepted", len(p), MaxSchedulePayload)}
		}
		if !json.Valid(p) {
			return schedule.Schedule{}, &FieldError{Field: "payload", Reason: "not valid JSON"}
		}
		sc.Payload = json.RawMessage(p)
	}
	return sc, nil
}
