package sender

import (
	"net/http"
	"time"
)

// AutoProvider is the provider setting that picks the real provider when
// the deployment's credentials are set, and capture otherwise.
const AutoProvider = "auto"

// ChooseProvider returns the provider a sender configured with provider
// uses, with the deployment account's credentials: capture for
// CaptureProvider, and for AutoProvider when haveCredentials is false; the
// real provider otherwise, whose constructor reports missing credentials.
func ChooseProvider[C Command](provider string, haveCredentials bool, capture func() *Capture[C], real func() (Provider[C], map[string]string, error)) (Provider[C], map[string]string, error) {
	if provider == CaptureProvider || (provider == AutoProvider && !haveCredentials) {
		return capture(), nil, nil
	}
	return real()
}

// ClientOr returns c, or ProviderClient when c is nil.
func ClientOr(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return ProviderClient
}

// NowOr returns now(), or time.Now() when now is nil: providers take a
// clock so tests can fix the time.
func NowOr(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}
