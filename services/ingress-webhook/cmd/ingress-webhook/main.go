// Command ingress-webhook receives webhooks and stores them as events on the bus.
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
	"github.com/greentic/events/services/ingress-webhook/ingress"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "ingress-webhook:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var common service.Common
	var cfg ingress.Config
	f := service.NewFlags(ingress.Name)
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
	return service.Run(ctx, ingress.Name, common, os.Stdout, func(ctx context.Context, rt *service.Runtime) error {
		return ingress.Serve(ctx, rt, cfg)
	})
}
