package chart

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The values the chart receives as secrets, distinctive enough that finding
// one anywhere is a leak.
var secretValues = map[string]string{
	"emailSender.sendgrid.apiKey":   "SG.sendgrid-secret-5b1e7c",
	"smsSender.twilio.accountSid":   "ACtwilio-sid-secret-9d2f41",
	"smsSender.twilio.authToken":    "twilio-token-secret-77a0c3",
	"smsSender.twilio.apiKeySid":    "SKtwilio-keysid-secret-3e8b",
	"smsSender.twilio.apiKeySecret": "twilio-keysecret-secret-c41d",
	"admin token":                   "admin-token-secret-0f6a2b9e",
	"email tenant account":          "SG.tenant-account-secret-a8c5",
	"sms tenant account":            "tenant-twilio-token-secret-e3",
}

func secretSet() map[string]any {
	return map[string]any{
		"emailSender.provider":                      "sendgrid",
		"emailSender.sendgrid.existingSecret":       "",
		"emailSender.sendgrid.apiKey":               secretValues["emailSender.sendgrid.apiKey"],
		"smsSender.provider":                        "twilio",
		"smsSender.twilio.existingSecret":           "",
		"smsSender.twilio.accountSid":               secretValues["smsSender.twilio.accountSid"],
		"smsSender.twilio.authToken":                secretValues["smsSender.twilio.authToken"],
		"smsSender.twilio.apiKeySid":                secretValues["smsSender.twilio.apiKeySid"],
		"smsSender.twilio.apiKeySecret":             secretValues["smsSender.twilio.apiKeySecret"],
		"adminApi.auth.existingSecret":              "",
		"adminApi.auth.tokens":                      []any{"ops@operator=" + secretValues["admin token"]},
		"emailSender.tenantAccounts.existingSecret": "",
		"emailSender.tenantAccounts.env":            map[string]any{"GREENTIC_SECRET_ACME_MARKETING_API_KEY": secretValues["email tenant account"]},
		"smsSender.tenantAccounts.existingSecret":   "",
		"smsSender.tenantAccounts.env":              map[string]any{"GREENTIC_SECRET_ACME_SMS_AUTH_TOKEN": secretValues["sms tenant account"]},
	}
}

// TestSecretsStayInSecrets renders every values file with secrets given
// inline and checks no object but a Secret holds one (in clear or base64),
// that no environment variable carries one as a literal value, and that the
// services get each secret from a Secret.
func TestSecretsStayInSecrets(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			objs, err := Render(vs.files, secretSet(), KEDAAPI, PrometheusOperatorAPI)
			if err != nil {
				t.Fatal(err)
			}
			var secrets int
			for _, o := range objs {
				if o.Kind == "Secret" {
					secrets++
					continue
				}
				for what, v := range secretValues {
					for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
						if strings.Contains(string(o.YAML), form) || strings.Contains(string(o.JSON), form) {
							t.Errorf("%s (%s) holds the %s", o, o.Source, what)
						}
					}
				}
			}
			if secrets != 5 {
				t.Errorf("%d Secrets rendered, want 5 (sendgrid, twilio, admin tokens, two tenant accounts)", secrets)
			}
			sensitive := func(name string) bool {
				return strings.HasPrefix(name, "SENDGRID_") || strings.HasPrefix(name, "TWILIO_") || strings.HasPrefix(name, "GREENTIC_SECRET_") || name == "GREENTIC_ADMIN_TOKENS"
			}
			for _, d := range deployments(t, objs) {
				for _, e := range d.Spec.Template.Spec.Containers[0].Env {
					if sensitive(e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
						t.Errorf("Deployment %s: %s is not read from a Secret", d.Name, e.Name)
					}
				}
			}

			// And the services do get them.
			want := map[string]map[string]string{
				"email-sender": {
					"SENDGRID_API_KEY":                       secretValues["emailSender.sendgrid.apiKey"],
					"GREENTIC_SECRET_ACME_MARKETING_API_KEY": secretValues["email tenant account"],
				},
				"sms-sender": {
					"TWILIO_ACCOUNT_SID":                  secretValues["smsSender.twilio.accountSid"],
					"TWILIO_AUTH_TOKEN":                   secretValues["smsSender.twilio.authToken"],
					"TWILIO_API_KEY_SID":                  secretValues["smsSender.twilio.apiKeySid"],
					"TWILIO_API_KEY_SECRET":               secretValues["smsSender.twilio.apiKeySecret"],
					"GREENTIC_SECRET_ACME_SMS_AUTH_TOKEN": secretValues["sms tenant account"],
				},
			}
			for svc, vars := range want {
				env, err := ResolveEnv(objs, svc)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range vars {
					if env[k] != v {
						t.Errorf("%s: %s is %q, want the secret from values", svc, k, env[k])
					}
				}
			}
			checkAdminTokensFile(t, objs, "ops@operator="+secretValues["admin token"])
		})
	}
}

// checkAdminTokensFile: admin-api reads its tokens from a file mounted
// read-only from the Secret holding them.
func checkAdminTokensFile(t *testing.T, objs []Object, tokens string) {
	t.Helper()
	d, err := Deployment(objs, "admin-api")
	if err != nil {
		t.Fatal(err)
	}
	env, err := ResolveEnv(objs, "admin-api")
	if err != nil {
		t.Fatal(err)
	}
	path := env["GREENTIC_ADMIN_TOKENS_FILE"]
	c := d.Spec.Template.Spec.Containers[0]
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(path, m.MountPath+"/") {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("the admin tokens' mount %s is writable", m.MountPath)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			i := slices.IndexFunc(v.Secret.Items, func(k corev1.KeyToPath) bool { return m.MountPath+"/"+k.Path == path })
			if i < 0 {
				t.Fatalf("volume %s does not put a key at %s", v.Name, path)
			}
			data, ok, err := SecretData(objs, v.Secret.SecretName)
			if err != nil || !ok {
				t.Fatalf("Secret %s: rendered %v, %v", v.Secret.SecretName, ok, err)
			}
			if got := string(data[v.Secret.Items[i].Key]); got != tokens {
				t.Errorf("tokens file holds %q, want %q", got, tokens)
			}
			return
		}
	}
	t.Errorf("GREENTIC_ADMIN_TOKENS_FILE=%s is not in a Secret volume", path)
}

// TestExistingSecrets: with existingSecret, the chart creates no Secret of
// that kind and points at the one named, with the configured keys.
func TestExistingSecrets(t *testing.T) {
	t.Parallel()
	objs, err := Render([]string{"values-prod.yaml"}, map[string]any{
		"emailSender.sendgrid.existingSecretKey": "SENDGRID_KEY",
		"smsSender.twilio.keys.accountSid":       "sid",
		"adminApi.auth.key":                      "tokens.txt",
		"adminApi.tls.existingSecret":            "admin-grpc-tls",
		"adminApi.tls.clientCA":                  true,
		"nats.credentials.existingSecret":        "greentic-nats-creds",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Kind == "Secret" {
			t.Errorf("%s rendered although every secret is an existing one", o)
		}
	}
	refs := map[string]map[string][2]string{
		"email-sender": {"SENDGRID_API_KEY": {"greentic-sendgrid", "SENDGRID_KEY"}},
		"sms-sender":   {"TWILIO_ACCOUNT_SID": {"greentic-twilio", "sid"}, "TWILIO_AUTH_TOKEN": {"greentic-twilio", "auth-token"}},
	}
	for svc, want := range refs {
		env, err := DeploymentEnv(objs, svc)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range env {
			if w, ok := want[e.Name]; ok {
				if r := e.ValueFrom.SecretKeyRef; r.Name != w[0] || r.Key != w[1] {
					t.Errorf("%s: %s from %s/%s, want %s/%s", svc, e.Name, r.Name, r.Key, w[0], w[1])
				}
				delete(want, e.Name)
			}
		}
		for name := range want {
			t.Errorf("%s: %s not set", svc, name)
		}
	}
	d, err := Deployment(objs, "admin-api")
	if err != nil {
		t.Fatal(err)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	if v := vols["admin-tokens"]; v.Secret == nil || v.Secret.SecretName != "greentic-admin-tokens" || v.Secret.Items[0].Key != "tokens.txt" {
		t.Errorf("admin tokens volume %+v", v)
	}
	if v := vols["admin-tls"]; v.Secret == nil || v.Secret.SecretName != "admin-grpc-tls" {
		t.Errorf("admin TLS volume %+v", v)
	}
	for svc, d := range deployments(t, objs) {
		env, err := ResolveEnv(objs, svc)
		if err != nil {
			t.Fatal(err)
		}
		creds := env["GREENTIC_NATS_CREDS"]
		if creds == "" || !mountsFile(d.Spec.Template.Spec.Containers[0], creds) {
			t.Errorf("%s: GREENTIC_NATS_CREDS=%q is not a file mounted read-only", svc, creds)
		}
		var fromSecret bool
		for _, v := range d.Spec.Template.Spec.Volumes {
			fromSecret = fromSecret || v.Secret != nil && v.Secret.SecretName == "greentic-nats-creds"
		}
		if !fromSecret {
			t.Errorf("%s: no volume from the Secret greentic-nats-creds", svc)
		}
	}
	env, err := ResolveEnv(objs, "admin-api")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"GREENTIC_ADMIN_TLS_CERT":      "/etc/greentic/admin-tls/tls.crt",
		"GREENTIC_ADMIN_TLS_KEY":       "/etc/greentic/admin-tls/tls.key",
		"GREENTIC_ADMIN_TLS_CLIENT_CA": "/etc/greentic/admin-tls/ca.crt",
		"GREENTIC_NATS_CREDS":          "/etc/greentic/nats/nats.creds",
	} {
		if env[k] != v {
			t.Errorf("admin-api: %s=%q, want %q", k, env[k], v)
		}
	}
}

// TestCaptureNeedsNoCredentials: in capture mode the senders get no
// provider credentials at all.
func TestCaptureNeedsNoCredentials(t *testing.T) {
	t.Parallel()
	objs, err := Render([]string{"values-dev.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"email-sender", "sms-sender"} {
		env, err := DeploymentEnv(objs, svc)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range env {
			if strings.HasPrefix(e.Name, "SENDGRID_") || strings.HasPrefix(e.Name, "TWILIO_") {
				t.Errorf("%s: %s set in capture mode", svc, e.Name)
			}
		}
	}
}
