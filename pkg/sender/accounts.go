package sender

import (
	"fmt"
	"os"
	"strings"

	"github.com/greentic/events/pkg/tenant"
)

// DefaultAccountKey is the rate-limit key of the deployment's account.
const DefaultAccountKey = "default"

// Accounts resolves the provider account a command goes through: the
// deployment's, or a tenant's own account named by the command.
type Accounts struct {
	// Provider is tenant.ProviderSendGrid or tenant.ProviderTwilio: a
	// tenant account of another provider is refused.
	Provider string
	// Fields are the credential fields read for a tenant account.
	Fields []string
	// Default holds the deployment account's credentials.
	Default map[string]string
	// Tenants knows each tenant's accounts.
	Tenants *tenant.Registry
	// Lookup reads a secret; nil reads the environment.
	Lookup func(name string) (string, bool)
}

// SecretEnv is the environment variable holding field of the secret ref:
// GREENTIC_SECRET_{REF}_{FIELD}, upper-cased, '-' written '_'.
func SecretEnv(ref, field string) string {
	return "GREENTIC_SECRET_" + strings.ToUpper(strings.ReplaceAll(ref, "-", "_")) + "_" + strings.ToUpper(field)
}

// Resolve returns the account named name of tenant tenantID ("" is the
// deployment's). An unknown account is an invalid command: no retry can fix
// it.
func (a *Accounts) Resolve(tenantID, name string) (Account, error) {
	if name == "" {
		return Account{Key: DefaultAccountKey, Credentials: a.Default}, nil
	}
	t, ok := a.Tenants.Tenant(tenantID)
	if !ok {
		return Account{}, InvalidCommand("account", "tenant %s is not known", tenantID)
	}
	ta, ok := t.Accounts[name]
	if !ok {
		return Account{}, InvalidCommand("account", "tenant %s has no account %q", tenantID, name)
	}
	if ta.Provider != a.Provider {
		return Account{}, InvalidCommand("account", "account %q of tenant %s is a %s account, not %s", name, tenantID, ta.Provider, a.Provider)
	}
	lookup := a.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	creds := make(map[string]string, len(a.Fields))
	for _, f := range a.Fields {
		if v, ok := lookup(SecretEnv(ta.SecretRef, f)); ok && v != "" {
			creds[f] = v
		}
	}
	return Account{Name: name, Key: fmt.Sprintf("%s/%s", tenantID, name), Credentials: creds}, nil
}
