// Command flow-executor runs the flow-executor service in microservices mode; see the
// service README for its subjects and settings.
package main

import (
	"context"

	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/services/flow-executor/executor"
)

func main() {
	var cfg executor.Config
	service.MainCommand(service.Program{
		Name:     executor.Name,
		OpsAddr:  ":9100",
		Flags:    cfg.RegisterFlags,
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return executor.Serve(ctx, rt, cfg) },
	})
}
