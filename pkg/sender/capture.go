package sender

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
)

// CaptureProvider is the name of the capture provider.
const CaptureProvider = "capture"

// Capture is the provider of local mode: it sends nothing, logs each
// message and accepts it, and the sender publishes it as a
// {channel}.captured event carrying the whole command. Standalone uses it
// when no provider credentials are configured, so flows can be tried
// offline.
type Capture[C Command] struct {
	Log *slog.Logger
	// Describe returns the attributes logged for a command (recipients,
	// subject); nil logs the id only.
	Describe func(C) []any
}

// Name is "capture".
func (p *Capture[C]) Name() string { return CaptureProvider }

// Send logs cmd and accepts it with a provider id derived from its id.
func (p *Capture[C]) Send(_ context.Context, cmd C, _ Account) (Receipt, error) {
	if p.Log != nil {
		attrs := []any{"tenant", cmd.GetOrigin().GetTenant(), "command_id", cmd.GetId()}
		if p.Describe != nil {
			attrs = append(attrs, p.Describe(cmd)...)
		}
		p.Log.Info("message captured, not sent (no provider credentials configured)", attrs...)
	}
	sum := sha256.Sum256([]byte(cmd.GetOrigin().GetTenant() + "\n" + cmd.GetId()))
	return Receipt{ProviderID: "captured-" + hex.EncodeToString(sum[:8]), Status: "captured"}, nil
}
