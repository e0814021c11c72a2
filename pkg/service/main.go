package service

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
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

// ParseArgs parses args over the process environment; on -h it writes the
// flags to stdout and returns flag.ErrHelp.
func ParseArgs(f *Flags, args []string, stdout io.Writer) error {
	err := f.Parse(args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		f.Usage(stdout)
	}
	return err
}
