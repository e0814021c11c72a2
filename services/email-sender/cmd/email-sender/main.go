// Command email-sender runs the email sender in microservices mode; see the
// service README for its subjects and settings.
package main

import (
	"context"

	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/services/email-sender/emailsender"
)

func main() {
	var cfg emailsender.Config
	service.MainCommand(service.Program{
		Name:     emailsender.Name,
		OpsAddr:  ":9100",
		Flags:    func(f *service.Flags) { cfg.RegisterFlags(f, emailsender.ProviderSendGrid) },
		Validate: func() error { return cfg.Validate() },
		Body:     func(ctx context.Context, rt *service.Runtime) error { return emailsender.Serve(ctx, rt, cfg) },
	})
}
