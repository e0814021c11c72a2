// Command timer runs the timer service in microservices mode; see the
// service README for its subjects and settings.
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
	"github.com/greentic/events/services/timer/timer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg timer.Config
	err := service.Main(ctx, service.Program{
		Name:     timer.Name,
		OpsAddr:  ":9100",
		Flags:    cfg.RegisterFlags,
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return timer.Serve(ctx, rt, cfg) },
	}, os.Args[1:], os.Stdout)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, timer.Name+":", err)
		stop()
		os.Exit(1)
	}
}
