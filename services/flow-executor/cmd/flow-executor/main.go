// Command flow-executor runs the tenants' event flows on the events of the bus.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/services/flow-executor/executor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "flow-executor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var common service.Common
	var cfg executor.Config
	f := service.NewFlags(executor.Name)
	common.Register(f, ":9100")
	cfg.RegisterFlags(f)
	if err := f.Parse(args, os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.Usage(os.Stdout)
		}
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	return service.Run(ctx, executor.Name, common, os.Stdout, func(ctx context.Context, rt *service.Runtime) error {
		return executor.Serve(ctx, rt, cfg)
	})
}
