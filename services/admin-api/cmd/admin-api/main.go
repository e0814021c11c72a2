// Command admin-api serves the admin gRPC API in microservices mode; see the
// service README for its methods, tokens and settings.
package main

import (
	"context"

	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/services/admin-api/adminapi"
)

func main() {
	var cfg adminapi.Config
	service.MainCommand(service.Program{
		Name:     adminapi.Name,
		OpsAddr:  ":9100",
		Flags:    func(f *service.Flags) { cfg.RegisterFlags(f, ":9090") },
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return adminapi.Serve(ctx, rt, cfg) },
	})
}
