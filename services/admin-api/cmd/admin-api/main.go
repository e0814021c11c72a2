// Command admin-api serves the admin gRPC API in microservices mode; see the
// service README for its methods, tokens and settings.
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
	"github.com/greentic/events/services/admin-api/adminapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg adminapi.Config
	err := service.Main(ctx, service.Program{
		Name:     adminapi.Name,
		OpsAddr:  ":9100",
		Flags:    func(f *service.Flags) { cfg.RegisterFlags(f, ":9090") },
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return adminapi.Serve(ctx, rt, cfg) },
	}, os.Args[1:], os.Stdout)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, adminapi.Name+":", err)
		stop()
		os.Exit(1)
	}
}
