// Package smssender is the SMS sender: it consumes SmsCommands from
// greentic.outbound.{env}.{tenant}.sms and sends them through Twilio (or
// captures them in local mode), at most once each; see package
// github.com/greentic/events/pkg/sender for the delivery loop.
package smssender

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/sender"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
)

// Name is the service name in logs and metrics.
const Name = "sms-sender"

// Environment variables of the deployment's Twilio account (from a
// Kubernetes Secret); never flags, so they do not show in process listings.
// Either the auth token or an API key pair is needed with the account SID.
const (
	EnvAccountSID   = "TWILIO_ACCOUNT_SID"
	EnvAuthToken    = "TWILIO_AUTH_TOKEN"
	EnvAPIKeySID    = "TWILIO_API_KEY_SID"
	EnvAPIKeySecret = "TWILIO_API_KEY_SECRET"
)

// Providers.
const (
	ProviderAuto    = sender.AutoProvider
	ProviderTwilio  = "twilio"
	ProviderCapture = sender.CaptureProvider
)

var credentialFields = []string{"account_sid", "auth_token", "api_key_sid", "api_key_secret"}

// Config of the SMS sender.
type Config struct {
	sender.Config
	// Provider is twilio, capture, or auto (twilio when TWILIO_ACCOUNT_SID
	// is set, else capture).
	Provider string
	// TwilioURL is Twilio's API base URL.
	TwilioURL string
	// StatusCallbackURL is the ingress source receiving Twilio's status
	// callbacks, with {tenant} for the command's tenant.
	StatusCallbackURL string

	// Lookup reads the environment; nil is os.LookupEnv.
	Lookup func(string) (string, bool)
}

// RegisterFlags defines the SMS sender's flags (prefix sms-).
func (c *Config) RegisterFlags(f *service.Flags, defaultProvider string) {
	c.Config.RegisterFlags(f, bus.ChannelSMS)
	f.String(&c.Provider, "sms-provider", defaultProvider, "twilio, capture (log and publish sms.captured, send nothing), or auto (twilio when "+EnvAccountSID+" is set)")
	f.String(&c.TwilioURL, "sms-twilio-url", "https://api.twilio.com", "Twilio API base URL")
	f.String(&c.StatusCallbackURL, "sms-status-callback-url", "", "ingress source for Twilio status callbacks, {tenant} replaced by the tenant, e.g. https://hooks.example.com/v1/webhooks/{tenant}/twilio (empty: none unless the flow sets one)")
}

// Validate names the first unusable setting.
func (c Config) Validate() error {
	if err := c.Config.Validate(bus.ChannelSMS); err != nil {
		return err
	}
	switch c.Provider {
	case ProviderAuto, ProviderTwilio, ProviderCapture:
	default:
		return fmt.Errorf("%s must be twilio, capture or auto, got %q", service.EnvName("sms-provider"), c.Provider)
	}
	if !isHTTPURL(c.TwilioURL) {
		return fmt.Errorf("%s must be an absolute http(s) URL, got %q", service.EnvName("sms-twilio-url"), c.TwilioURL)
	}
	if c.StatusCallbackURL != "" && !isHTTPURL(c.StatusCallbackURL) {
		return fmt.Errorf("%s must be an absolute http(s) URL, got %q", service.EnvName("sms-status-callback-url"), c.StatusCallbackURL)
	}
	return nil
}

func (c Config) lookup(name string) string {
	if c.Lookup != nil {
		v, _ := c.Lookup(name)
		return v
	}
	return os.Getenv(name)
}

// provider picks the provider and the deployment account's credentials.
func (c Config) provider(rt *service.Runtime) (sender.Provider[*eventsv1.SmsCommand], map[string]string, error) {
	creds := map[string]string{}
	for field, env := range map[string]string{"account_sid": EnvAccountSID, "auth_token": EnvAuthToken, "api_key_sid": EnvAPIKeySID, "api_key_secret": EnvAPIKeySecret} {
		if v := c.lookup(env); v != "" {
			creds[field] = v
		}
	}
	capture := func() *sender.Capture[*eventsv1.SmsCommand] {
		rt.Log.Warn("sms capture mode: messages are logged and published as sms.captured events, not sent; set " + EnvAccountSID + " and " + EnvAuthToken + " to send through Twilio")
		return &sender.Capture[*eventsv1.SmsCommand]{Log: rt.Log.With("component", Name), Describe: describe}
	}
	twilio := func() (sender.Provider[*eventsv1.SmsCommand], map[string]string, error) {
		if creds["account_sid"] == "" || (creds["auth_token"] == "" && (creds["api_key_sid"] == "" || creds["api_key_secret"] == "")) {
			return nil, nil, errors.New(EnvAccountSID + " with " + EnvAuthToken + " (or " + EnvAPIKeySID + " and " + EnvAPIKeySecret + ") must be set, or run with " + service.EnvName("sms-provider") + "=capture")
		}
		// Malformed credentials stop the sender now rather than dead-letter
		// every message later.
		if _, perr := accountCredentials(sender.Account{Credentials: creds}); perr != nil {
			return nil, nil, fmt.Errorf("%s/%s: %s", EnvAccountSID, EnvAuthToken, perr.Message)
		}
		return &Twilio{BaseURL: c.TwilioURL, StatusCallbackURL: c.StatusCallbackURL}, creds, nil
	}
	return sender.ChooseProvider(c.Provider, creds["account_sid"] != "", capture, twilio)
}

// Channel describes SMS commands to the delivery loop.
var Channel = sender.Channel[*eventsv1.SmsCommand]{
	Name:    bus.ChannelSMS,
	New:     func() *eventsv1.SmsCommand { return &eventsv1.SmsCommand{} },
	Summary: func(c *eventsv1.SmsCommand) map[string]any { return map[string]any{"to": c.To} },
}

func describe(c *eventsv1.SmsCommand) []any {
	return []any{"to", c.To, "body_chars", len([]rune(c.Body))}
}

// Serve runs the SMS sender on rt until ctx ends.
func Serve(ctx context.Context, rt *service.Runtime, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	p, creds, err := cfg.provider(rt)
	if err != nil {
		return err
	}
	accounts := sender.Accounts{Provider: tenant.ProviderTwilio, Fields: credentialFields, Default: creds, Lookup: cfg.Lookup}
	return sender.Serve(ctx, rt, Channel, p, accounts, cfg.Config)
}
