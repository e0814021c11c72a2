package service

import (
	"errors"
	"flag"
	"strconv"
	"strings"
	"testing"
	"time"
)

// env is a fake environment for Flags.Parse.
type env map[string]string

func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// flagKind defines one flag of each type under the name "max-items" (so its
// variable is GREENTIC_MAX_ITEMS) and returns its current value as text.
type flagKind struct {
	name     string
	define   func(f *Flags) func() string
	def      string // the default, as the returned func prints it
	envValue string
	arg      string
	bad      string // a malformed value
}

var flagKinds = []flagKind{
	{
		name: "string",
		define: func(f *Flags) func() string {
			var v string
			f.String(&v, "max-items", "from-default", "")
			return func() string { return v }
		},
		def: "from-default", envValue: "from-env", arg: "from-args",
	},
	{
		name: "int",
		define: func(f *Flags) func() string {
			var v int
			f.Int(&v, "max-items", 1, "")
			return func() string { return strconv.Itoa(v) }
		},
		def: "1", envValue: "2", arg: "3", bad: "two",
	},
	{
		name: "int64",
		define: func(f *Flags) func() string {
			var v int64
			f.Int64(&v, "max-items", 1<<40, "")
			return func() string { return strconv.FormatInt(v, 10) }
		},
		def: "1099511627776", envValue: "5000000000", arg: "-7", bad: "1.5",
	},
	{
		name: "bool",
		define: func(f *Flags) func() string {
			var v bool
			f.Bool(&v, "max-items", false, "")
			return func() string { return strconv.FormatBool(v) }
		},
		def: "false", envValue: "true", arg: "false", bad: "maybe",
	},
	{
		name: "duration",
		define: func(f *Flags) func() string {
			var v time.Duration
			f.Duration(&v, "max-items", time.Second, "")
			return func() string { return v.String() }
		},
		def: "1s", envValue: "2m0s", arg: "3h0m0s", bad: "5",
	},
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"nats-url":         "GREENTIC_NATS_URL",
		"env":              "GREENTIC_ENV",
		"shutdown-timeout": "GREENTIC_SHUTDOWN_TIMEOUT",
		"a-b-c":            "GREENTIC_A_B_C",
	} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFlagsPrecedence(t *testing.T) {
	for _, k := range flagKinds {
		for _, tc := range []struct {
			name string
			env  env
			args []string
			want string
		}{
			{name: "default", want: k.def},
			{name: "env over default", env: env{"GREENTIC_MAX_ITEMS": k.envValue}, want: k.envValue},
			{name: "args over env", env: env{"GREENTIC_MAX_ITEMS": k.envValue}, args: []string{"-max-items=" + k.arg}, want: k.arg},
			{name: "args over default", args: []string{"-max-items=" + k.arg}, want: k.arg},
			{name: "other variables ignored", env: env{"MAX_ITEMS": k.envValue, "GREENTIC_MAX-ITEMS": k.envValue}, want: k.def},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				f := NewFlags("prog")
				get := k.define(f)
				if err := f.Parse(tc.args, tc.env.lookup); err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got := get(); got != tc.want {
					t.Errorf("value = %q, want %q", got, tc.want)
				}
				if got, ok := f.Lookup("max-items"); !ok || got != tc.want {
					t.Errorf("Lookup = %q, %v, want %q", got, ok, tc.want)
				}
			})
		}
	}
}

func TestFlagsMalformedValue(t *testing.T) {
	for _, k := range flagKinds {
		if k.bad == "" {
			continue
		}
		t.Run(k.name+"/env", func(t *testing.T) {
			f := NewFlags("prog")
			k.define(f)
			err := f.Parse(nil, env{"GREENTIC_MAX_ITEMS": k.bad}.lookup)
			if err == nil {
				t.Fatalf("Parse accepted GREENTIC_MAX_ITEMS=%q", k.bad)
			}
			for _, want := range []string{"GREENTIC_MAX_ITEMS", `"` + k.bad + `"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %s", err, want)
				}
			}
		})
		t.Run(k.name+"/args", func(t *testing.T) {
			f := NewFlags("prog")
			k.define(f)
			err := f.Parse([]string{"-max-items=" + k.bad}, env{}.lookup)
			if err == nil {
				t.Fatalf("Parse accepted -max-items=%s", k.bad)
			}
			if !strings.Contains(err.Error(), "-max-items") {
				t.Errorf("error %q does not name the flag", err)
			}
		})
	}
}

func TestFlagsBadCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of the error
		help bool
	}{
		{name: "unknown flag", args: []string{"-nope"}, want: []string{"nope", "-h"}},
		{name: "unknown flag after known", args: []string{"-name=x", "--colour=red"}, want: []string{"colour", "-h"}},
		{name: "positional", args: []string{"extra"}, want: []string{`unexpected argument "extra"`, "-h"}},
		{name: "positional after flags", args: []string{"-name", "x", "stray", "more"}, want: []string{`"stray"`}},
		{name: "missing value", args: []string{"-name"}, want: []string{"name"}},
		{name: "-h", args: []string{"-h"}, help: true},
		{name: "-help", args: []string{"-help"}, help: true},
		{name: "--help after flags", args: []string{"-name=x", "--help"}, help: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFlags("prog")
			var name string
			f.String(&name, "name", "", "a name")
			err := f.Parse(tc.args, env{}.lookup)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tc.args)
			}
			if tc.help {
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("Parse(%q) = %v, want flag.ErrHelp", tc.args, err)
				}
				return
			}
			if errors.Is(err, flag.ErrHelp) {
				t.Fatalf("Parse(%q) = flag.ErrHelp, want an error", tc.args)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestFlagsAlias(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  env
		args []string
		want string
	}{
		{name: "default", want: "nats://default"},
		{name: "alias over default", env: env{"NATS_URL": "nats://alias"}, want: "nats://alias"},
		{name: "own variable over alias", env: env{"NATS_URL": "nats://alias", "GREENTIC_NATS_URL": "nats://own"}, want: "nats://own"},
		{name: "args over both", env: env{"NATS_URL": "nats://alias", "GREENTIC_NATS_URL": "nats://own"}, args: []string{"-nats-url=nats://args"}, want: "nats://args"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFlags("prog")
			var url string
			f.String(&url, "nats-url", "nats://default", "server")
			f.Alias("nats-url", "NATS_URL")
			if err := f.Parse(tc.args, tc.env.lookup); err != nil {
				t.Fatal(err)
			}
			if url != tc.want {
				t.Errorf("nats-url = %q, want %q", url, tc.want)
			}
		})
	}
	t.Run("malformed alias value names the alias", func(t *testing.T) {
		f := NewFlags("prog")
		var n int
		f.Int(&n, "replicas", 1, "")
		f.Alias("replicas", "REPLICAS")
		err := f.Parse(nil, env{"REPLICAS": "three"}.lookup)
		if err == nil || !strings.Contains(err.Error(), "REPLICAS") || strings.Contains(err.Error(), "GREENTIC_REPLICAS") {
			t.Fatalf("Parse = %v, want an error naming REPLICAS", err)
		}
	})
}

func TestFlagsSetDefault(t *testing.T) {
	newFlags := func() (*Flags, *int) {
		f := NewFlags("prog")
		var port int
		f.Int(&port, "port", 8080, "listen port")
		return f, &port
	}
	t.Run("changes default and value", func(t *testing.T) {
		f, port := newFlags()
		if err := f.SetDefault("port", "9090"); err != nil {
			t.Fatal(err)
		}
		if *port != 9090 {
			t.Errorf("value after SetDefault = %d, want 9090", *port)
		}
		if err := f.Parse(nil, env{}.lookup); err != nil {
			t.Fatal(err)
		}
		if *port != 9090 {
			t.Errorf("value after Parse = %d, want 9090", *port)
		}
		var usage strings.Builder
		f.Usage(&usage)
		if !strings.Contains(usage.String(), "(default 9090)") {
			t.Errorf("usage does not show the new default:\n%s", usage.String())
		}
	})
	t.Run("env and args still win", func(t *testing.T) {
		f, port := newFlags()
		if err := f.SetDefault("port", "9090"); err != nil {
			t.Fatal(err)
		}
		if err := f.Parse(nil, env{"GREENTIC_PORT": "7070"}.lookup); err != nil {
			t.Fatal(err)
		}
		if *port != 7070 {
			t.Errorf("value = %d, want 7070 from the environment", *port)
		}
	})
	for _, tc := range []struct{ name, flag, value, want string }{
		{"unknown flag", "nope", "1", `no flag "nope"`},
		{"malformed value", "port", "http", "default of port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newFlags()
			err := f.SetDefault(tc.flag, tc.value)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetDefault(%q, %q) = %v, want an error containing %q", tc.flag, tc.value, err, tc.want)
			}
		})
	}
}

func TestFlagsUsage(t *testing.T) {
	f := NewFlags("greentic-thing")
	var c Common
	c.Register(f, ":9090")
	var extra time.Duration
	f.Duration(&extra, "poll-interval", time.Second, "how often to poll")
	var b strings.Builder
	f.Usage(&b)
	out := b.String()
	if !strings.HasPrefix(out, "Usage of greentic-thing:") {
		t.Errorf("usage does not start with the program name:\n%s", out)
	}
	for _, name := range []string{"nats-url", "nats-creds", "env", "ops-addr", "log-level", "shutdown-timeout",
		"stream-replicas", "events-max-age", "outbound-max-age", "dlq-max-age", "duplicate-window", "poll-interval"} {
		if !strings.Contains(out, "-"+name) {
			t.Errorf("usage does not list -%s", name)
		}
		if !strings.Contains(out, "(env "+EnvName(name)+")") {
			t.Errorf("usage does not list %s", EnvName(name))
		}
	}
	if !strings.Contains(out, "NATS_URL)") {
		t.Errorf("usage does not mention the NATS_URL alias")
	}
	// Usage must not leave the flag set printing elsewhere: a later parse
	// error is returned, not written to the usage writer.
	before := b.Len()
	_ = f.Parse([]string{"-nope"}, env{}.lookup)
	if b.Len() != before {
		t.Errorf("Parse wrote to the usage writer after Usage returned")
	}
}
