// Command ingress-webhook runs the ingress-webhook service in microservices mode; see the
// service README for its subjects and settings.
package main

import (
	"context"

	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/services/ingress-webhook/ingress"
)

func main() {
	var cfg ingress.Config
	service.MainCommand(service.Program{
		Name:     ingress.Name,
		OpsAddr:  ":9100",
		Flags:    cfg.RegisterFlags,
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return ingress.Serve(ctx, rt, cfg) },
	})
}
