package ctl

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant"
)

// The files greenticctl reads (sources, schedules, bundles) use the JSON
// names of package tenant and schedule, the form the buckets store; these
// functions turn them into the API's messages.

func tenantProto(t tenant.Tenant) *adminv1.Tenant {
	out := &adminv1.Tenant{Id: t.ID, DisplayName: t.DisplayName, Suspended: t.Suspended}
	if t.RateLimit != (tenant.RateLimit{}) {
		out.RateLimit = &adminv1.RateLimit{PerSecond: t.RateLimit.PerSecond, Burst: int32(t.RateLimit.Burst)}
	}
	if len(t.Accounts) > 0 {
		out.Accounts = map[string]*adminv1.ProviderAccount{}
		for name, a := range t.Accounts {
			out.Accounts[name] = &adminv1.ProviderAccount{Provider: a.Provider, SecretRef: a.SecretRef}
		}
	}
	return out
}

func sameRateLimit(a, b *adminv1.RateLimit) bool {
	return a.GetPerSecond() == b.GetPerSecond() && a.GetBurst() == b.GetBurst()
}

func sameAccounts(a, b map[string]*adminv1.ProviderAccount) bool {
	return maps.EqualFunc(a, b, func(x, y *adminv1.ProviderAccount) bool {
		return x.GetProvider() == y.GetProvider() && x.GetSecretRef() == y.GetSecretRef()
	})
}

// valueFrom is the API's form of where a value comes from: "field:NAME",
// "header:NAME" or "value:TEXT".
func valueFrom(v tenant.ValueFrom) string {
	switch {
	case v.Field != "":
		return "field:" + v.Field
	case v.Header != "":
		return "header:" + v.Header
	case v.Value != "":
		return "value:" + v.Value
	}
	return ""
}

// sourceProto splits a source into the API's message and its write-only
// secrets.
func sourceProto(s tenant.Source) (*adminv1.Source, []string, error) {
	if len(s.RetiringSecrets) > 0 {
		return nil, nil, errors.New("retiring_secrets: the server keeps them; use sources rotate-secret to replace a secret")
	}
	tol := time.Duration(s.Tolerance)
	if tol%time.Second != 0 {
		return nil, nil, fmt.Errorf("tolerance: the admin API takes whole seconds, got %s", tol)
	}
	return &adminv1.Source{
		Tenant:            s.Tenant,
		Name:              s.Name,
		Scheme:            s.Scheme,
		EventType:         valueFrom(s.EventType),
		EventId:           valueFrom(s.EventID),
		MaxBodyBytes:      s.MaxBodyBytes,
		ToleranceSeconds:  int64(tol / time.Second),
		Url:               s.URL,
		PublicKeys:        s.PublicKeys,
		SignatureHeader:   s.Signature.Header,
		SignatureEncoding: s.Signature.Encoding,
		SignaturePrefix:   s.Signature.Prefix,
		Disabled:          s.Disabled,
	}, s.Secrets, nil
}

// scheduleProto is the API's form of a schedule; a one-shot time keeps its
// instant (the API stores it in UTC).
func scheduleProto(s schedule.Schedule) (*adminv1.Schedule, error) {
	out := &adminv1.Schedule{
		Tenant:    s.Tenant,
		Name:      s.Name,
		Cron:      s.Cron,
		Timezone:  s.Timezone,
		EventType: s.EventType,
		Payload:   s.Payload,
		Missed:    s.Missed,
		Paused:    s.Paused,
	}
	if s.At != "" {
		at, err := s.AtTime()
		if err != nil {
			return nil, err
		}
		out.At = timestamppb.New(at)
	}
	return out, nil
}

// accountsFlag parses repeated --account NAME=PROVIDER:SECRET_REF values.
func accountsFlag(values []string) (map[string]*adminv1.ProviderAccount, error) {
	out := map[string]*adminv1.ProviderAccount{}
	for _, v := range values {
		name, rest, ok := strings.Cut(v, "=")
		provider, ref, ok2 := strings.Cut(rest, ":")
		if !ok || !ok2 || name == "" {
			return nil, fmt.Errorf("--account %q: want NAME=PROVIDER:SECRET_REF (e.g. marketing=sendgrid:acme-sendgrid)", v)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--account: account %q is given twice", name)
		}
		out[name] = &adminv1.ProviderAccount{Provider: provider, SecretRef: ref}
	}
	return out, nil
}

// accountsText is a tenant's accounts for a table: name=provider:ref, ...
func accountsText(accounts map[string]*adminv1.ProviderAccount) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(accounts)) {
		a := accounts[name]
		parts = append(parts, name+"="+a.GetProvider()+":"+a.GetSecretRef())
	}
	return strings.Join(parts, ",")
}

func rateLimitText(r *adminv1.RateLimit) string {
	if r.GetPerSecond() == 0 && r.GetBurst() == 0 {
		return "default"
	}
	return fmt.Sprintf("%g/s burst %d", r.GetPerSecond(), r.GetBurst())
}
