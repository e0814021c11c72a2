package jsonscan

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// webhook1K is a Stripe-style event, pretty printed as Stripe sends it.
var webhook1K = []byte(`{
  "id": "evt_1OaBcDeFgHiJkLmNoPqRsTuV",
  "object": "event",
  "api_version": "2023-10-16",
  "created": 1705327384,
  "data": {
    "object": {
      "id": "in_1OaBcCeFgHiJkLmNwXyZaBcD",
      "object": "invoice",
      "account_country": "DE",
      "account_name": "Greentic GmbH",
      "amount_due": 4900,
      "amount_paid": 4900,
      "amount_remaining": 0,
      "billing_reason": "subscription_cycle",
      "currency": "eur",
      "customer": "cus_PQrStUvWxYz123",
      "customer_email": "billing@example.com",
      "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1Nx/test_YWNjdF8xTngsX1BRclN0",
      "lines": {
        "object": "list",
        "data": [
          {"id": "il_1OaBc", "type": "subscription", "amount": 4900, "description": "1 × Pro (at €49.00 / month)"}
        ],
        "has_more": false
      },
      "paid": true,
      "status": "paid",
      "total": 4900
    },
    "previous_attributes": null
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": null, "idempotency_key": "8f14e45f-ceea-467f-a0e6-4b8a1c3d2e9f"},
  "type": "invoice.paid"
}`)

// webhook16K is a GitHub-style push event with many commits, compact.
var webhook16K = func() []byte {
	var b strings.Builder
	b.WriteString(`{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"76ae82c7b1a177c8d03f9e96e0adf2466113728f",`)
	b.WriteString(`"repository":{"id":186853002,"node_id":"MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=","name":"events","full_name":"greentic/events","private":true,`)
	b.WriteString(`"owner":{"name":"greentic","login":"greentic","id":21031067,"type":"Organization","site_admin":false},"html_url":"https://github.com/greentic/events",`)
	b.WriteString(`"description":"Event routing \"core\" \u2014 webhooks, bus and flows","fork":false,"created_at":1557756268,"pushed_at":1705327384,"size":4242,`)
	b.WriteString(`"stargazers_count":17,"language":"Go","has_issues":true,"topics":["events","webhooks","nats"],"default_branch":"main"},`)
	b.WriteString(`"pusher":{"name":"octocat","email":"octocat@example.com"},"sender":{"login":"octocat","id":583231,"type":"User","site_admin":false},`)
	b.WriteString(`"created":false,"deleted":false,"forced":false,"base_ref":null,"compare":"https://github.com/greentic/events/compare/6113728f27ae...76ae82c7b1a1",`)
	b.WriteString(`"commits":[`)
	for i := 0; b.Len() < 15800; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%040x","tree_id":"%040x","distinct":true,"message":"ingress: commit number %d\n\nReduce allocations on the hot path; see #%d.","timestamp":"2024-01-15T14:%02d:04+01:00",`, i*7919+1, i*104729+3, i, 1000+i, i%60)
		fmt.Fprintf(&b, `"url":"https://github.com/greentic/events/commit/%040x","author":{"name":"Mona Lisa Octocat","email":"mona@example.com","username":"mona"},`, i*7919+1)
		b.WriteString(`"committer":{"name":"GitHub","email":"noreply@github.com","username":"web-flow"},"added":[],"removed":[],"modified":["pkg/jsonscan/scan.go","services/ingress-webhook/ingress/handler.go"]}`)
	}
	b.WriteString(`],"head_commit":null,"type":"push","id":"c0ffee00-1234-4abc-9def-0123456789ab"}`)
	return []byte(b.String())
}()

var benchBodies = []struct {
	name string
	body []byte
}{
	{"1KB", webhook1K},
	{"16KB", webhook16K},
}

func TestBenchBodies(t *testing.T) {
	for _, bb := range benchBodies {
		if !json.Valid(bb.body) {
			t.Fatalf("%s body is not valid JSON", bb.name)
		}
		fields := []Field{{Key: "type"}, {Key: "id"}}
		if err := Scan(bb.body, fields); err != nil || !fields[0].Found || !fields[1].Found {
			t.Fatalf("%s: %v %+v", bb.name, err, fields)
		}
		checkAgainstStdlib(t, bb.body, fields)
		t.Logf("%s body: %d bytes", bb.name, len(bb.body))
	}
}

var sink string

// BenchmarkScan validates the body and locates "type" and "id".
func BenchmarkScan(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			fields := []Field{{Key: "type"}, {Key: "id"}}
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			for b.Loop() {
				if err := Scan(bb.body, fields); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScanText is BenchmarkScan plus decoding both values to strings,
// the full equivalent of BenchmarkUnmarshalMap.
func BenchmarkScanText(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			fields := []Field{{Key: "type"}, {Key: "id"}}
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			for b.Loop() {
				if err := Scan(bb.body, fields); err != nil {
					b.Fatal(err)
				}
				typ, _ := Text(fields[0].Raw)
				id, _ := Text(fields[1].Raw)
				sink = typ + id
			}
		})
	}
}

// BenchmarkUnmarshalMap is the approach Scan replaces: decode into a
// map[string]json.RawMessage, then decode the two wanted strings.
func BenchmarkUnmarshalMap(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			for b.Loop() {
				var m map[string]json.RawMessage
				if err := json.Unmarshal(bb.body, &m); err != nil {
					b.Fatal(err)
				}
				var typ, id string
				if err := json.Unmarshal(m["type"], &typ); err != nil {
					b.Fatal(err)
				}
				if err := json.Unmarshal(m["id"], &id); err != nil {
					b.Fatal(err)
				}
				sink = typ + id
			}
		})
	}
}

// BenchmarkValid is json.Valid alone, for reference: the validation that
// Scan performs as well.
func BenchmarkValid(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			for b.Loop() {
				if !json.Valid(bb.body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
