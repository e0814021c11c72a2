// Command greentic-events runs Greentic Events in one process with an
// embedded NATS JetStream server (standalone mode).
package main

import (
	"context"
	"os"

	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/services/standalone/standalone"
)

func main() { service.Command(standalone.Name, run) }

func run(ctx context.Context, args []string) error {
	var cfg standalone.Config
	f := service.NewFlags(standalone.Name)
	cfg.RegisterFlags(f)
	if err := service.ParseArgs(f, args, os.Stdout); err != nil {
		return err
	}
	return standalone.Run(ctx, cfg, os.Stdout)
}
