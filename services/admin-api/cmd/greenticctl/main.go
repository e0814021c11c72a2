// Command greenticctl is the command line client of the admin API; see
// "greenticctl help" and the admin-api README.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/greentic/events/services/admin-api/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
