// Command sms-sender runs the SMS sender in microservices mode; see the
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
	"github.com/greentic/events/services/sms-sender/smssender"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg smssender.Config
	err := service.Main(ctx, service.Program{
		Name:     smssender.Name,
		OpsAddr:  ":9100",
		Flags:    func(f *service.Flags) { cfg.RegisterFlags(f, smssender.ProviderTwilio) },
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return smssender.Serve(ctx, rt, cfg) },
	}, os.Args[1:], os.Stdout)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, smssender.Name+":", err)
		stop()
		os.Exit(1)
	}
}
