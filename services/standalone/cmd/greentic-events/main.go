// Command greentic-events runs Greentic Events in one process with an
// embedded NATS JetStream server (standalone mode).
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
	"github.com/greentic/events/services/standalone/standalone"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, standalone.Name+":", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var cfg standalone.Config
	f := service.NewFlags(standalone.Name)
	cfg.RegisterFlags(f)
	if err := service.ParseArgs(f, args, os.Stdout); err != nil {
		return err
	}
	return standalone.Run(ctx, cfg, os.Stdout)
}
