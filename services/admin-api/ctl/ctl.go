// Package ctl is greenticctl, the command line client of the admin API:
// tenants, sources, flows, schedules, dead letters, and declarative
// bundles. Main runs one command and returns its exit code, so tests run
// it in-process against a real server.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/status"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed (the server refused it, a file is unusable, ...)
	ExitUsage = 2 // unknown command or flag, missing or extra argument
)

// Environment variables read when the corresponding flag is not given.
const (
	EnvAddr      = "GREENTIC_ADMIN_ADDR"
	EnvToken     = "GREENTIC_TOKEN"
	EnvTokenFile = "GREENTIC_TOKEN_FILE"
)

// Defaults of the global flags.
const (
	DefaultAddr    = "127.0.0.1:9090"
	DefaultTimeout = 30 * time.Second
	// DefaultTokenFile is where standalone writes the operator token it
	// generates; greenticctl reads it when no token is given.
	DefaultTokenFile = ".greentic/data/admin-token"
)

// Main runs greenticctl with args (without the program name) and returns
// the exit code. The environment is read with os.Getenv.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	defer c.close()
	err := c.run(ctx, args)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "greenticctl: %s\n", ue.msg)
		if ue.usage != "" {
			fmt.Fprint(stderr, ue.usage)
		}
		return ExitUsage
	}
	c.printError(err)
	return ExitError
}

// usageError is a command line that cannot be run; usage is the short
// help of the command it was meant for.
type usageError struct {
	msg   string
	usage string
}

func (e *usageError) Error() string { return e.msg }

// printError writes err to stderr: the gRPC code, the message and, for
// InvalidArgument, each field violation on its own line.
func (c *cli) printError(err error) {
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintf(c.stderr, "greenticctl: %v\n", err)
		return
	}
	// A status wrapped with what was being done (a bundle's item) keeps
	// that text in its message, with grpc-go's own prefix in the middle.
	msg := strings.Replace(st.Message(), "rpc error: code = "+st.Code().String()+" desc = ", "", 1)
	fmt.Fprintf(c.stderr, "greenticctl: %s: %s\n", st.Code(), msg)
	for _, v := range fieldViolations(st) {
		fmt.Fprintf(c.stderr, "  %s: %s\n", v.GetField(), v.GetDescription())
	}
	if hint := c.hint(st); hint != "" {
		fmt.Fprintf(c.stderr, "  hint: %s\n", hint)
	}
}
