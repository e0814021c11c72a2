package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Program is a service binary in microservices mode.
type Program struct {
	Name string
	// OpsAddr is the default ops listen address.
	OpsAddr string
	// Flags registers the service's own flags.
	Flags func(*Flags)
	// Validate checks the service's own settings once parsed.
	Validate func() error
	Body     Body
}

// Main parses args over the GREENTIC_* environment and runs p until ctx
// ends. -h prints the flags and returns flag.ErrHelp.
func Main(ctx context.Context, p Program, args []string, stdout io.Writer) error {
	var common Common
	f := NewFlags(p.Name)
	common.Register(f, p.OpsAddr)
	if p.Flags != nil {
		p.Flags(f)
	}
	if err := ParseArgs(f, args, stdout); err != nil {
		return err
	}
	if p.Validate != nil {
		if err := p.Validate(); err != nil {
			return err
		}
	}
	return Run(ctx, p.Name, common, stdout, p.Body)
}

// Command is the whole main function of a command: it runs run with the
// process's arguments until SIGINT or SIGTERM and, on an error other than
// -h, prints it prefixed by name and exits with status 1.
func Command(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// MainCommand is Command for a service binary: Main of p on stdout.
func MainCommand(p Program) {
	Command(p.Name, func(ctx context.Context, args []string) error { return Main(ctx, p, args, os.Stdout) })
}

// ParseArgs parses args over the process environment; on -h it writes the
// flags to stdout and returns flag.ErrHelp.
func ParseArgs(f *Flags, args []string, stdout io.Writer) error {
	err := f.Parse(args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		f.Usage(stdout)
	}
	return err
}
