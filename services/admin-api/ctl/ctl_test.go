package ctl

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/services/admin-api/adminapi"
)

// Tokens of the test server.
const (
	operatorToken = "operator-token-0123456789"
	acmeToken     = "acme-token-0123456789abc"
	testTokens    = "operator=" + operatorToken + ",tenant:acme=" + acmeToken
)

// testServer is a real admin API on loopback over an embedded nats-server.
type testServer struct {
	addr string
	// rt is a runtime of its own on the server's bus, to put dead letters.
	rt *service.Runtime
}

func startServer(t *testing.T) *testServer {
	return startServerWith(t, func(*adminapi.Config) {})
}

func startServerWith(t *testing.T, edit func(*adminapi.Config)) *testServer {
	t.Helper()
	nats := natstest.RunServer(t)
	rt := servicetest.Runtime(t, nats.URL(), "test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := adminapi.ParseTokens(testTokens)
	if err != nil {
		t.Fatal(err)
	}
	cfg := adminapi.Config{Listener: ln, ParsedTokens: tokens, CallTimeout: 10 * time.Second, ReplayRate: 1000}
	edit(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := adminapi.NewServer(ctx, rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := srv.GRPC()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return &testServer{addr: ln.Addr().String(), rt: servicetest.Runtime(t, nats.URL(), "test")}
}

// result is what one greenticctl run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%sstderr:\n%s", r.code, r.stdout, r.stderr)
}

// greenticctl runs Main in-process.
func greenticctl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := Main(ctx, args, &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// as runs greenticctl against s with token (global flags first).
func (s *testServer) as(t *testing.T, token string, args ...string) result {
	t.Helper()
	return greenticctl(t, append([]string{"--addr", s.addr, "--timeout", "10s", "--token", token}, args...)...)
}

// op runs greenticctl as the operator and requires success.
func (s *testServer) op(t *testing.T, args ...string) result {
	t.Helper()
	r := s.as(t, operatorToken, args...)
	if r.code != ExitOK {
		t.Fatalf("greenticctl %s:\n%s", strings.Join(args, " "), r)
	}
	return r
}

// wantFail requires exit code 1 with stderr matching each pattern.
func wantFail(t *testing.T, r result, patterns ...string) {
	t.Helper()
	if r.code != ExitError {
		t.Fatalf("want exit 1, got\n%s", r)
	}
	if !strings.HasPrefix(r.stderr, "greenticctl: ") {
		t.Errorf("stderr does not start with \"greenticctl: \":\n%s", r.stderr)
	}
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(r.stderr) {
			t.Errorf("stderr does not match %s:\n%s", p, r.stderr)
		}
	}
}

// wantAuthenticated requires that the call reached the server and passed
// authentication (whatever the method then answered).
func wantAuthenticated(t *testing.T, r result) {
	t.Helper()
	if r.code == ExitUsage || strings.Contains(r.stderr, "Unauthenticated") || strings.Contains(r.stderr, "Unavailable") {
		t.Fatalf("the call was not authenticated:\n%s", r)
	}
}

// rows are the lines of a table after its header, split into columns of
// two or more spaces.
func rows(t *testing.T, table string, header ...string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	sep := regexp.MustCompile(`\s{2,}`)
	if got := sep.Split(strings.TrimSpace(lines[0]), -1); strings.Join(got, "|") != strings.Join(header, "|") {
		t.Fatalf("header = %q, want %q\n%s", got, header, table)
	}
	var out [][]string
	for _, l := range lines[1:] {
		out = append(out, sep.Split(strings.TrimSpace(l), -1))
	}
	return out
}

func jsonArray(t *testing.T, out string) []map[string]any {
	t.Helper()
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	return v
}

func jsonObject(t *testing.T, out string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, out)
	}
	return v
}

func TestUsageErrors(t *testing.T) {
	// Nothing here reaches a server: the address is never dialled.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"tenant"}, `unknown command "tenant"`},
		{"group without command", []string{"tenants"}, "missing command"},
		{"unknown subcommand", []string{"tenants", "lst"}, `unknown tenants command "lst"`},
		{"missing argument", []string{"tenants", "get"}, "missing argument: ID"},
		{"missing arguments", []string{"sources", "get", "acme"}, "missing argument: TENANT NAME"},
		{"extra argument", []string{"tenants", "get", "acme", "globex"}, `unexpected argument "globex"`},
		{"unknown flag", []string{"tenants", "list", "--colour"}, "flag provided but not defined: -colour"},
		{"unknown global flag", []string{"--colour", "tenants", "list"}, "flag provided but not defined: -colour"},
		{"bad flag value", []string{"tenants", "delete", "acme", "--revision", "latest"}, `invalid value "latest"`},
		{"bad output", []string{"-o", "yaml", "tenants", "list"}, "-o yaml: want table or json"},
		{"token and token file", []string{"--token", "x", "--token-file", "y", "tenants", "list"}, "exclusive"},
		{"cert without key", []string{"--cert", "client.pem", "tenants", "list"}, "--cert and --key go together"},
		{"nothing to update", []string{"tenants", "update", "acme"}, "nothing to change"},
		{"rate without burst", []string{"tenants", "create", "acme", "--rate-per-second", "5"}, "--rate-per-second and --burst go together"},
		{"bad account", []string{"tenants", "create", "acme", "--account", "marketing"}, "NAME=PROVIDER:SECRET_REF"},
		{"flows validate without file", []string{"flows", "validate", "--local"}, "missing -f FILE"},
		{"flows validate without tenant", []string{"flows", "validate", "-f", "testdata/flows/orders.yaml"}, "missing --tenant (or --local)"},
		{"flows apply without tenant", []string{"flows", "apply", "-f", "testdata/flows/orders.yaml"}, "missing --tenant"},
		{"flows test without flow", []string{"flows", "test", "--tenant", "acme", "--event", "testdata/event.json"}, "one of -f FILE and --name NAME"},
		{"sources put without file", []string{"sources", "put"}, "missing -f FILE"},
		{"rotate without secret", []string{"sources", "rotate-secret", "acme", "shop"}, "missing --secret-file FILE"},
		{"replay without selection", []string{"dlq", "replay"}, "missing SEQ"},
		{"replay seq and all", []string{"dlq", "replay", "7", "--all"}, "not both"},
		{"purge filter without all", []string{"dlq", "purge", "7", "--stage", "flow"}, "with --all"},
		{"replay tenant without all", []string{"dlq", "replay", "7", "--tenant", "acme"}, "--tenant, --stage, --type, --since and --until select with --all"},
		{"bad seq", []string{"dlq", "show", "seven"}, `SEQ "seven"`},
		{"bad since", []string{"dlq", "list", "--since", "yesterday"}, `--since "yesterday"`},
		{"apply without file", []string{"apply"}, "missing -f FILE"},
		{"help of unknown command", []string{"help", "tenants", "lst"}, `no help for "tenants lst"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := greenticctl(t, append([]string{"--addr", "127.0.0.1:1"}, tc.args...)...)
			if r.code != ExitUsage {
				t.Fatalf("want exit 2, got\n%s", r)
			}
			if !strings.HasPrefix(r.stderr, "greenticctl: ") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not start with \"greenticctl: \" and name %q:\n%s", tc.want, r.stderr)
			}
			if !strings.Contains(r.stderr, "usage: greenticctl") {
				t.Errorf("stderr shows no usage:\n%s", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"tenants", "sources", "flows", "schedules", "dlq", "apply", "--addr", "--token-file", "--timeout", "exit codes"}},
		{[]string{"-h"}, []string{"usage: greenticctl COMMAND"}},
		{[]string{"tenants", "-h"}, []string{"usage: greenticctl tenants COMMAND", "suspend ID"}},
		{[]string{"tenants", "create", "-h"}, []string{"usage: greenticctl tenants create ID", "--display-name", "--rate-per-second"}},
		{[]string{"help", "dlq", "replay"}, []string{"usage: greenticctl dlq replay [SEQ]", "--all", "--rate", "--purge", "--since"}},
		{[]string{"--addr", "127.0.0.1:1", "flows", "validate", "--help"}, []string{"usage: greenticctl flows validate", "-f string"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := greenticctl(t, tc.args...)
			if r.code != ExitOK || r.stderr != "" {
				t.Fatalf("want exit 0 and no error, got\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help does not mention %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func TestTokens(t *testing.T) {
	s := startServer(t)
	// Neither the environment nor the working directory may give a token.
	t.Setenv(EnvToken, "")
	t.Setenv(EnvTokenFile, "")
	t.Chdir(t.TempDir())

	t.Run("missing", func(t *testing.T) {
		r := greenticctl(t, "--addr", s.addr, "tenants", "list")
		wantFail(t, r, `^greenticctl: Unauthenticated: missing bearer token`, `(?m)^  hint: no token given`)
	})
	t.Run("wrong", func(t *testing.T) {
		r := greenticctl(t, "tenants", "list", "--addr", s.addr, "--token", "wrong-token-0123456789abc")
		wantFail(t, r, `Unauthenticated: invalid bearer token`)
		if strings.Contains(r.stderr, "hint") {
			t.Errorf("a hint about a missing token for a wrong one:\n%s", r.stderr)
		}
	})
	t.Run("flag after the command", func(t *testing.T) {
		wantAuthenticated(t, greenticctl(t, "tenants", "list", "--addr", s.addr, "--token", operatorToken))
	})
	t.Run("token file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(f, []byte(operatorToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantAuthenticated(t, greenticctl(t, "--addr", s.addr, "--token-file", f, "tenants", "list"))
		wantFail(t, greenticctl(t, "--addr", s.addr, "--token-file", f+".missing", "tenants", "list"), "--token-file: .*no such file")
	})
	t.Run("a line of the server's tokens file", func(t *testing.T) {
		// The chart's Secret and -admin-tokens-file hold [NAME@]SCOPE=TOKEN.
		f := filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(f, []byte("# generated\ngenerated@operator="+operatorToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantAuthenticated(t, greenticctl(t, "--addr", s.addr, "--token-file", f, "tenants", "list"))
		if err := os.WriteFile(f, []byte("operator="+operatorToken+"\ntenant:acme="+operatorToken+"x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := greenticctl(t, "--addr", s.addr, "--token-file", f, "tenants", "list")
		wantFail(t, r, "holds 2 lines")
		if strings.Contains(r.stderr, operatorToken) {
			t.Errorf("the error shows the token:\n%s", r.stderr)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(EnvAddr, s.addr)
		t.Setenv(EnvToken, operatorToken)
		wantAuthenticated(t, greenticctl(t, "tenants", "list"))
	})
	t.Run("standalone's token file", func(t *testing.T) {
		if err := os.MkdirAll(filepath.Dir(DefaultTokenFile), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(DefaultTokenFile, []byte(operatorToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(".greentic") })
		wantAuthenticated(t, greenticctl(t, "--addr", s.addr, "tenants", "list"))
	})
}

func TestUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	r := greenticctl(t, "--addr", addr, "--token", operatorToken, "--timeout", "2s", "tenants", "list")
	wantFail(t, r, `^greenticctl: Unavailable: `, `(?m)^  hint: is the admin API running at `+regexp.QuoteMeta(addr))
}

func TestTenants(t *testing.T) {
	s := startServer(t)
	r := s.op(t, "tenants", "create", "acme", "--display-name", "ACME Corp", "--rate-per-second", "5", "--burst", "10",
		"--account", "marketing=sendgrid:acme-sendgrid")
	header := []string{"ID", "DISPLAY NAME", "STATUS", "RATE LIMIT", "ACCOUNTS", "REVISION"}
	if got := rows(t, r.stdout, header...); len(got) != 1 || got[0][0] != "acme" || got[0][1] != "ACME Corp" || got[0][2] != "active" || got[0][3] != "5/s burst 10" || got[0][4] != "1" {
		t.Errorf("create printed %q", got)
	}
	s.op(t, "tenants", "create", "globex")

	r = s.op(t, "tenants", "list")
	got := rows(t, r.stdout, header...)
	if len(got) != 2 || got[0][0] != "acme" || got[1][0] != "globex" || got[1][1] != "-" || got[1][3] != "default" {
		t.Errorf("list printed %q", got)
	}
	r = s.op(t, "-o", "json", "tenants", "list")
	list := jsonArray(t, r.stdout)
	if len(list) != 2 || list[0]["id"] != "acme" || list[0]["display_name"] != "ACME Corp" {
		t.Errorf("list -o json = %v", list)
	}
	if acc, _ := list[0]["accounts"].(map[string]any); acc["marketing"] == nil {
		t.Errorf("list -o json shows no account: %v", list[0])
	}

	r = s.op(t, "tenants", "get", "acme")
	for _, want := range []string{"display name: ACME Corp", "accounts:     marketing=sendgrid:acme-sendgrid", "status:       active"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get does not show %q:\n%s", want, r.stdout)
		}
	}
	r = s.op(t, "tenants", "get", "acme", "-o", "json")
	if obj := jsonObject(t, r.stdout); obj["id"] != "acme" {
		t.Errorf("get -o json = %v", obj)
	}

	r = s.op(t, "tenants", "update", "acme", "--display-name", "ACME Inc")
	if got := rows(t, r.stdout, header...); got[0][1] != "ACME Inc" || got[0][3] != "5/s burst 10" {
		t.Errorf("update printed %q; the rate limit must stay", got)
	}
	r = s.op(t, "tenants", "suspend", "acme")
	if got := rows(t, r.stdout, header...); got[0][2] != "suspended" {
		t.Errorf("suspend printed %q", got)
	}
	r = s.op(t, "tenants", "resume", "acme")
	if got := rows(t, r.stdout, header...); got[0][2] != "active" {
		t.Errorf("resume printed %q", got)
	}

	t.Run("errors", func(t *testing.T) {
		wantFail(t, s.as(t, operatorToken, "tenants", "create", "acme"), `^greenticctl: AlreadyExists: `)
		wantFail(t, s.as(t, operatorToken, "tenants", "create", "bad tenant"), `^greenticctl: InvalidArgument: `, `(?m)^  tenant\.id: `)
		wantFail(t, s.as(t, operatorToken, "tenants", "get", "initech"), `^greenticctl: NotFound: `)
		wantFail(t, s.as(t, acmeToken, "tenants", "get", "globex"), `^greenticctl: PermissionDenied: `)
		wantFail(t, s.as(t, operatorToken, "tenants", "delete", "acme", "--revision", "999999"), `^greenticctl: FailedPrecondition: `)
	})

	r = s.op(t, "tenants", "delete", "acme")
	if r.stdout != "tenant acme deleted\n" {
		t.Errorf("delete printed %q", r.stdout)
	}
	wantFail(t, s.as(t, operatorToken, "tenants", "get", "acme"), `NotFound`)
	r = s.op(t, "-o", "json", "tenants", "delete", "globex")
	jsonObject(t, r.stdout)
}

func TestSources(t *testing.T) {
	s := startServer(t)
	s.op(t, "tenants", "create", "acme")
	header := []string{"TENANT", "NAME", "SCHEME", "EVENT TYPE", "SECRETS", "REVISION"}

	r := s.op(t, "sources", "put", "-f", "testdata/source.yaml")
	if got := rows(t, r.stdout, header...); len(got) != 1 || strings.Join(got[0][:5], " ") != "acme shop hmac-sha256 field:type 1" {
		t.Errorf("put printed %q", got)
	}
	r = s.op(t, "sources", "list", "--tenant", "acme")
	if got := rows(t, r.stdout, header...); len(got) != 1 || got[0][1] != "shop" {
		t.Errorf("list printed %q", got)
	}
	r = s.op(t, "sources", "get", "acme", "shop")
	for _, want := range []string{"scheme:", "hmac-sha256", "header X-Shop-Signature", "event id:", "header:X-Delivery"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get does not show %q:\n%s", want, r.stdout)
		}
	}
	r = s.op(t, "-o", "json", "sources", "list")
	if list := jsonArray(t, r.stdout); len(list) != 1 || list[0]["signature_prefix"] != "sha256=" {
		t.Errorf("list -o json = %v", list)
	}

	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("rotated-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.op(t, "sources", "rotate-secret", "acme", "shop", "--secret-file", secret, "--grace", "1h")
	if got := rows(t, strings.SplitN(r.stdout, "old secrets", 2)[0], header...); got[0][4] != "2" {
		t.Errorf("rotate printed %q, want 2 secrets", got)
	}
	if !strings.Contains(r.stdout, "old secrets accepted until ") {
		t.Errorf("rotate does not say until when:\n%s", r.stdout)
	}

	// Secrets are write-only: no output shows them.
	for _, args := range [][]string{{"sources", "get", "acme", "shop"}, {"-o", "json", "sources", "get", "acme", "shop"}, {"-o", "json", "sources", "list"}} {
		r := s.op(t, args...)
		if strings.Contains(r.stdout, "shop-secret") || strings.Contains(r.stdout, "rotated-secret") {
			t.Errorf("%v shows a secret:\n%s", args, r.stdout)
		}
	}

	t.Run("errors", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(bad, []byte("tenant: acme\nname: shop\nscheme: hmac-sha256\nsecrets: [short]\nsignature: {header: X-Sig}\nevent_type: {field: type}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantFail(t, s.as(t, operatorToken, "sources", "put", "-f", bad), `InvalidArgument`, `(?m)^  secrets\[0\]: must be at least`)
		unknown := filepath.Join(dir, "unknown.yaml")
		if err := os.WriteFile(unknown, []byte("tenant: acme\nname: shop\nscheme: none\nmax_body: 5\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantFail(t, s.as(t, operatorToken, "sources", "put", "-f", unknown), `unknown\.yaml: .*"max_body"`)
		wantFail(t, s.as(t, operatorToken, "sources", "put", "-f", "testdata/source.yaml", "--tenant", "globex"), `tenant "acme" differs from --tenant globex`)
		wantFail(t, s.as(t, operatorToken, "sources", "get", "acme", "nope"), `NotFound`)
	})

	r = s.op(t, "sources", "delete", "acme", "shop")
	if r.stdout != "source acme/shop deleted\n" {
		t.Errorf("delete printed %q", r.stdout)
	}
}

func TestFlows(t *testing.T) {
	s := startServer(t)
	s.op(t, "tenants", "create", "acme")

	t.Run("validate broken", func(t *testing.T) {
		r := s.as(t, operatorToken, "flows", "validate", "-f", "testdata/flows/broken.yaml", "--tenant", "acme")
		if r.code != ExitError {
			t.Fatalf("want exit 1, got\n%s", r)
		}
		want := regexp.MustCompile(`(?m)^testdata/flows/broken\.yaml:5:11: nodes\[0\]\.type: unknown node type "teleport"`)
		if !want.MatchString(r.stdout) {
			t.Errorf("stdout does not match %s:\n%s", want, r.stdout)
		}
		if !strings.Contains(r.stderr, "greenticctl: testdata/flows/broken.yaml: 1 problem") {
			t.Errorf("stderr = %q", r.stderr)
		}
		r = s.as(t, operatorToken, "-o", "json", "flows", "validate", "-f", "testdata/flows/broken.yaml", "--tenant", "acme")
		if r.code != ExitError {
			t.Fatalf("want exit 1, got\n%s", r)
		}
		problems, _ := jsonObject(t, r.stdout)["problems"].([]any)
		if len(problems) != 1 || problems[0].(map[string]any)["line"] != 5.0 {
			t.Errorf("-o json problems = %v", problems)
		}
	})
	t.Run("validate locally", func(t *testing.T) {
		// No server and no token: the address is never dialled.
		r := greenticctl(t, "--addr", "127.0.0.1:1", "flows", "validate", "--local", "-f", "testdata/flows/broken.yaml")
		if r.code != ExitError || !regexp.MustCompile(`^testdata/flows/broken\.yaml:5:11: nodes\[0\]\.type: unknown node type "teleport"`).MatchString(r.stdout) {
			t.Errorf("validate --local of a broken flow:\n%s", r)
		}
		r = greenticctl(t, "--addr", "127.0.0.1:1", "flows", "validate", "--local", "-f", "testdata/flows/orders.yaml")
		if r.code != ExitOK || r.stdout != "testdata/flows/orders.yaml: ok\n" {
			t.Errorf("validate --local of a good flow:\n%s", r)
		}
	})
	t.Run("validate ok", func(t *testing.T) {
		r := s.op(t, "flows", "validate", "-f", "testdata/flows/orders.yaml", "--tenant", "acme")
		if r.stdout != "testdata/flows/orders.yaml: ok\n" {
			t.Errorf("validate printed %q", r.stdout)
		}
	})

	r := s.op(t, "flows", "apply", "--tenant", "acme", "-f", "testdata/flows/orders.yaml")
	if !regexp.MustCompile(`^flow acme/orders created \(revision \d+\)\n$`).MatchString(r.stdout) {
		t.Errorf("first apply printed %q", r.stdout)
	}
	r = s.op(t, "flows", "apply", "--tenant", "acme", "-f", "testdata/flows/orders.yaml")
	if !regexp.MustCompile(`^flow acme/orders unchanged \(revision \d+\)\n$`).MatchString(r.stdout) {
		t.Errorf("second apply printed %q", r.stdout)
	}
	wantFail(t, s.as(t, operatorToken, "flows", "apply", "--tenant", "acme", "-f", "testdata/flows/broken.yaml"), `InvalidArgument`)

	doc, err := os.ReadFile("testdata/flows/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := s.op(t, "flows", "get", "acme", "orders"); r.stdout != string(doc) {
		t.Errorf("get printed\n%s\nwant the file as written\n%s", r.stdout, doc)
	}
	r = s.op(t, "flows", "list", "--tenant", "acme")
	if got := rows(t, r.stdout, "TENANT", "NAME", "REVISION", "UPDATED"); len(got) != 1 || got[0][1] != "orders" {
		t.Errorf("list printed %q", got)
	}
	if list := jsonArray(t, s.op(t, "-o", "json", "flows", "list").stdout); len(list) != 1 || list[0]["yaml"] != string(doc) {
		t.Errorf("list -o json = %v", list)
	}

	for _, how := range [][]string{{"--name", "orders"}, {"-f", "testdata/flows/orders.yaml"}} {
		t.Run("test "+how[0], func(t *testing.T) {
			args := append([]string{"flows", "test", "--tenant", "acme", "--event", "testdata/event.json"}, how...)
			r := s.op(t, args...)
			if !strings.HasPrefix(r.stdout, "RESULT\n") || !strings.Contains(r.stdout, `"order_id": "o-42"`) || !strings.Contains(r.stdout, "EFFECTS (1, not sent)") ||
				!regexp.MustCompile(`(?m)^email\s+\{`).MatchString(r.stdout) {
				t.Errorf("test printed\n%s", r.stdout)
			}
			out := jsonObject(t, s.op(t, append([]string{"-o", "json"}, args...)...).stdout)
			effects, _ := out["effects"].([]any)
			result, ok := out["result_json"].(map[string]any)
			if !ok || len(effects) != 1 {
				t.Fatalf("test -o json = %v", out)
			}
			// The flow's output is JSON, not base64.
			if output, ok := result["output"].(map[string]any); !ok || output["order_id"] != "o-42" {
				t.Errorf("result output = %v", result["output"])
			}
			if e := effects[0].(map[string]any); e["kind"] != "email" {
				t.Errorf("effect = %v", e)
			} else if _, ok := e["json"].(map[string]any); !ok {
				t.Errorf("effect json is not inlined: %v", e)
			}
		})
	}

	r = s.op(t, "flows", "delete", "acme", "orders")
	if r.stdout != "flow acme/orders deleted\n" {
		t.Errorf("delete printed %q", r.stdout)
	}
	wantFail(t, s.as(t, operatorToken, "flows", "get", "acme", "orders"), `NotFound`)
}

func TestSchedules(t *testing.T) {
	s := startServer(t)
	s.op(t, "tenants", "create", "acme")
	header := []string{"TENANT", "NAME", "WHEN", "TIMEZONE", "EVENT TYPE", "STATUS", "REVISION"}

	r := s.op(t, "schedules", "create", "-f", "testdata/schedule.yaml", "--tenant", "acme")
	if got := rows(t, r.stdout, header...); len(got) != 1 || strings.Join(got[0][:6], "|") != "acme|nightly|0 2 * * *|Europe/Paris|report.nightly|active" {
		t.Errorf("create printed %q", got)
	}
	wantFail(t, s.as(t, operatorToken, "schedules", "create", "-f", "testdata/schedule.yaml", "--tenant", "acme"), `AlreadyExists`)
	wantFail(t, s.as(t, operatorToken, "schedules", "create", "-f", "testdata/schedule.yaml"), `InvalidArgument`)

	r = s.op(t, "schedules", "list")
	if got := rows(t, r.stdout, header...); len(got) != 1 || got[0][1] != "nightly" {
		t.Errorf("list printed %q", got)
	}
	r = s.op(t, "-o", "json", "schedules", "get", "acme", "nightly")
	if p, ok := jsonObject(t, r.stdout)["payload"].(map[string]any); !ok || p["kind"] != "nightly" {
		t.Errorf("get -o json does not inline the payload:\n%s", r.stdout)
	}
	r = s.op(t, "schedules", "get", "acme", "nightly")
	if !strings.Contains(r.stdout, `payload:    {"kind":"nightly"}`) {
		t.Errorf("get printed\n%s", r.stdout)
	}
	r = s.op(t, "schedules", "pause", "acme", "nightly")
	if got := rows(t, r.stdout, header...); got[0][5] != "paused" {
		t.Errorf("pause printed %q", got)
	}
	r = s.op(t, "-o", "json", "schedules", "resume", "acme", "nightly")
	if obj := jsonArray(t, r.stdout); obj[0]["paused"] != false {
		t.Errorf("resume -o json = %v", obj)
	}
	r = s.op(t, "schedules", "delete", "acme", "nightly")
	if r.stdout != "schedule acme/nightly deleted\n" {
		t.Errorf("delete printed %q", r.stdout)
	}
	if got := rows(t, s.op(t, "schedules", "list").stdout, header...); len(got) != 0 {
		t.Errorf("list after delete = %q", got)
	}
}

func TestApplyBundle(t *testing.T) {
	s := startServer(t)
	items := []string{
		"tenant|acme", "source|acme/shop", "source|acme/github", "flow|acme/orders",
		"schedule|acme/nightly", "schedule|acme/launch", "tenant|globex",
	}
	for _, tc := range []struct {
		name    string
		outcome string
		summary string
	}{
		{"first", "created", "7 changed, 0 unchanged"},
		{"again", "unchanged", "0 changed, 7 unchanged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.op(t, "apply", "-f", "testdata/bundle.yaml")
			lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
			if last := lines[len(lines)-1]; last != tc.summary {
				t.Errorf("summary = %q, want %q", last, tc.summary)
			}
			got := rows(t, strings.Join(lines[:len(lines)-1], "\n"), "KIND", "NAME", "OUTCOME")
			if len(got) != len(items) {
				t.Fatalf("apply printed %q, want %d items", got, len(items))
			}
			for i, row := range got {
				if want := items[i] + "|" + tc.outcome; strings.Join(row, "|") != want {
					t.Errorf("item %d = %q, want %s", i, row, want)
				}
			}
		})
	}

	// What was applied is what the bundle says.
	r := s.op(t, "tenants", "get", "acme")
	if !strings.Contains(r.stdout, "marketing=sendgrid:acme-sendgrid") || !strings.Contains(r.stdout, "20/s burst 40") {
		t.Errorf("tenant after apply:\n%s", r.stdout)
	}
	r = s.op(t, "-o", "json", "schedules", "list", "--tenant", "acme")
	if list := jsonArray(t, r.stdout); len(list) != 2 {
		t.Errorf("schedules after apply = %v", list)
	}
	// The bundle's github source is disabled, the shop source is not.
	if src := jsonObject(t, s.op(t, "-o", "json", "sources", "get", "acme", "github").stdout); src["disabled"] != true {
		t.Errorf("github source after apply = %v", src)
	}
	if r := s.op(t, "sources", "get", "acme", "github"); !regexp.MustCompile(`(?m)^disabled:\s+yes`).MatchString(r.stdout) {
		t.Errorf("get of a disabled source:\n%s", r.stdout)
	}
	if src := jsonObject(t, s.op(t, "-o", "json", "sources", "get", "acme", "shop").stdout); src["disabled"] != false {
		t.Errorf("shop source after apply = %v", src)
	}

	// A change to one item changes only it.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "flows"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"bundle.yaml", "flows/orders.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "bundle.yaml" {
			b = bytes.Replace(b, []byte("display_name: Globex"), []byte("display_name: Globex Corporation"), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r = s.op(t, "-o", "json", "apply", "-f", filepath.Join(dir, "bundle.yaml"))
	report := jsonObject(t, r.stdout)
	if report["changed"] != 1.0 || report["unchanged"] != 6.0 {
		t.Errorf("apply after a change = %v", report)
	}

	t.Run("refused item", func(t *testing.T) {
		// acme's token may apply acme's part but not globex.
		r := s.as(t, acmeToken, "apply", "-f", "testdata/bundle.yaml")
		wantFail(t, r, `^greenticctl: PermissionDenied: apply tenant globex: token tenant:acme may not`)
		if !regexp.MustCompile(`(?m)^schedule\s+acme/launch\s+unchanged$`).MatchString(r.stdout) {
			t.Errorf("the items applied before the failure are not shown:\n%s", r.stdout)
		}
	})
	t.Run("invalid bundle", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(bad, []byte("tenants:\n  - id: acme\n    schedules:\n      - name: x\n        cron: \"61 * * * *\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantFail(t, s.as(t, operatorToken, "apply", "-f", bad), `tenants\[0\]\.schedules\[0\]: schedule x: cron`)
	})
}

func TestDeadLetters(t *testing.T) {
	s := startServer(t)
	r := s.op(t, "dlq", "list")
	if got := rows(t, r.stdout, "SEQ", "TENANT", "STAGE", "TYPE", "FAILED", "ATTEMPTS", "PERMANENT", "REASON"); len(got) != 0 {
		t.Errorf("list of an empty DLQ printed %q", got)
	}
	r = s.op(t, "-o", "json", "dlq", "list", "--tenant", "acme", "--stage", "flow", "--since", "2h", "--until", time.Now().Format(time.RFC3339))
	if list := jsonArray(t, r.stdout); len(list) != 0 {
		t.Errorf("list -o json of an empty DLQ = %v", list)
	}
	wantFail(t, s.as(t, operatorToken, "dlq", "show", "12345"), `NotFound`)
	r = s.op(t, "dlq", "purge", "--all", "--stage", "flow")
	if r.stdout != "purged 0 dead letters\n" {
		t.Errorf("purge printed %q", r.stdout)
	}
	r = s.op(t, "dlq", "replay", "--all", "--since", "1d")
	if r.stdout != "replayed 0 dead letters\n" {
		t.Errorf("replay printed %q", r.stdout)
	}
}

// letters numbers the dead letters the tests put, so their ids differ.
var letters atomic.Int64

// putLetters stores n dead letters of tenant's order.created events the
// way the flow stage writes them, failed now, and returns their sequences.
func (s *testServer) putLetters(t *testing.T, tenantID string, n int) []uint64 {
	t.Helper()
	return s.putLettersFailedAt(t, tenantID, n, time.Now())
}

// putLettersFailedAt is putLetters with the time the letters say they
// failed.
func (s *testServer) putLettersFailedAt(t *testing.T, tenantID string, n int, failedAt time.Time) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env := s.rt.Topology.Env
	dlq, err := bus.DLQSubject(env, tenantID, "flow")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := bus.EventSubject(env, tenantID, "order.created")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for range n {
		id := "evt-" + strconv.FormatInt(letters.Add(1), 10)
		body, err := event.Marshal(&eventsv1.Event{Id: id, Tenant: tenantID, Env: env, EventType: "order.created", Source: "test", Timestamp: time.Now().UnixMilli(), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		h := nats.Header{}
		h.Set(bus.HeaderDLQReason, "put by the test")
		h.Set(bus.HeaderDLQStage, "flow")
		h.Set(bus.HeaderDLQPermanent, "true")
		h.Set(bus.HeaderDLQAttempts, "1")
		h.Set(bus.HeaderDLQFailedAt, failedAt.UTC().Format(time.RFC3339Nano))
		h.Set(bus.HeaderDLQOriginalSubject, orig)
		h.Set(bus.HeaderDLQOriginalMsgID, tenantID+":"+id)
		p, err := s.rt.Publisher.Publish(ctx, dlq, "dlq:flow:test:"+id, body, h)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, p.Sequence)
	}
	return seqs
}

// letterCount is the number of dead letters stored.
func (s *testServer) letterCount(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.rt.JS.Stream(ctx, s.rt.Topology.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(bus.DLQFilter(s.rt.Topology.Env)))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs)
}

func seqList(seqs []uint64) string {
	out := make([]string, len(seqs))
	for i, s := range seqs {
		out[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(out, " ")
}

// TestDeadLettersCutShort runs replays and purges whose calls stop at
// their deadline: at --rate 10 a call of --timeout 1s replays about 9.
func TestDeadLettersCutShort(t *testing.T) {
	s := startServer(t)
	slow := []string{"--timeout", "1s", "dlq", "replay", "--all", "--rate", "10"}

	t.Run("replay without purge stops", func(t *testing.T) {
		seqs := s.putLetters(t, "acme", 20)
		t.Cleanup(func() { s.op(t, "dlq", "purge", "--all") })
		r := s.as(t, operatorToken, slow...)
		wantFail(t, r, `replay stopped at the call's deadline with more dead letters to go: run it again with --purge`, `--timeout`)
		m := regexp.MustCompile(`^replayed (\d+) dead letters: ([\d ]+)\n$`).FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("replay printed %q", r.stdout)
		}
		n, _ := strconv.Atoi(m[1])
		if n < 1 || n >= 20 || m[2] != seqList(seqs[:n]) {
			t.Fatalf("replay printed %q, want the first of %v", r.stdout, seqs)
		}
		if left := s.letterCount(t); left != 20 {
			t.Errorf("%d dead letters left, want all 20", left)
		}
		// -o json prints the response as it is.
		r = s.as(t, operatorToken, append([]string{"-o", "json"}, slow...)...)
		if r.code != ExitError {
			t.Fatalf("want exit 1:\n%s", r)
		}
		if out := jsonObject(t, r.stdout); out["complete"] != false || out["replayed"].(float64) < 1 {
			t.Errorf("replay -o json = %v", out)
		}
	})
	t.Run("replay with purge goes on", func(t *testing.T) {
		seqs := s.putLetters(t, "acme", 20)
		r := s.op(t, append(slow, "--purge")...)
		m := regexp.MustCompile(`^replayed 20 dead letters in (\d+) calls: ([\d ]+)\n$`).FindStringSubmatch(r.stdout)
		if m == nil || m[1] == "1" || m[2] != seqList(seqs) {
			t.Fatalf("replay printed %q, want %v in more than one call", r.stdout, seqs)
		}
		if left := s.letterCount(t); left != 0 {
			t.Errorf("%d dead letters left", left)
		}
	})
	t.Run("later calls take only letters stored before the start", func(t *testing.T) {
		seqs := s.putLetters(t, "acme", 20)
		done := make(chan result, 1)
		go func() { done <- s.as(t, operatorToken, append(slow, "--purge")...) }()
		// Letters stored while it runs, as replays failing again are,
		// stay for another replay: later calls are bounded by the first
		// call's last sequence, not by a time. These say they failed an
		// hour ago, as a service whose clock is behind this one's writes.
		natstest.Eventually(t, 10*time.Second, "the first replays", func() bool { return s.letterCount(t) < 20 })
		s.putLettersFailedAt(t, "acme", 3, time.Now().Add(-time.Hour))
		r := <-done
		if r.code != ExitOK || !strings.HasPrefix(r.stdout, "replayed 20 dead letters in ") || !strings.HasSuffix(r.stdout, ": "+seqList(seqs)+"\n") {
			t.Fatalf("replay:\n%s", r)
		}
		if left := s.letterCount(t); left != 3 {
			t.Errorf("%d dead letters left, want the 3 put later", left)
		}
		s.op(t, "dlq", "purge", "--all")
	})
	t.Run("purge", func(t *testing.T) {
		s.putLetters(t, "acme", 5)
		r := s.op(t, "--timeout", "1s", "dlq", "purge", "--all", "--tenant", "acme")
		if r.stdout != "purged 5 dead letters\n" {
			t.Errorf("purge printed %q", r.stdout)
		}
		if left := s.letterCount(t); left != 0 {
			t.Errorf("%d dead letters left", left)
		}
	})
	t.Run("one letter", func(t *testing.T) {
		seq := s.putLetters(t, "acme", 1)[0]
		r := s.op(t, "dlq", "replay", strconv.FormatUint(seq, 10))
		if want := "replayed 1 dead letter: " + strconv.FormatUint(seq, 10) + "\n"; r.stdout != want {
			t.Errorf("replay printed %q, want %q", r.stdout, want)
		}
		r = s.op(t, "dlq", "purge", strconv.FormatUint(seq, 10))
		if r.stdout != "purged 1 dead letter\n" {
			t.Errorf("purge printed %q", r.stdout)
		}
	})
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	serverCert, serverKey := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, func(c *adminapi.Config) {
		c.TLSCert, c.TLSKey, c.TLSClientCA = serverCert, serverKey, caFile
	})
	base := []string{"--addr", s.addr, "--token", operatorToken, "--timeout", "5s"}

	wantAuthenticated(t, greenticctl(t, append(base, "--ca", caFile, "--cert", clientCert, "--key", clientKey, "tenants", "list")...))
	// The server wants a client certificate (mTLS).
	wantFail(t, greenticctl(t, append(base, "--ca", caFile, "tenants", "list")...), `Unavailable`)
	// The server's certificate is not signed by a CA the system trusts.
	wantFail(t, greenticctl(t, append(base, "--tls", "--cert", clientCert, "--key", clientKey, "tenants", "list")...), `Unavailable`)
	// Plaintext to a TLS server.
	wantFail(t, greenticctl(t, append(base, "tenants", "list")...), `Unavailable`)
	wantFail(t, greenticctl(t, append(base, "--ca", filepath.Join(dir, "missing.pem"), "tenants", "list")...), `--ca: `)
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "greenticctl test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for 127.0.0.1 and its key under dir.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
