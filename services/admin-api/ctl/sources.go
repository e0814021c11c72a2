package ctl

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/greentic/events/pkg/bundle"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/tenant"
)

// listAll follows the page tokens of a List method to the end.
func listAll[T any](fetch func(pageToken string) ([]T, string, error)) ([]T, error) {
	var all []T
	token := ""
	for {
		items, next, err := fetch(token)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" || next == token {
			return all, nil
		}
		token = next
	}
}

// readFile reads the file a flag names; a missing flag is a usage error.
func readFile(flagName, path string) ([]byte, error) {
	dashes := "--"
	if len(flagName) == 1 {
		dashes = "-"
	}
	if path == "" {
		return nil, &usageError{msg: "missing " + dashes + flagName + " FILE"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", dashes, flagName, err)
	}
	return b, nil
}

func sourcesCommand() *command {
	return &command{
		name: "sources", summary: "manage the inbound webhook sources of tenants",
		subs: []*command{
			{name: "list", summary: "list sources (secrets are never shown)", setup: sourcesList},
			{name: "get", args: "TENANT NAME", summary: "show a source", minArgs: 2, maxArgs: 2, setup: func(*flag.FlagSet) runFunc { return sourcesGet }},
			{name: "put", summary: "create or replace a source from a YAML file (the JSON names of a bundle's source, with tenant)", setup: sourcesPut},
			{name: "delete", args: "TENANT NAME", summary: "delete a source", minArgs: 2, maxArgs: 2, setup: sourcesDelete},
			{name: "rotate-secret", args: "TENANT NAME", summary: "add a new secret; the old ones stay accepted for the grace period", minArgs: 2, maxArgs: 2, setup: sourcesRotate},
		},
	}
}

func sourcesList(fs *flag.FlagSet) runFunc {
	var tenantID string
	fs.StringVar(&tenantID, "tenant", "", "only this tenant's sources (default: every tenant the token may see)")
	return func(ctx context.Context, c *cli, _ []string) error {
		all, err := listAll(func(tok string) ([]*adminv1.Source, string, error) {
			res, err := c.sources.ListSources(ctx, &adminv1.ListSourcesRequest{Tenant: tenantID, PageToken: tok})
			return res.GetSources(), res.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		return c.printSources(all)
	}
}

func (c *cli) printSources(ss []*adminv1.Source) error {
	if c.jsonOut() {
		return printProtoList(c, ss)
	}
	t := c.table("TENANT", "NAME", "SCHEME", "EVENT TYPE", "SECRETS", "REVISION")
	for _, s := range ss {
		t.row(s.GetTenant(), s.GetName(), s.GetScheme(), s.GetEventType(), s.GetSecretCount(), s.GetRevision())
	}
	return t.flush()
}

func (c *cli) printSource(s *adminv1.Source) error {
	if c.jsonOut() {
		return c.printProto(s)
	}
	d := c.details()
	d.add("tenant", s.GetTenant())
	d.add("name", s.GetName())
	d.add("scheme", s.GetScheme())
	if s.GetDisabled() {
		d.add("disabled", "yes: its webhooks are refused (403 source_disabled)")
	}
	d.add("secrets", s.GetSecretCount())
	if len(s.GetPublicKeys()) > 0 {
		d.add("public keys", len(s.GetPublicKeys()))
	}
	convention := "-"
	if tenant.HasConvention(s.GetScheme()) {
		convention = "the " + s.GetScheme() + " convention"
	}
	d.add("event type", orDefault(s.GetEventType(), convention))
	d.add("event id", orDefault(s.GetEventId(), convention))
	if s.GetSignatureHeader() != "" {
		d.add("signature", strings.TrimSpace(fmt.Sprintf("header %s, encoding %s, prefix %q", s.GetSignatureHeader(), orDefault(s.GetSignatureEncoding(), "hex"), s.GetSignaturePrefix())))
	}
	if s.GetToleranceSeconds() > 0 {
		d.add("tolerance", time.Duration(s.GetToleranceSeconds())*time.Second)
	}
	if s.GetUrl() != "" {
		d.add("url", s.GetUrl())
	}
	if s.GetMaxBodyBytes() > 0 {
		d.add("max body bytes", s.GetMaxBodyBytes())
	}
	d.add("revision", s.GetRevision())
	return d.flush()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sourcesGet(ctx context.Context, c *cli, args []string) error {
	res, err := c.sources.GetSource(ctx, &adminv1.GetSourceRequest{Tenant: args[0], Name: args[1]})
	if err != nil {
		return err
	}
	return c.printSource(res.GetSource())
}

func sourcesPut(fs *flag.FlagSet) runFunc {
	var file, tenantID string
	var revision uint64
	fs.StringVar(&file, "f", "", "the source as YAML (required)")
	fs.StringVar(&tenantID, "tenant", "", "tenant of the source when the file names none")
	fs.Uint64Var(&revision, "revision", 0, "replace the source only if it is still at this revision")
	return func(ctx context.Context, c *cli, _ []string) error {
		doc, err := readFile("f", file)
		if err != nil {
			return err
		}
		var s tenant.Source
		if err := bundle.DecodeYAML(doc, &s); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := defaultTenant(&s.Tenant, tenantID); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		src, secrets, err := sourceProto(s)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		src.Revision = revision
		res, err := c.sources.PutSource(ctx, &adminv1.PutSourceRequest{Source: src, Secrets: secrets})
		if err != nil {
			return err
		}
		return c.printSources([]*adminv1.Source{res.GetSource()})
	}
}

// defaultTenant sets the tenant of an item read from a file from --tenant
// when the file names none; the two must not disagree.
func defaultTenant(field *string, flagValue string) error {
	switch {
	case flagValue == "":
	case *field == "":
		*field = flagValue
	case *field != flagValue:
		return fmt.Errorf("tenant %q differs from --tenant %s", *field, flagValue)
	}
	return nil
}

func sourcesDelete(fs *flag.FlagSet) runFunc {
	var revision uint64
	fs.Uint64Var(&revision, "revision", 0, "delete the source only if it is still at this revision")
	return func(ctx context.Context, c *cli, args []string) error {
		res, err := c.sources.DeleteSource(ctx, &adminv1.DeleteSourceRequest{Tenant: args[0], Name: args[1], Revision: revision})
		if err != nil {
			return err
		}
		return c.done(res, "source %s/%s deleted", args[0], args[1])
	}
}

func sourcesRotate(fs *flag.FlagSet) runFunc {
	var secretFile string
	var grace time.Duration
	fs.StringVar(&secretFile, "secret-file", "", "file holding the new secret (required; surrounding whitespace is trimmed)")
	fs.DurationVar(&grace, "grace", 0, "how long the old secrets stay accepted (default: the server's, 24h)")
	return func(ctx context.Context, c *cli, args []string) error {
		raw, err := readFile("secret-file", secretFile)
		if err != nil {
			return err
		}
		secret := strings.TrimSpace(string(raw))
		if secret == "" {
			return fmt.Errorf("--secret-file: %s is empty", secretFile)
		}
		if grace < 0 || grace%time.Second != 0 {
			return &usageError{msg: fmt.Sprintf("--grace %s: want a positive number of whole seconds", grace)}
		}
		res, err := c.sources.RotateSourceSecret(ctx, &adminv1.RotateSourceSecretRequest{
			Tenant: args[0], Name: args[1], NewSecret: secret, GraceSeconds: int64(grace / time.Second),
		})
		if err != nil {
			return err
		}
		if c.jsonOut() {
			return c.printProto(res)
		}
		if err := c.printSources([]*adminv1.Source{res.GetSource()}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "old secrets accepted until %s\n", formatTime(res.GetOldSecretsExpireTime()))
		return err
	}
}
