// Command webhook-send signs a webhook the way the source's provider does
// and sends it to a running ingress, using a source of a bundle:
//
//	go run ./services/ingress-webhook/cmd/webhook-send -source github
//	go run ./services/ingress-webhook/cmd/webhook-send -source stripe -body my-event.json
//
// The body defaults to examples/payloads/<source>.json (.form for twilio).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/greentic/events/pkg/bundle"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/services/ingress-webhook/webhooksend"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "webhook-send:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("webhook-send", flag.ContinueOnError)
	bundlePath := fs.String("bundle", "examples/bundle.yaml", "bundle holding the source and its secrets")
	tenantID := fs.String("tenant", "demo", "tenant of the source")
	sourceName := fs.String("source", "generic", "source to send to")
	bodyPath := fs.String("body", "", "body file (default examples/payloads/<source>.json, .form for twilio)")
	baseURL := fs.String("url", envOr("GREENTIC_INGRESS_URL", "http://127.0.0.1:8080"), "base URL of the ingress")
	keyPath := fs.String("sendgrid-key", "examples/keys/sendgrid-demo-private.pem", "ECDSA private key for sendgrid sources")
	githubEvent := fs.String("github-event", "issues", "X-GitHub-Event for github sources")
	fresh := fs.Bool("new-delivery", false, "use a new delivery id instead of one derived from the body (which shows de-duplication on resend)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := bundle.Load(*bundlePath)
	if err != nil {
		return err
	}
	src, err := findSource(b, *tenantID, *sourceName)
	if err != nil {
		return err
	}
	if *bodyPath == "" {
		ext := ".json"
		if src.Scheme == tenant.SchemeTwilio {
			ext = ".form"
		}
		*bodyPath = filepath.Join(filepath.Dir(*bundlePath), "payloads", src.Name+ext)
	}
	body, err := os.ReadFile(*bodyPath)
	if err != nil {
		return err
	}
	body = bytes.TrimSpace(body)
	req := webhooksend.Request{BaseURL: *baseURL, Source: src, Body: body, Now: time.Now(), GitHubEvent: *githubEvent}
	if !*fresh {
		req.DeliveryID = webhooksend.DeliveryIDFor(body)
	}
	if src.Scheme == tenant.SchemeSendGrid {
		pemBytes, err := os.ReadFile(*keyPath)
		if err != nil {
			return err
		}
		if req.SendGridKey, err = webhooksend.ParsePrivateKey(pemBytes); err != nil {
			return fmt.Errorf("%s: %w", *keyPath, err)
		}
	}
	hr, err := webhooksend.Build(req)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(out, "%s %s\n%s", hr.Method, hr.URL, resp.Status+"\n")
	_, _ = out.Write(answer)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

func findSource(b *bundle.Bundle, tenantID, name string) (tenant.Source, error) {
	for _, t := range b.Tenants {
		if t.ID != tenantID {
			continue
		}
		for _, s := range t.Sources {
			if s.Name == name {
				return s, nil
			}
		}
		return tenant.Source{}, fmt.Errorf("tenant %q has no source %q", tenantID, name)
	}
	return tenant.Source{}, fmt.Errorf("the bundle has no tenant %q", tenantID)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
