package service

import (
	"strings"
	"testing"
	"time"

	"github.com/greentic/events/pkg/bus"
)

// parseCommon registers Common with ops address :9090 and parses args over e.
func parseCommon(t *testing.T, args []string, e env) Common {
	t.Helper()
	var c Common
	f := NewFlags("prog")
	c.Register(f, ":9090")
	if err := f.Parse(args, e.lookup); err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return c
}

func TestCommonDefaultsAreValid(t *testing.T) {
	c := parseCommon(t, nil, env{})
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.NATSURL != "nats://127.0.0.1:4222" || c.Env != "dev" || c.OpsAddr != ":9090" || c.LogLevel != "info" || c.ShutdownTimeout != 20*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	if got, want := c.Topology(), bus.DefaultTopology("dev"); got != want {
		t.Errorf("Topology() = %+v, want the dev default %+v", got, want)
	}
}

func TestCommonFromEnvironment(t *testing.T) {
	c := parseCommon(t, []string{"-log-level=debug"}, env{
		"NATS_URL":                  "nats://alias:4222",
		"GREENTIC_ENV":              "prod",
		"GREENTIC_STREAM_REPLICAS":  "3",
		"GREENTIC_DUPLICATE_WINDOW": "10m",
		"GREENTIC_LOG_LEVEL":        "warn",
	})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	topo := c.Topology()
	if c.NATSURL != "nats://alias:4222" || c.LogLevel != "debug" || topo.Env != "prod" || topo.Replicas != 3 || topo.DuplicateWindow != 10*time.Minute {
		t.Errorf("config = %+v, topology = %+v", c, topo)
	}
}

func TestCommonValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  env
		want []string // substrings of the error
	}{
		{name: "empty nats url", args: []string{"-nats-url="}, want: []string{"GREENTIC_NATS_URL"}},
		{name: "blank nats url from env", env: env{"GREENTIC_NATS_URL": "  "}, want: []string{"GREENTIC_NATS_URL"}},
		{name: "empty env", args: []string{"-env="}, want: []string{"GREENTIC_ENV"}},
		{name: "env with a space", args: []string{"-env=my env"}, want: []string{"GREENTIC_ENV", "whitespace"}},
		{name: "env with a wildcard", env: env{"GREENTIC_ENV": "dev*"}, want: []string{"GREENTIC_ENV", "wildcard"}},
		{name: "env with a dot", args: []string{"-env=dev.1"}, want: []string{"GREENTIC_ENV", "dots"}},
		{name: "ops addr without port", args: []string{"-ops-addr=localhost"}, want: []string{"GREENTIC_OPS_ADDR", `"localhost"`}},
		{name: "empty ops addr", env: env{"GREENTIC_OPS_ADDR": ""}, want: []string{"GREENTIC_OPS_ADDR"}},
		{name: "bad log level", args: []string{"-log-level=loud"}, want: []string{"GREENTIC_LOG_LEVEL", `"loud"`}},
		{name: "zero shutdown timeout", args: []string{"-shutdown-timeout=0s"}, want: []string{"GREENTIC_SHUTDOWN_TIMEOUT"}},
		{name: "negative shutdown timeout", env: env{"GREENTIC_SHUTDOWN_TIMEOUT": "-1s"}, want: []string{"GREENTIC_SHUTDOWN_TIMEOUT"}},
		{name: "zero replicas", args: []string{"-stream-replicas=0"}, want: []string{"stream replicas", "got 0"}},
		{name: "too many replicas", args: []string{"-stream-replicas=7"}, want: []string{"stream replicas", "got 7"}},
		{name: "zero events max age", args: []string{"-events-max-age=0s"}, want: []string{"events max age"}},
		{name: "zero dlq max age", args: []string{"-dlq-max-age=0s"}, want: []string{"dlq max age"}},
		{name: "duplicate window over outbound max age", args: []string{"-outbound-max-age=1h", "-duplicate-window=2h"}, want: []string{"duplicate window", "outbound max age"}},
		{name: "duplicate window over every max age", args: []string{"-duplicate-window=1000h"}, want: []string{"duplicate window 1000h0m0s must not exceed"}},
		{name: "zero duplicate window", args: []string{"-duplicate-window=0s"}, want: []string{"duplicate window must be positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCommon(t, tc.args, tc.env)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted %+v", c)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"debug", "DEBUG", true}, {"info", "INFO", true}, {"WARN", "WARN", true}, {"error", "ERROR", true},
		{"", "", false}, {"verbose", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			l, err := ParseLevel(tc.in)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseLevel(%q) = %v, %v", tc.in, l, err)
			}
			if tc.ok && l.String() != tc.want {
				t.Errorf("ParseLevel(%q) = %v, want %s", tc.in, l, tc.want)
			}
			if !tc.ok && !strings.Contains(err.Error(), "debug, info, warn or error") {
				t.Errorf("error %q does not list the levels", err)
			}
		})
	}
}
