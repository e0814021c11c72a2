package adminapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/tenant"
)

// MinTokenLength is the shortest accepted bearer token.
const MinTokenLength = 16

// Principal is who a call is made by: an operator (Tenant empty), who sees
// everything, or a tenant-scoped client, who sees only its tenant.
type Principal struct {
	// Name identifies the token in logs (never the token itself).
	Name   string
	Tenant string
}

// Operator reports whether p may act on every tenant.
func (p Principal) Operator() bool { return p.Tenant == "" }

type token struct {
	principal Principal
	sum       [sha256.Size]byte
}

// Tokens are the bearer tokens the API accepts.
type Tokens struct{ tokens []token }

// ParseTokens reads tokens written one per line or comma separated, each
// "operator=TOKEN" or "tenant:ID=TOKEN"; an optional "NAME@" before the
// scope names the token in logs ("ci@operator=..."). Blank lines and lines
// starting with # are skipped. Errors never contain a token.
func ParseTokens(spec string) (*Tokens, error) {
	ts := &Tokens{}
	seen := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(spec, ",", "\n")))
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		scope, secret, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("token %d: want operator=TOKEN or tenant:ID=TOKEN", n)
		}
		name, scope, named := strings.Cut(scope, "@")
		if !named {
			scope, name = name, ""
		}
		var p Principal
		switch {
		case scope == "operator":
			p.Name = "operator"
		case strings.HasPrefix(scope, "tenant:"):
			p.Tenant = strings.TrimPrefix(scope, "tenant:")
			if err := bus.ValidateTenant(p.Tenant); err != nil {
				return nil, fmt.Errorf("token %d: %w", n, err)
			}
			p.Name = "tenant:" + p.Tenant
		default:
			return nil, fmt.Errorf("token %d: scope %q is neither operator nor tenant:ID", n, scope)
		}
		if name != "" {
			p.Name = name
		}
		if len(secret) < MinTokenLength {
			return nil, fmt.Errorf("token %d (%s): must be at least %d characters", n, p.Name, MinTokenLength)
		}
		sum := sha256.Sum256([]byte(secret))
		if seen[sum] {
			return nil, fmt.Errorf("token %d (%s): the same token is listed twice", n, p.Name)
		}
		seen[sum] = true
		ts.tokens = append(ts.tokens, token{principal: p, sum: sum})
	}
	if len(ts.tokens) == 0 {
		return nil, fmt.Errorf("no tokens: every call needs a bearer token, so at least one is required")
	}
	return ts, nil
}

// Len is the number of tokens.
func (ts *Tokens) Len() int { return len(ts.tokens) }

// lookup finds the principal of a presented token. Every configured token
// is compared, in constant time, whatever matches.
func (ts *Tokens) lookup(presented string) (Principal, bool) {
	sum := sha256.Sum256([]byte(presented))
	var found Principal
	match := 0
	for _, t := range ts.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], t.sum[:])
		if eq == 1 {
			found = t.principal
		}
		match |= eq
	}
	return found, match == 1
}

// authenticate reads "authorization: Bearer TOKEN" from the call.
func (ts *Tokens) authenticate(ctx context.Context) (Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return Principal{}, status.Error(codes.Unauthenticated, "missing bearer token: send the header \"authorization: Bearer TOKEN\"")
	}
	if len(vals) > 1 {
		return Principal{}, status.Error(codes.Unauthenticated, "more than one authorization header")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return Principal{}, status.Error(codes.Unauthenticated, "authorization header must be \"Bearer TOKEN\"")
	}
	p, ok := ts.lookup(strings.TrimSpace(tok))
	if !ok {
		return Principal{}, status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return p, nil
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principal returns the caller of an authenticated call.
func principal(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// authorize checks that the caller may act on tenant; field names where the
// tenant was given in the request ("tenant.id"), for the error when it is
// missing or malformed. Tenant-scoped callers get PermissionDenied for any
// other tenant, so they cannot learn whether it exists.
func authorize(ctx context.Context, field, tenant string) error {
	if tenant == "" {
		return required(field)
	}
	if err := bus.ValidateTenant(tenant); err != nil {
		return invalid(field, err.Error())
	}
	p := principal(ctx)
	if p.Operator() || p.Tenant == tenant {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "token %s may not act on tenant %s", p.Name, tenant)
}

// scopeTenant returns the tenant a listing is limited to: the request's
// tenant (checked by authorize) or, when the request names none, the
// caller's own tenant ("" for operators: every tenant).
func scopeTenant(ctx context.Context, field, tenant string) (string, error) {
	if tenant == "" {
		return principal(ctx).Tenant, nil
	}
	return tenant, authorize(ctx, field, tenant)
}

// operatorOnly refuses tenant-scoped callers.
func operatorOnly(ctx context.Context, what string) error {
	if p := principal(ctx); !p.Operator() {
		return status.Errorf(codes.PermissionDenied, "token %s may not %s: operators only", p.Name, what)
	}
	return nil
}

// itemKey checks the tenant (authorize) and the name of an item of a
// configuration bucket named in a request, and returns its key,
// tenant.Key; the fields name where the request gave them.
func itemKey(ctx context.Context, tenantField, nameField, tenantID, name string) (string, error) {
	if err := authorize(ctx, tenantField, tenantID); err != nil {
		return "", err
	}
	if name == "" {
		return "", required(nameField)
	}
	if err := bus.ValidateName("name", name); err != nil {
		return "", invalid(nameField, err.Error())
	}
	return tenant.Key(tenantID, name), nil
}
