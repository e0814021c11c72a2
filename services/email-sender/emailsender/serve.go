// Package emailsender is the email sender: it consumes EmailCommands from
// greentic.outbound.{env}.{tenant}.email and sends them through SendGrid
// (or captures them in local mode), at most once each; see package
// github.com/greentic/events/pkg/sender for the delivery loop.
package emailsender

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/sender"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
)

// Name is the service name in logs and metrics.
const Name = "email-sender"

// EnvAPIKey holds the deployment's SendGrid API key (from a Kubernetes
// Secret); it is never a flag, so it does not show in process listings.
const EnvAPIKey = "SENDGRID_API_KEY"

// Providers.
const (
	ProviderAuto     = sender.AutoProvider
	ProviderSendGrid = "sendgrid"
	ProviderCapture  = sender.CaptureProvider
)

// Config of the email sender.
type Config struct {
	sender.Config
	// Provider is sendgrid, capture, or auto (sendgrid when SENDGRID_API_KEY
	// is set, else capture).
	Provider string
	// SendGridURL is SendGrid's API base URL.
	SendGridURL string
	// DefaultFrom is the sender address of commands that name none.
	DefaultFrom, DefaultFromName string

	// Lookup reads the environment; nil is os.LookupEnv.
	Lookup func(string) (string, bool)
}

// RegisterFlags defines the email sender's flags (prefix email-).
func (c *Config) RegisterFlags(f *service.Flags, defaultProvider string) {
	c.Config.RegisterFlags(f, bus.ChannelEmail)
	f.String(&c.Provider, "email-provider", defaultProvider, "sendgrid, capture (log and publish email.captured, send nothing), or auto (sendgrid when "+EnvAPIKey+" is set)")
	f.String(&c.SendGridURL, "email-sendgrid-url", "https://api.sendgrid.com", "SendGrid API base URL")
	f.String(&c.DefaultFrom, "email-default-from", "", "sender address of emails whose flow names none")
	f.String(&c.DefaultFromName, "email-default-from-name", "", "display name of the default sender address")
}

// Validate names the first unusable setting.
func (c Config) Validate() error {
	if err := c.Config.Validate(bus.ChannelEmail); err != nil {
		return err
	}
	switch c.Provider {
	case ProviderAuto, ProviderSendGrid, ProviderCapture:
	default:
		return fmt.Errorf("%s must be sendgrid, capture or auto, got %q", service.EnvName("email-provider"), c.Provider)
	}
	if c.DefaultFrom != "" {
		if a, err := mail.ParseAddress(c.DefaultFrom); err != nil || a.Address != c.DefaultFrom {
			return fmt.Errorf("%s must be a plain email address, got %q", service.EnvName("email-default-from"), c.DefaultFrom)
		}
	}
	return nil
}

func (c Config) lookup(name string) (string, bool) {
	if c.Lookup != nil {
		return c.Lookup(name)
	}
	return os.LookupEnv(name)
}

// provider picks the provider and the deployment account's credentials.
func (c Config) provider(rt *service.Runtime) (sender.Provider[*eventsv1.EmailCommand], map[string]string, error) {
	key, _ := c.lookup(EnvAPIKey)
	capture := func() *sender.Capture[*eventsv1.EmailCommand] {
		rt.Log.Warn("email capture mode: emails are logged and published as email.captured events, not sent; set " + EnvAPIKey + " to send through SendGrid")
		return &sender.Capture[*eventsv1.EmailCommand]{Log: rt.Log.With("component", Name), Describe: describe}
	}
	sendGrid := func() (sender.Provider[*eventsv1.EmailCommand], map[string]string, error) {
		if key == "" {
			return nil, nil, errors.New(EnvAPIKey + " is not set: set it to the SendGrid API key, or run with " + service.EnvName("email-provider") + "=capture")
		}
		return &defaultFrom{SendGrid: &SendGrid{BaseURL: c.SendGridURL}, from: c.from()}, map[string]string{"api_key": key}, nil
	}
	return sender.ChooseProvider(c.Provider, key != "", capture, sendGrid)
}

func (c Config) from() *eventsv1.EmailAddress {
	if c.DefaultFrom == "" {
		return nil
	}
	return &eventsv1.EmailAddress{Email: c.DefaultFrom, Name: c.DefaultFromName}
}

// defaultFrom fills in the deployment's sender address.
type defaultFrom struct {
	*SendGrid
	from *eventsv1.EmailAddress
}

func (d *defaultFrom) Send(ctx context.Context, cmd *eventsv1.EmailCommand, acct sender.Account) (sender.Receipt, error) {
	if cmd.GetFrom().GetEmail() == "" && d.from != nil {
		cmd = proto.CloneOf(cmd)
		cmd.From = d.from
	}
	return d.SendGrid.Send(ctx, cmd, acct)
}

// Channel describes email commands to the delivery loop.
var Channel = sender.Channel[*eventsv1.EmailCommand]{
	Name: bus.ChannelEmail,
	New:  func() *eventsv1.EmailCommand { return &eventsv1.EmailCommand{} },
	Summary: func(c *eventsv1.EmailCommand) map[string]any {
		return map[string]any{"to": addresses(c.To), "subject": c.Subject, "template_id": c.TemplateId}
	},
}

func addresses(list []*eventsv1.EmailAddress) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.GetEmail()
	}
	return out
}

func describe(c *eventsv1.EmailCommand) []any {
	return []any{"to", addresses(c.To), "subject", c.Subject, "template_id", c.TemplateId}
}

// Serve runs the email sender on rt until ctx ends.
func Serve(ctx context.Context, rt *service.Runtime, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	p, creds, err := cfg.provider(rt)
	if err != nil {
		return err
	}
	accounts := sender.Accounts{Provider: tenant.ProviderSendGrid, Fields: []string{"api_key"}, Default: creds, Lookup: cfg.Lookup}
	return sender.Serve(ctx, rt, Channel, p, accounts, cfg.Config)
}
