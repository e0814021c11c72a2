// Command email-sender runs the email sender in microservices mode; see the
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
	"github.com/greentic/events/services/email-sender/emailsender"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg emailsender.Config
	err := service.Main(ctx, service.Program{
		Name:     emailsender.Name,
		OpsAddr:  ":9100",
		Flags:    func(f *service.Flags) { cfg.RegisterFlags(f, emailsender.ProviderSendGrid) },
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return emailsender.Serve(ctx, rt, cfg) },
	}, os.Args[1:], os.Stdout)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, emailsender.Name+":", err)
		stop()
		os.Exit(1)
	}
}
