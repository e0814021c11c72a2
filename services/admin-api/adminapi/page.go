package adminapi

import (
	"context"
	"encoding/base64"
	"sort"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// Page sizes of the List methods.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// page returns the items (sorted by key) after the page token, at most
// size of them, and the token of the next page ("" on the last page).
// Tokens are opaque to clients: the base64 of the last key returned.
func page[T any](items []T, key func(T) string, size int32, token string) ([]T, string, error) {
	n, err := pageSize(size)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", invalid("page_token", "not a token returned by this method")
		}
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > string(after) })
	}
	end := min(start+n, len(items))
	out := items[start:end]
	next := ""
	if end < len(items) && len(out) > 0 {
		next = base64.RawURLEncoding.EncodeToString([]byte(key(out[len(out)-1])))
	}
	return out, next, nil
}

// pageSize checks a List method's page_size: 0 is the default, and more
// than the maximum is the maximum.
func pageSize(n int32) (int, error) {
	if n < 0 {
		return 0, invalid("page_size", "must not be negative")
	}
	if n == 0 {
		return defaultPageSize, nil
	}
	return min(int(n), maxPageSize), nil
}

// listPage returns one page of the {tenant}.{name} entries of bucket b that
// a listing may show: the named tenant's (checked by scopeTenant), the
// caller's own for a tenant token naming none, every tenant's for an
// operator naming none.
func (s *Server) listPage(ctx context.Context, b bus.Bucket, tenantID string, size int32, token string) ([]tenantkv.Entry, string, error) {
	scope, err := scopeTenant(ctx, "tenant", tenantID)
	if err != nil {
		return nil, "", err
	}
	prefix := ""
	if scope != "" {
		prefix = scope + "."
	}
	entries, err := s.store.List(ctx, b, prefix)
	if err != nil {
		return nil, "", storeErr(string(b), err)
	}
	return page(entries, func(e tenantkv.Entry) string { return e.Key }, size, token)
}
