// Command sms-sender runs the SMS sender in microservices mode; see the
// service README for its subjects and settings.
package main

import (
	"context"

	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/services/sms-sender/smssender"
)

func main() {
	var cfg smssender.Config
	service.MainCommand(service.Program{
		Name:     smssender.Name,
		OpsAddr:  ":9100",
		Flags:    func(f *service.Flags) { cfg.RegisterFlags(f, smssender.ProviderTwilio) },
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return smssender.Serve(ctx, rt, cfg) },
	})
}
