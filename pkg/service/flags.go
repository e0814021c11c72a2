// Package service is the kit every Greentic service is built with: one
// Config from flags with GREENTIC_* environment overrides, JSON logging, the
// ops server (/metrics, /healthz, /readyz), the bus connection and the
// errgroup lifecycle that makes a service Run(ctx) until SIGTERM.
package service

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Flags is a flag set whose every flag can also be set from the environment
// as GREENTIC_<NAME> (upper case, '-' as '_'). A flag on the command line
// wins over the environment, which wins over the default.
type Flags struct {
	fs      *flag.FlagSet
	envs    map[string]string   // flag name -> env var
	aliases map[string][]string // flag name -> further env vars, lower precedence
}

// NewFlags returns an empty flag set for the named program.
func NewFlags(program string) *Flags {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &Flags{fs: fs, envs: map[string]string{}, aliases: map[string][]string{}}
}

// EnvName is the environment variable that sets flag name.
func EnvName(name string) string {
	return "GREENTIC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func (f *Flags) add(name string, usage string) string {
	env := EnvName(name)
	f.envs[name] = env
	return usage + " (env " + env + ")"
}

// String defines a string flag.
func (f *Flags) String(p *string, name, def, usage string) {
	f.fs.StringVar(p, name, def, f.add(name, usage))
}

// Int defines an int flag.
func (f *Flags) Int(p *int, name string, def int, usage string) {
	f.fs.IntVar(p, name, def, f.add(name, usage))
}

// Int64 defines an int64 flag.
func (f *Flags) Int64(p *int64, name string, def int64, usage string) {
	f.fs.Int64Var(p, name, def, f.add(name, usage))
}

// Float64 defines a float64 flag.
func (f *Flags) Float64(p *float64, name string, def float64, usage string) {
	f.fs.Float64Var(p, name, def, f.add(name, usage))
}

// Bool defines a bool flag.
func (f *Flags) Bool(p *bool, name string, def bool, usage string) {
	f.fs.BoolVar(p, name, def, f.add(name, usage))
}

// Duration defines a duration flag (Go syntax: 500ms, 30s, 2h).
func (f *Flags) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.fs.DurationVar(p, name, def, f.add(name, usage))
}

// Parse applies the environment (through lookup, normally os.LookupEnv) and
// then args. A malformed value names the flag or variable it came from.
func (f *Flags) Parse(args []string, lookup func(string) (string, bool)) error {
	var err error
	f.fs.VisitAll(func(fl *flag.Flag) {
		if err != nil {
			return
		}
		for _, env := range append([]string{f.envs[fl.Name]}, f.aliases[fl.Name]...) {
			if v, ok := lookup(env); ok {
				if serr := fl.Value.Set(v); serr != nil {
					err = fmt.Errorf("invalid value %q for %s: %v", v, env, serr)
				}
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if err := f.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w (run with -h for the list of flags)", err)
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (run with -h for the list of flags)", f.fs.Arg(0))
	}
	return nil
}

// Usage writes the flags, their defaults and environment variables to w.
func (f *Flags) Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage of %s:\n", f.fs.Name())
	f.fs.SetOutput(w)
	f.fs.PrintDefaults()
	f.fs.SetOutput(io.Discard)
}

// Lookup returns the current value of a flag as text (for tests and logs).
func (f *Flags) Lookup(name string) (string, bool) {
	fl := f.fs.Lookup(name)
	if fl == nil {
		return "", false
	}
	return fl.Value.String(), true
}

// Alias lets env also set flag name, when GREENTIC_<NAME> is not set
// (NATS_URL for -nats-url, as the NATS tools use).
func (f *Flags) Alias(name, env string) {
	f.aliases[name] = append(f.aliases[name], env)
	if fl := f.fs.Lookup(name); fl != nil {
		fl.Usage += " (or " + env + ")"
	}
}

// SetDefault changes the default (and current value) of a defined flag, for
// programs that embed another program's flags with other defaults.
func (f *Flags) SetDefault(name, value string) error {
	fl := f.fs.Lookup(name)
	if fl == nil {
		return fmt.Errorf("no flag %q", name)
	}
	if err := fl.Value.Set(value); err != nil {
		return fmt.Errorf("default of %s: %w", name, err)
	}
	fl.DefValue = value
	return nil
}
