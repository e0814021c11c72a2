package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"

	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
)

// cli is one invocation of greenticctl.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	g     globals
	token string // "" when none was found
	conn  *grpc.ClientConn

	tenants   adminv1.TenantServiceClient
	sources   adminv1.SourceServiceClient
	flows     adminv1.FlowServiceClient
	schedules adminv1.ScheduleServiceClient
	dlq       adminv1.DeadLetterServiceClient
}

func (c *cli) close() {
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

// globals are the flags every command takes, before or after its name.
type globals struct {
	addr      string
	token     string
	tokenFile string
	useTLS    bool
	ca        string
	cert, key string
	output    string
	timeout   time.Duration
}

func defaultGlobals() globals {
	return globals{output: "table", timeout: DefaultTimeout}
}

// register defines the global flags on fs with their current values as
// defaults, so a second parse (after the command name) keeps what the
// first one (before it) read.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "admin API address, host:port (env "+EnvAddr+"; default "+DefaultAddr+")")
	fs.StringVar(&g.token, "token", g.token, "bearer token (env "+EnvToken+")")
	fs.StringVar(&g.tokenFile, "token-file", g.tokenFile, "file holding the bearer token (env "+EnvTokenFile+"; default "+DefaultTokenFile+" when it exists)")
	fs.BoolVar(&g.useTLS, "tls", g.useTLS, "connect with TLS (implied by --ca, --cert and --key)")
	fs.StringVar(&g.ca, "ca", g.ca, "CA certificates (PEM) that signed the server's certificate; default the system's")
	fs.StringVar(&g.cert, "cert", g.cert, "client certificate (PEM) for mTLS, with --key")
	fs.StringVar(&g.key, "key", g.key, "client key (PEM) for mTLS, with --cert")
	fs.StringVar(&g.output, "o", g.output, "output format: table or json")
	fs.StringVar(&g.output, "output", g.output, "same as -o")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline of each call to the server")
}

// runFunc runs a command with its positional arguments.
type runFunc func(ctx context.Context, c *cli, args []string) error

// command is a node of the command tree: a group (with subcommands) or a
// runnable command (with flags and run).
type command struct {
	name    string
	args    string // positional arguments in the usage line
	summary string
	// minArgs and maxArgs bound the positional arguments (maxArgs -1: any).
	minArgs, maxArgs int
	// setup defines the command's flags on fs and returns the command.
	setup func(fs *flag.FlagSet) runFunc
	subs  []*command
}

func (cmd *command) sub(name string) *command {
	for _, s := range cmd.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

func root() *command {
	return &command{
		name: "greenticctl",
		subs: []*command{
			tenantsCommand(),
			sourcesCommand(),
			flowsCommand(),
			schedulesCommand(),
			dlqCommand(),
			applyCommand(),
			{name: "help", args: "[COMMAND...]", summary: "show help of greenticctl or of a command", maxArgs: -1},
		},
	}
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func (c *cli) run(ctx context.Context, args []string) error {
	c.g = defaultGlobals()
	top := root()
	gfs := newFlagSet("greenticctl")
	c.g.register(gfs)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, top.usage(nil))
			return err
		}
		return &usageError{msg: err.Error(), usage: top.usage(nil)}
	}
	rest := gfs.Args()
	path := []string{}
	cmd := top
	for cmd.setup == nil && len(cmd.subs) > 0 {
		if len(rest) == 0 {
			return &usageError{msg: "missing command", usage: cmd.usage(path)}
		}
		name := rest[0]
		if name == "-h" || name == "-help" || name == "--help" {
			fmt.Fprint(c.stdout, cmd.usage(path))
			return flag.ErrHelp
		}
		next := cmd.sub(name)
		if next == nil {
			what := "command"
			if len(path) > 0 {
				what = strings.Join(path, " ") + " command"
			}
			return &usageError{msg: fmt.Sprintf("unknown %s %q", what, name), usage: cmd.usage(path)}
		}
		if next.name == "help" {
			return c.help(top, rest[1:])
		}
		cmd, path, rest = next, append(path, name), rest[1:]
	}

	fs := newFlagSet(strings.Join(path, " "))
	c.g.register(fs)
	run := cmd.setup(fs)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, cmd.usage(path))
			return err
		}
		return &usageError{msg: err.Error(), usage: cmd.usage(path)}
	}
	switch {
	case len(pos) < cmd.minArgs:
		return &usageError{msg: "missing argument: " + cmd.args, usage: cmd.usage(path)}
	case cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs:
		return &usageError{msg: fmt.Sprintf("unexpected argument %q", pos[cmd.maxArgs]), usage: cmd.usage(path)}
	}
	if err := c.checkGlobals(); err != nil {
		return &usageError{msg: err.Error(), usage: cmd.usage(path)}
	}
	if err := c.connect(); err != nil {
		return err
	}
	err = run(ctx, c, pos)
	var ue *usageError
	if errors.As(err, &ue) && ue.usage == "" {
		ue.usage = cmd.usage(path)
	}
	return err
}

// help prints the usage of the command named by args.
func (c *cli) help(top *command, args []string) error {
	cmd, path := top, []string{}
	for _, name := range args {
		next := cmd.sub(name)
		if next == nil {
			return &usageError{msg: fmt.Sprintf("no help for %q: unknown command", strings.Join(append(path, name), " ")), usage: cmd.usage(path)}
		}
		cmd, path = next, append(path, name)
	}
	fmt.Fprint(c.stdout, cmd.usage(path))
	return nil
}

// parseInterspersed parses fs's flags wherever they are among the
// positional arguments, which it returns; after "--" everything is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usage is the help text of cmd, reached by path.
func (cmd *command) usage(path []string) string {
	var b strings.Builder
	full := strings.Join(append([]string{"greenticctl"}, path...), " ")
	if cmd.setup == nil {
		fmt.Fprintf(&b, "usage: %s COMMAND [flags]\n", full)
		if cmd.summary != "" {
			fmt.Fprintf(&b, "\n%s.\n", upperFirst(cmd.summary))
		}
		b.WriteString("\ncommands:\n")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, s := range cmd.subs {
			line := s.name
			if s.args != "" {
				line += " " + s.args
			}
			fmt.Fprintf(tw, "  %s\t%s\n", line, s.summary)
		}
		_ = tw.Flush()
		if len(path) == 0 {
			b.WriteString("\nglobal flags (before or after the command):\n")
			writeFlags(&b, func(fs *flag.FlagSet) { g := defaultGlobals(); g.register(fs) })
			b.WriteString("\nexit codes: 0 success, 1 error, 2 usage error.\n")
			b.WriteString("Run \"greenticctl help COMMAND...\" for a command's flags.\n")
		} else {
			fmt.Fprintf(&b, "\nRun \"greenticctl help %s COMMAND\" for a command's flags; \"greenticctl help\" for the global flags.\n", strings.Join(path, " "))
		}
		return b.String()
	}
	line := full + " " + cmd.args
	fmt.Fprintf(&b, "usage: %s [flags]\n\n%s.\n", strings.TrimSpace(line), upperFirst(cmd.summary))
	var n int
	writeCmd := func(fs *flag.FlagSet) {
		cmd.setup(fs)
		fs.VisitAll(func(*flag.Flag) { n++ })
	}
	var fb strings.Builder
	writeFlags(&fb, writeCmd)
	if n > 0 {
		b.WriteString("\nflags:\n")
		b.WriteString(fb.String())
	}
	b.WriteString("\nGlobal flags (--addr, --token, -o, ...): see \"greenticctl help\".\n")
	return b.String()
}

// writeFlags lists the flags define puts on a flag set.
func writeFlags(w io.Writer, define func(fs *flag.FlagSet)) {
	fs := newFlagSet("")
	define(fs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name
		}
		if typ != "" {
			name += " " + typ
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	_ = tw.Flush()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// checkGlobals validates the global flags.
func (c *cli) checkGlobals() error {
	switch c.g.output {
	case "table", "json":
	default:
		return fmt.Errorf("-o %s: want table or json", c.g.output)
	}
	if c.g.timeout <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", c.g.timeout)
	}
	if (c.g.cert == "") != (c.g.key == "") {
		return errors.New("--cert and --key go together")
	}
	if c.g.token != "" && c.g.tokenFile != "" {
		return errors.New("--token and --token-file are exclusive")
	}
	return nil
}

// readToken finds the bearer token: --token, --token-file, $GREENTIC_TOKEN,
// $GREENTIC_TOKEN_FILE, then the file standalone writes, if it exists.
func (c *cli) readToken() (string, error) {
	if c.g.token != "" {
		return c.g.token, nil
	}
	if c.g.tokenFile != "" {
		return tokenFromFile(c.g.tokenFile, "--token-file")
	}
	if tok := strings.TrimSpace(c.getenv(EnvToken)); tok != "" {
		return tok, nil
	}
	if f := c.getenv(EnvTokenFile); f != "" {
		return tokenFromFile(f, EnvTokenFile)
	}
	tok, err := tokenFromFile(DefaultTokenFile, "token file")
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return tok, err
}

func tokenFromFile(path, setting string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	switch {
	case len(lines) == 0:
		return "", fmt.Errorf("%s: %s is empty", setting, path)
	case len(lines) > 1:
		return "", fmt.Errorf("%s: %s holds %d lines; give a file of one token", setting, path, len(lines))
	}
	// A line of the admin API's own tokens file (the chart's Secret, the
	// server's -admin-tokens-file) works as it is: the token follows its
	// scope.
	if m := tokenEntry.FindStringSubmatch(lines[0]); m != nil {
		return m[1], nil
	}
	return lines[0], nil
}

// tokenEntry is one entry of the admin API's tokens file:
// [NAME@]operator=TOKEN or [NAME@]tenant:ID=TOKEN.
var tokenEntry = regexp.MustCompile(`^(?:[^@=\s]+@)?(?:operator|tenant:[A-Za-z0-9_-]+)=(\S+)$`)
