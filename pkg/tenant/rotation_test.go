package tenant

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAcceptedSecrets(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := validSource()
	s.Secrets = []string{"new-secret-0123"}
	if got := s.AcceptedSecrets(now); !slices.Equal(got, s.Secrets) {
		t.Fatalf("without retiring secrets: %v", got)
	}
	s.RetiringSecrets = []RetiringSecret{
		{Secret: "old-secret-0123", Until: now.Add(time.Hour)},
		{Secret: "older-secret-0123", Until: now.Add(time.Minute)},
	}
	for _, tc := range []struct {
		at   time.Time
		want []string
	}{
		{now, []string{"new-secret-0123", "old-secret-0123", "older-secret-0123"}},
		{now.Add(time.Minute - time.Nanosecond), []string{"new-secret-0123", "old-secret-0123", "older-secret-0123"}},
		// The deadline itself is past.
		{now.Add(time.Minute), []string{"new-secret-0123", "old-secret-0123"}},
		{now.Add(time.Hour), []string{"new-secret-0123"}},
	} {
		if got := s.AcceptedSecrets(tc.at); !slices.Equal(got, tc.want) {
			t.Errorf("at %s: got %v, want %v", tc.at.Sub(now), got, tc.want)
		}
	}
	// AcceptedSecrets does not change the source's own slice.
	_ = append(s.AcceptedSecrets(now)[:1], "x")
	if s.Secrets[0] != "new-secret-0123" || len(s.RetiringSecrets) != 2 {
		t.Fatalf("source changed: %+v", s)
	}
}

func TestDropExpiredSecrets(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := validSource()
	kept := RetiringSecret{Secret: "old-secret-0123", Until: now.Add(time.Hour)}
	s.RetiringSecrets = []RetiringSecret{{Secret: "gone-secret-0123", Until: now}, kept}
	orig := slices.Clone(s.RetiringSecrets)
	c := s
	c.DropExpiredSecrets(now)
	if !slices.Equal(c.RetiringSecrets, []RetiringSecret{kept}) {
		t.Fatalf("after drop: %+v", c.RetiringSecrets)
	}
	if !slices.Equal(s.RetiringSecrets, orig) {
		t.Fatalf("the copy's drop changed the original: %+v", s.RetiringSecrets)
	}
	c.DropExpiredSecrets(now.Add(time.Hour))
	if c.RetiringSecrets != nil {
		t.Fatalf("all expired: %+v", c.RetiringSecrets)
	}
	// Dropped entirely from the JSON once none is left.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "retiring_secrets") {
		t.Fatalf("JSON keeps an empty list: %s", b)
	}
}

func TestRetiringSecretsValidate(t *testing.T) {
	until := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		modify func(*Source)
		want   string // substring of the error; "" means valid
	}{
		{name: "valid", modify: func(s *Source) {
			s.RetiringSecrets = []RetiringSecret{{Secret: "old-secret-0123", Until: until}}
		}},
		{name: "too short", modify: func(s *Source) {
			s.RetiringSecrets = []RetiringSecret{{Secret: "short", Until: until}}
		}, want: "retiring_secrets[0]: must be at least 8 characters"},
		{name: "no deadline", modify: func(s *Source) {
			s.RetiringSecrets = []RetiringSecret{{Secret: "old-secret-0123"}}
		}, want: "retiring_secrets[0].until: required"},
		{name: "counted in the limit", modify: func(s *Source) {
			for range MaxSecrets {
				s.RetiringSecrets = append(s.RetiringSecrets, RetiringSecret{Secret: "old-secret-0123", Until: until})
			}
		}, want: "secrets: at most 8 secrets, retiring ones included, got 9"},
		{name: "stripe format", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "stripe", Scheme: SchemeStripe, Secrets: []string{"whsec_new_0123456789"},
				RetiringSecrets: []RetiringSecret{{Secret: "not-a-stripe-secret", Until: until}}}
		}, want: "retiring_secrets[0]: a Stripe signing secret starts with whsec_"},
		{name: "scheme none", modify: func(s *Source) {
			*s = Source{Tenant: "acme", Name: "open", Scheme: SchemeNone, EventType: ValueFrom{Value: "order.created"},
				RetiringSecrets: []RetiringSecret{{Secret: "old-secret-0123", Until: until}}}
		}, want: "secrets: scheme none verifies nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSource()
			tc.modify(&s)
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want %q, got %v", tc.want, err)
			case err != nil && strings.Contains(err.Error(), "secret-0123"):
				t.Fatalf("error shows a secret: %v", err)
			}
		})
	}
}

func TestRetiringSecretsJSON(t *testing.T) {
	until := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := validSource()
	s.RetiringSecrets = []RetiringSecret{{Secret: "old-secret-0123", Until: until}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"retiring_secrets":[{"secret":"old-secret-0123","until":"2025-03-01T12:00:00Z"}]`) {
		t.Fatalf("JSON: %s", b)
	}
	var back Source
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.RetiringSecrets) != 1 || !back.RetiringSecrets[0].Until.Equal(until) {
		t.Fatalf("round trip: %+v", back.RetiringSecrets)
	}
}
