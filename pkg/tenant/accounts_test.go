package tenant

import (
	"strings"
	"testing"
)

func TestAccountsValidate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accounts map[string]Account
		want     string
	}{
		{"valid", map[string]Account{"marketing": {Provider: ProviderSendGrid, SecretRef: "acme-marketing"}, "sms": {Provider: ProviderTwilio, SecretRef: "acme_sms"}}, ""},
		{"bad name", map[string]Account{"a.b": {Provider: ProviderSendGrid, SecretRef: "x"}}, "accounts"},
		{"unknown provider", map[string]Account{"m": {Provider: "mailgun", SecretRef: "x"}}, "accounts.m.provider"},
		{"no secret ref", map[string]Account{"m": {Provider: ProviderSendGrid}}, "accounts.m.secret_ref"},
		{"secret ref with a path", map[string]Account{"m": {Provider: ProviderSendGrid, SecretRef: "../etc"}}, "accounts.m.secret_ref"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Tenant{ID: "acme", Accounts: tc.accounts}.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
