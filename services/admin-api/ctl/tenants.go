package ctl

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
)

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// tenantFlags are the settable fields of a tenant.
type tenantFlags struct {
	displayName string
	perSecond   float64
	burst       int
	accounts    stringList
}

func (f *tenantFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.displayName, "display-name", "", "name shown to people")
	fs.Float64Var(&f.perSecond, "rate-per-second", 0, "webhook intake limit per ingress replica, requests per second (with --burst; 0 and 0: the ingress default)")
	fs.IntVar(&f.burst, "burst", 0, "requests accepted at once above the rate (with --rate-per-second)")
	fs.Var(&f.accounts, "account", "a provider account of the tenant, NAME=PROVIDER:SECRET_REF (repeatable; PROVIDER sendgrid or twilio)")
}

// apply copies the flags given on the command line into t and returns the
// update mask paths they stand for.
func (f *tenantFlags) apply(fs *flag.FlagSet, t *adminv1.Tenant) ([]string, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var paths []string
	if set["display-name"] {
		t.DisplayName = f.displayName
		paths = append(paths, "display_name")
	}
	if set["rate-per-second"] || set["burst"] {
		if set["rate-per-second"] != set["burst"] {
			return nil, &usageError{msg: "--rate-per-second and --burst go together"}
		}
		t.RateLimit = &adminv1.RateLimit{PerSecond: f.perSecond, Burst: int32(f.burst)}
		paths = append(paths, "rate_limit")
	}
	if set["account"] {
		accounts, err := accountsFlag(f.accounts)
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		t.Accounts = accounts
		paths = append(paths, "accounts")
	}
	return paths, nil
}

func tenantsCommand() *command {
	return &command{
		name: "tenants", summary: "list, show, create, change, suspend and delete tenants",
		subs: []*command{
			{name: "list", summary: "list the tenants", setup: func(*flag.FlagSet) runFunc { return tenantsList }},
			{name: "get", args: "ID", summary: "show a tenant", minArgs: 1, maxArgs: 1, setup: func(*flag.FlagSet) runFunc { return tenantsGet }},
			{name: "create", args: "ID", summary: "create a tenant", minArgs: 1, maxArgs: 1, setup: tenantsCreate},
			{name: "update", args: "ID", summary: "change the given fields of a tenant", minArgs: 1, maxArgs: 1, setup: tenantsUpdate},
			{name: "suspend", args: "ID", summary: "suspend a tenant: it keeps its configuration but receives nothing", minArgs: 1, maxArgs: 1, setup: func(*flag.FlagSet) runFunc { return tenantsSuspend }},
			{name: "resume", args: "ID", summary: "resume a suspended tenant", minArgs: 1, maxArgs: 1, setup: func(*flag.FlagSet) runFunc { return tenantsResume }},
			{name: "delete", args: "ID", summary: "delete a tenant with its sources, flows and schedules", minArgs: 1, maxArgs: 1, setup: tenantsDelete},
		},
	}
}

func tenantsList(ctx context.Context, c *cli, _ []string) error {
	all, err := listAll(func(tok string) ([]*adminv1.Tenant, string, error) {
		res, err := c.tenants.ListTenants(ctx, &adminv1.ListTenantsRequest{PageToken: tok})
		return res.GetTenants(), res.GetNextPageToken(), err
	})
	if err != nil {
		return err
	}
	return c.printTenants(all)
}

func (c *cli) printTenants(ts []*adminv1.Tenant) error {
	if c.jsonOut() {
		return printProtoList(c, ts)
	}
	t := c.table("ID", "DISPLAY NAME", "STATUS", "RATE LIMIT", "ACCOUNTS", "REVISION")
	for _, x := range ts {
		t.row(x.GetId(), x.GetDisplayName(), tenantStatus(x), rateLimitText(x.GetRateLimit()), len(x.GetAccounts()), x.GetRevision())
	}
	return t.flush()
}

func tenantStatus(t *adminv1.Tenant) string {
	if t.GetSuspended() {
		return "suspended"
	}
	return "active"
}

func (c *cli) printTenant(t *adminv1.Tenant) error {
	if c.jsonOut() {
		return c.printProto(t)
	}
	d := c.details()
	d.add("id", t.GetId())
	d.add("display name", t.GetDisplayName())
	d.add("status", tenantStatus(t))
	d.add("rate limit", rateLimitText(t.GetRateLimit()))
	d.add("accounts", accountsText(t.GetAccounts()))
	d.add("revision", t.GetRevision())
	d.add("created", formatTime(t.GetCreateTime()))
	d.add("updated", formatTime(t.GetUpdateTime()))
	return d.flush()
}

func tenantsGet(ctx context.Context, c *cli, args []string) error {
	res, err := c.tenants.GetTenant(ctx, &adminv1.GetTenantRequest{Id: args[0]})
	if err != nil {
		return err
	}
	return c.printTenant(res.GetTenant())
}

func tenantsCreate(fs *flag.FlagSet) runFunc {
	var f tenantFlags
	f.register(fs)
	return func(ctx context.Context, c *cli, args []string) error {
		t := &adminv1.Tenant{Id: args[0]}
		if _, err := f.apply(fs, t); err != nil {
			return err
		}
		res, err := c.tenants.CreateTenant(ctx, &adminv1.CreateTenantRequest{Tenant: t})
		if err != nil {
			return err
		}
		return c.printTenants([]*adminv1.Tenant{res.GetTenant()})
	}
}

func tenantsUpdate(fs *flag.FlagSet) runFunc {
	var f tenantFlags
	f.register(fs)
	var revision uint64
	fs.Uint64Var(&revision, "revision", 0, "change the tenant only if it is still at this revision")
	return func(ctx context.Context, c *cli, args []string) error {
		t := &adminv1.Tenant{Id: args[0], Revision: revision}
		paths, err := f.apply(fs, t)
		if err != nil {
			return err
		}
		if len(paths) == 0 {
			return &usageError{msg: "nothing to change: give --display-name, --rate-per-second and --burst, or --account"}
		}
		res, err := c.tenants.UpdateTenant(ctx, &adminv1.UpdateTenantRequest{Tenant: t, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		if err != nil {
			return err
		}
		return c.printTenants([]*adminv1.Tenant{res.GetTenant()})
	}
}

func tenantsSuspend(ctx context.Context, c *cli, args []string) error {
	res, err := c.tenants.SuspendTenant(ctx, &adminv1.SuspendTenantRequest{Id: args[0]})
	if err != nil {
		return err
	}
	return c.printTenants([]*adminv1.Tenant{res.GetTenant()})
}

func tenantsResume(ctx context.Context, c *cli, args []string) error {
	res, err := c.tenants.ResumeTenant(ctx, &adminv1.ResumeTenantRequest{Id: args[0]})
	if err != nil {
		return err
	}
	return c.printTenants([]*adminv1.Tenant{res.GetTenant()})
}

func tenantsDelete(fs *flag.FlagSet) runFunc {
	var revision uint64
	fs.Uint64Var(&revision, "revision", 0, "delete the tenant only if it is still at this revision")
	return func(ctx context.Context, c *cli, args []string) error {
		res, err := c.tenants.DeleteTenant(ctx, &adminv1.DeleteTenantRequest{Id: args[0], Revision: revision})
		if err != nil {
			return err
		}
		return c.done(res, "tenant %s deleted", args[0])
	}
}

// done reports a change that returns nothing to show: the (empty)
// response in JSON, a sentence for people.
func (c *cli) done(res proto.Message, format string, args ...any) error {
	if c.jsonOut() {
		return c.printProto(res)
	}
	_, err := fmt.Fprintf(c.stdout, format+"\n", args...)
	return err
}
