// Command timer runs the timer service in microservices mode; see the
// service README for its subjects and settings.
package main

import (
	"context"

	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/services/timer/timer"
)

func main() {
	var cfg timer.Config
	service.MainCommand(service.Program{
		Name:     timer.Name,
		OpsAddr:  ":9100",
		Flags:    cfg.RegisterFlags,
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return timer.Serve(ctx, rt, cfg) },
	})
}
