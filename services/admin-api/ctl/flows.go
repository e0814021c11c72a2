package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/flow"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
)

func flowsCommand() *command {
	return &command{
		name: "flows", summary: "validate, apply, test and manage the event flows of tenants",
		subs: []*command{
			{name: "validate", summary: "check a flow file; problems are printed as FILE:LINE:COLUMN: path: message", setup: flowsValidate},
			{name: "apply", summary: "store a flow file (created, updated or unchanged)", setup: flowsApply},
			{name: "get", args: "TENANT NAME", summary: "print a flow's YAML document", minArgs: 2, maxArgs: 2, setup: func(*flag.FlagSet) runFunc { return flowsGet }},
			{name: "list", summary: "list flows", setup: flowsList},
			{name: "delete", args: "TENANT NAME", summary: "delete a flow", minArgs: 2, maxArgs: 2, setup: flowsDelete},
			{name: "test", summary: "run a flow against a sample event; effects are shown, not sent", setup: flowsTest},
		},
	}
}

func flowsValidate(fs *flag.FlagSet) runFunc {
	var file, tenantID string
	var local bool
	fs.StringVar(&file, "f", "", "the flow's YAML file (required)")
	fs.StringVar(&tenantID, "tenant", "", "tenant the flow is for (required unless --local)")
	fs.BoolVar(&local, "local", false, "check with greenticctl's own flow compiler: no server or token needed (CI)")
	return func(ctx context.Context, c *cli, _ []string) error {
		if tenantID == "" && !local {
			return &usageError{msg: "missing --tenant (or --local)"}
		}
		doc, err := readFile("f", file)
		if err != nil {
			return err
		}
		var res *adminv1.ValidateFlowResponse
		if local {
			res = validateLocally(doc)
		} else if res, err = c.flows.ValidateFlow(ctx, &adminv1.ValidateFlowRequest{Tenant: tenantID, Yaml: string(doc)}); err != nil {
			return err
		}
		problems := res.GetProblems()
		if c.jsonOut() {
			if err := c.printProto(res); err != nil {
				return err
			}
		} else {
			for _, p := range problems {
				fmt.Fprintln(c.stdout, problemText(file, p))
			}
			if len(problems) == 0 {
				fmt.Fprintf(c.stdout, "%s: ok\n", file)
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s: %s", file, plural(len(problems), "problem"))
		}
		return nil
	}
}

// validateLocally compiles a flow as the server does when it is saved.
func validateLocally(doc []byte) *adminv1.ValidateFlowResponse {
	res := &adminv1.ValidateFlowResponse{}
	prog, err := flow.Compile(doc)
	if err != nil {
		var problems flow.Problems
		if !errors.As(err, &problems) {
			problems = flow.Problems{{Message: err.Error()}}
		}
		for _, p := range problems {
			res.Problems = append(res.Problems, &adminv1.Problem{Line: int32(p.Line), Column: int32(p.Column), Path: p.Path, Message: p.Message})
		}
		return res
	}
	if err := bus.ValidateName("name", prog.Name()); err != nil {
		res.Problems = append(res.Problems, &adminv1.Problem{Path: "name", Message: err.Error()})
	}
	return res
}

// problemText is FILE:LINE:COLUMN: path: message, the form editors and
// compilers use, leaving out what the problem does not say.
func problemText(file string, p *adminv1.Problem) string {
	var b strings.Builder
	b.WriteString(file)
	if p.GetLine() > 0 {
		fmt.Fprintf(&b, ":%d", p.GetLine())
		if p.GetColumn() > 0 {
			fmt.Fprintf(&b, ":%d", p.GetColumn())
		}
	}
	b.WriteString(": ")
	if p.GetPath() != "" {
		b.WriteString(p.GetPath() + ": ")
	}
	b.WriteString(p.GetMessage())
	return b.String()
}

// flowName is the name a flow document declares.
func flowName(doc []byte) string {
	var head struct {
		Name string `yaml:"name"`
	}
	_ = yaml.Unmarshal(doc, &head) // a broken document is the server's to report
	return head.Name
}

func flowsApply(fs *flag.FlagSet) runFunc {
	var file, tenantID string
	var revision uint64
	fs.StringVar(&file, "f", "", "the flow's YAML file (required)")
	fs.StringVar(&tenantID, "tenant", "", "tenant of the flow (required)")
	fs.Uint64Var(&revision, "revision", 0, "replace the flow only if it is still at this revision")
	return func(ctx context.Context, c *cli, _ []string) error {
		if tenantID == "" {
			return &usageError{msg: "missing --tenant"}
		}
		doc, err := readFile("f", file)
		if err != nil {
			return err
		}
		name := flowName(doc)
		stored, what, err := c.putFlow(ctx, tenantID, name, doc, revision)
		if err != nil {
			return err
		}
		if c.jsonOut() {
			return c.printProto(stored)
		}
		_, err = fmt.Fprintf(c.stdout, "flow %s/%s %s (revision %d)\n", stored.GetTenant(), stored.GetName(), what, stored.GetRevision())
		return err
	}
}

// What a put did.
type outcome string

const (
	created   outcome = "created"
	updated   outcome = "updated"
	unchanged outcome = "unchanged"
)

// outcomeOf compares the revision of an item before (nil: it did not
// exist) and after a put.
func outcomeOf(existed bool, before, after uint64) outcome {
	switch {
	case !existed:
		return created
	case before != after:
		return updated
	}
	return unchanged
}

// putFlow stores a flow unless the stored document is already the same.
// revision 0 replaces whatever is stored (the revision read is still
// checked, so a concurrent change is not overwritten unseen).
func (c *cli) putFlow(ctx context.Context, tenantID, name string, doc []byte, revision uint64) (*adminv1.Flow, outcome, error) {
	var current *adminv1.Flow
	if name != "" {
		res, err := c.flows.GetFlow(ctx, &adminv1.GetFlowRequest{Tenant: tenantID, Name: name})
		switch {
		case err == nil:
			current = res.GetFlow()
		case status.Code(err) != codes.NotFound:
			return nil, "", err
		}
	}
	if current != nil && current.GetYaml() == string(doc) && (revision == 0 || revision == current.GetRevision()) {
		return current, unchanged, nil
	}
	if revision == 0 {
		revision = current.GetRevision()
	}
	res, err := c.flows.PutFlow(ctx, &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: tenantID, Name: name, Yaml: string(doc), Revision: revision}})
	if err != nil {
		return nil, "", err
	}
	stored := res.GetFlow()
	return stored, outcomeOf(current != nil, current.GetRevision(), stored.GetRevision()), nil
}

func flowsGet(ctx context.Context, c *cli, args []string) error {
	res, err := c.flows.GetFlow(ctx, &adminv1.GetFlowRequest{Tenant: args[0], Name: args[1]})
	if err != nil {
		return err
	}
	if c.jsonOut() {
		return c.printProto(res.GetFlow())
	}
	doc := res.GetFlow().GetYaml()
	if !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	_, err = fmt.Fprint(c.stdout, doc)
	return err
}

func flowsList(fs *flag.FlagSet) runFunc {
	var tenantID string
	fs.StringVar(&tenantID, "tenant", "", "only this tenant's flows (default: every tenant the token may see)")
	return func(ctx context.Context, c *cli, _ []string) error {
		all, err := listAll(func(tok string) ([]*adminv1.Flow, string, error) {
			res, err := c.flows.ListFlows(ctx, &adminv1.ListFlowsRequest{Tenant: tenantID, PageToken: tok})
			return res.GetFlows(), res.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		if c.jsonOut() {
			return printProtoList(c, all)
		}
		t := c.table("TENANT", "NAME", "REVISION", "UPDATED")
		for _, f := range all {
			t.row(f.GetTenant(), f.GetName(), f.GetRevision(), formatTime(f.GetUpdateTime()))
		}
		return t.flush()
	}
}

func flowsDelete(fs *flag.FlagSet) runFunc {
	var revision uint64
	fs.Uint64Var(&revision, "revision", 0, "delete the flow only if it is still at this revision")
	return func(ctx context.Context, c *cli, args []string) error {
		res, err := c.flows.DeleteFlow(ctx, &adminv1.DeleteFlowRequest{Tenant: args[0], Name: args[1], Revision: revision})
		if err != nil {
			return err
		}
		return c.done(res, "flow %s/%s deleted", args[0], args[1])
	}
}

func flowsTest(fs *flag.FlagSet) runFunc {
	var file, name, tenantID, eventFile string
	fs.StringVar(&tenantID, "tenant", "", "tenant of the flow (required)")
	fs.StringVar(&file, "f", "", "an unsaved flow's YAML file (or --name)")
	fs.StringVar(&name, "name", "", "a stored flow (or -f)")
	fs.StringVar(&eventFile, "event", "", "the sample event as JSON: event_type, payload, ... (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
		switch {
		case tenantID == "":
			return &usageError{msg: "missing --tenant"}
		case (file == "") == (name == ""):
			return &usageError{msg: "give one of -f FILE and --name NAME"}
		}
		req := &adminv1.TestFlowRequest{Tenant: tenantID, Name: name}
		if file != "" {
			doc, err := readFile("f", file)
			if err != nil {
				return err
			}
			req.Yaml = string(doc)
		}
		event, err := readFile("event", eventFile)
		if err != nil {
			return err
		}
		if !json.Valid(event) {
			return fmt.Errorf("--event: %s is not JSON", eventFile)
		}
		req.EventJson = event
		res, err := c.flows.TestFlow(ctx, req)
		if err != nil {
			return err
		}
		if c.jsonOut() {
			return c.printTestResult(res)
		}
		fmt.Fprintln(c.stdout, "RESULT")
		writeIndentedJSON(c.stdout, res.GetResultJson(), "")
		fmt.Fprintf(c.stdout, "\nEFFECTS (%d, not sent)\n", len(res.GetEffects()))
		if len(res.GetEffects()) == 0 {
			return nil
		}
		t := c.table("KIND", "JSON")
		for _, e := range res.GetEffects() {
			t.row(e.GetKind(), string(e.GetJson()))
		}
		return t.flush()
	}
}

// printTestResult prints a dry run as protojson with the result and each
// effect inlined as JSON.
func (c *cli) printTestResult(res *adminv1.TestFlowResponse) error {
	doc, err := withInlineJSON(res, "result_json")
	if err != nil {
		return err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil {
		return err
	}
	effects := make([]json.RawMessage, 0, len(res.GetEffects()))
	for _, e := range res.GetEffects() {
		b, err := withInlineJSON(e, "json")
		if err != nil {
			return err
		}
		effects = append(effects, b)
	}
	if obj["effects"], err = json.Marshal(effects); err != nil {
		return err
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return c.writeJSON(b)
}
