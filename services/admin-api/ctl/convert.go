package ctl

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/services/admin-api/adminconv"
)

// The files greenticctl reads (sources, schedules, bundles) use the JSON
// names of package tenant and schedule, the form the buckets store;
// package adminconv turns them into the API's messages, and these
// functions refuse what the API cannot take.

func sameRateLimit(a, b *adminv1.RateLimit) bool {
	return a.GetPerSecond() == b.GetPerSecond() && a.GetBurst() == b.GetBurst()
}

func sameAccounts(a, b map[string]*adminv1.ProviderAccount) bool {
	return maps.EqualFunc(a, b, func(x, y *adminv1.ProviderAccount) bool {
		return x.GetProvider() == y.GetProvider() && x.GetSecretRef() == y.GetSecretRef()
	})
}

// sourceProto splits a source into the API's message and its write-only
// secrets.
func sourceProto(s tenant.Source) (*adminv1.Source, []string, error) {
	if len(s.RetiringSecrets) > 0 {
		return nil, nil, errors.New("retiring_secrets: the server keeps them; use sources rotate-secret to replace a secret")
	}
	if tol := time.Duration(s.Tolerance); tol%time.Second != 0 {
		return nil, nil, fmt.Errorf("tolerance: the admin API takes whole seconds, got %s", tol)
	}
	return adminconv.Source(s), s.Secrets, nil
}

// scheduleProto is the API's form of a schedule; a one-shot time keeps its
// instant (the API stores it in UTC).
func scheduleProto(s schedule.Schedule) (*adminv1.Schedule, error) {
	if s.At != "" {
		if _, err := s.AtTime(); err != nil {
			return nil, err
		}
	}
	return adminconv.Schedule(s), nil
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
