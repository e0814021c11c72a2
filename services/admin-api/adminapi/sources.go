package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greentic/events/pkg/bus"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
	"github.com/greentic/events/services/admin-api/adminconv"
)

// Grace periods of a secret rotation.
const (
	defaultRotationGrace = 24 * time.Hour
	maxRotationGrace     = 30 * 24 * time.Hour
)

type sourceServer struct {
	adminv1.UnimplementedSourceServiceServer
	*Server
}

// PutSource creates or replaces a source; with a non-zero source.revision
// only over that revision. Secrets are write-only: the request's secrets
// replace every accepted secret (retiring ones too), and none keeps those
// stored. Schemes that verify without secrets (none, sendgrid) drop them.
func (s *sourceServer) PutSource(ctx context.Context, req *adminv1.PutSourceRequest) (*adminv1.PutSourceResponse, error) {
	in := req.GetSource()
	if in == nil {
		return nil, required("source")
	}
	key, err := itemKey(ctx, "source.tenant", "source.name", in.GetTenant(), in.GetName())
	if err != nil {
		return nil, err
	}
	src, err := sourceIn(in)
	if err != nil {
		return nil, err
	}
	what := "source " + src.Tenant + "/" + src.Name
	if err := s.tenantExists(ctx, src.Tenant); err != nil {
		return nil, err
	}
	now := s.now()
	var next tenant.Source
	e, err := s.store.Modify(ctx, bus.BucketSources, key, in.GetRevision(), func(cur tenantkv.Entry, exists bool) ([]byte, error) {
		next = src
		if exists {
			var stored tenant.Source
			if err := json.Unmarshal(cur.Value, &stored); err != nil {
				return nil, status.Errorf(codes.Internal, "stored %s (revision %d) is malformed", what, cur.Revision)
			}
			if len(req.GetSecrets()) == 0 && usesSecrets(next.Scheme) {
				next.Secrets, next.RetiringSecrets = stored.Secrets, stored.RetiringSecrets
				next.DropExpiredSecrets(now)
			}
		}
		if len(req.GetSecrets()) > 0 {
			next.Secrets = slices.Clone(req.GetSecrets())
		}
		if err := next.Validate(); err != nil {
			return nil, sourceInvalid(err, "secrets")
		}
		value, err := json.Marshal(next)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode %s: %v", what, err)
		}
		return value, nil
	})
	if err != nil {
		return nil, storeErr(what, err)
	}
	s.log.Info("source stored", "tenant", src.Tenant, "source", src.Name, "scheme", next.Scheme, "revision", e.Revision, "secrets_replaced", len(req.GetSecrets()) > 0, "by", principal(ctx).Name)
	return &adminv1.PutSourceResponse{Source: sourceOut(next, e, now)}, nil
}

func (s *sourceServer) GetSource(ctx context.Context, req *adminv1.GetSourceRequest) (*adminv1.GetSourceResponse, error) {
	key, err := itemKey(ctx, "tenant", "name", req.GetTenant(), req.GetName())
	if err != nil {
		return nil, err
	}
	src, e, err := s.readSource(ctx, key)
	if err != nil {
		return nil, err
	}
	return &adminv1.GetSourceResponse{Source: sourceOut(src, e, s.now())}, nil
}

// ListSources lists the sources of a tenant, or of every tenant for an
// operator naming none.
func (s *sourceServer) ListSources(ctx context.Context, req *adminv1.ListSourcesRequest) (*adminv1.ListSourcesResponse, error) {
	items, next, err := s.listPage(ctx, bus.BucketSources, req.GetTenant(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	now := s.now()
	res := &adminv1.ListSourcesResponse{NextPageToken: next}
	for _, e := range items {
		var src tenant.Source
		if err := json.Unmarshal(e.Value, &src); err != nil || tenant.SourceKey(src.Tenant, src.Name) != e.Key {
			s.log.Warn("skipping malformed stored source", "key", e.Key, "revision", e.Revision)
			continue
		}
		res.Sources = append(res.Sources, sourceOut(src, e, now))
	}
	return res, nil
}

// DeleteSource removes a source; with a revision only if it is still at it.
func (s *sourceServer) DeleteSource(ctx context.Context, req *adminv1.DeleteSourceRequest) (*adminv1.DeleteSourceResponse, error) {
	key, err := itemKey(ctx, "tenant", "name", req.GetTenant(), req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, bus.BucketSources, key, req.GetRevision()); err != nil {
		return nil, storeErr("source "+req.GetTenant()+"/"+req.GetName(), err)
	}
	s.log.Info("source deleted", "tenant", req.GetTenant(), "source", req.GetName(), "by", principal(ctx).Name)
	return &adminv1.DeleteSourceResponse{}, nil
}

// RotateSourceSecret makes new_secret the source's first secret, the one
// senders sign with, and keeps every other secret accepted until the end
// of the grace period, so the senders can switch without a failed
// delivery. Rotating to a secret already first changes nothing but
// deadlines.
func (s *sourceServer) RotateSourceSecret(ctx context.Context, req *adminv1.RotateSourceSecretRequest) (*adminv1.RotateSourceSecretResponse, error) {
	key, err := itemKey(ctx, "tenant", "name", req.GetTenant(), req.GetName())
	if err != nil {
		return nil, err
	}
	newSecret := req.GetNewSecret()
	if newSecret == "" {
		return nil, required("new_secret")
	}
	grace := time.Duration(req.GetGraceSeconds()) * time.Second
	switch {
	case req.GetGraceSeconds() < 0:
		return nil, invalid("grace_seconds", "must not be negative")
	case req.GetGraceSeconds() > int64(maxRotationGrace/time.Second):
		return nil, invalid("grace_seconds", fmt.Sprintf("at most %d (%s)", int64(maxRotationGrace/time.Second), maxRotationGrace))
	case grace == 0:
		grace = defaultRotationGrace
	}
	what := "source " + req.GetTenant() + "/" + req.GetName()
	now := s.now()
	until := now.Add(grace)
	var (
		src      tenant.Source
		retiring []tenant.RetiringSecret
	)
	e, err := s.store.Modify(ctx, bus.BucketSources, key, 0, func(cur tenantkv.Entry, exists bool) ([]byte, error) {
		if !exists {
			return nil, tenantkv.ErrNotFound
		}
		var err error
		if src, err = decodeSource(key, cur); err != nil {
			return nil, err
		}
		if !usesSecrets(src.Scheme) {
			return nil, status.Errorf(codes.FailedPrecondition, "%s uses scheme %s, which verifies without secrets: there is nothing to rotate", what, src.Scheme)
		}
		src.DropExpiredSecrets(now)
		retiring = slices.DeleteFunc(slices.Clone(src.RetiringSecrets), func(r tenant.RetiringSecret) bool { return r.Secret == newSecret })
		for _, old := range src.Secrets {
			if old == newSecret {
				continue
			}
			if i := slices.IndexFunc(retiring, func(r tenant.RetiringSecret) bool { return r.Secret == old }); i >= 0 {
				retiring[i].Until = until
				continue
			}
			retiring = append(retiring, tenant.RetiringSecret{Secret: old, Until: until})
		}
		if 1+len(retiring) > tenant.MaxSecrets {
			return nil, status.Errorf(codes.FailedPrecondition, "%s would accept %d secrets, more than %d: wait for retiring secrets to expire, or replace them all with PutSource", what, 1+len(retiring), tenant.MaxSecrets)
		}
		src.Secrets = []string{newSecret}
		src.RetiringSecrets = retiring
		if len(retiring) == 0 {
			src.RetiringSecrets = nil
		}
		if err := src.Validate(); err != nil {
			return nil, sourceInvalid(err, "new_secret")
		}
		value, err := json.Marshal(src)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode %s: %v", what, err)
		}
		return value, nil
	})
	if err != nil {
		return nil, storeErr(what, err)
	}
	res := &adminv1.RotateSourceSecretResponse{Source: sourceOut(src, e, now)}
	if len(retiring) > 0 {
		last := retiring[0].Until
		for _, r := range retiring[1:] {
			if r.Until.After(last) {
				last = r.Until
			}
		}
		res.OldSecretsExpireTime = timestamppb.New(last)
	}
	s.log.Info("source secret rotated", "tenant", req.GetTenant(), "source", req.GetName(), "retiring", len(retiring), "until", until, "revision", e.Revision, "by", principal(ctx).Name)
	return res, nil
}

// readSource reads and decodes a stored source.
func (s *sourceServer) readSource(ctx context.Context, key string) (tenant.Source, tenantkv.Entry, error) {
	e, err := s.store.Get(ctx, bus.BucketSources, key)
	if err != nil {
		t, n, _ := tenant.SplitKey(key)
		return tenant.Source{}, e, storeErr("source "+t+"/"+n, err)
	}
	src, err := decodeSource(key, e)
	return src, e, err
}

// decodeSource decodes the stored source of key.
func decodeSource(key string, e tenantkv.Entry) (tenant.Source, error) {
	var src tenant.Source
	if err := json.Unmarshal(e.Value, &src); err != nil || tenant.SourceKey(src.Tenant, src.Name) != key {
		return tenant.Source{}, status.Errorf(codes.Internal, "stored source %s (revision %d) is malformed", key, e.Revision)
	}
	return src, nil
}

// usesSecrets reports whether a scheme verifies with secrets.
func usesSecrets(scheme string) bool {
	return scheme != tenant.SchemeNone && scheme != tenant.SchemeSendGrid
}

// sourceIn converts a request's source; secrets and output-only fields
// are not part of it.
func sourceIn(in *adminv1.Source) (tenant.Source, error) {
	src, err := adminconv.StoredSource(in)
	if err != nil {
		return src, conversionInvalid("source", err)
	}
	return src, nil
}

// sourceOut is the API form of a stored source: never its secrets, only
// how many are accepted at now.
func sourceOut(src tenant.Source, e tenantkv.Entry, now time.Time) *adminv1.Source {
	out := adminconv.Source(src)
	out.SecretCount = int32(len(src.AcceptedSecrets(now)))
	out.Revision = e.Revision
	return out
}

// sourceInvalid turns an error of tenant.Source.Validate into
// InvalidArgument naming the request field: the source's fields under
// "source" in their API names, and errors of the secrets under
// secretsField ("secrets" of PutSource, "new_secret" of a rotation), for
// secrets are a field of the request, not of the source.
func sourceInvalid(err error, secretsField string) error {
	var tok *bus.TokenError
	if errors.As(err, &tok) {
		switch tok.Field {
		case "source":
			return invalid("source.name", tok.Error())
		case "event_type":
			return invalid("source.event_type", tok.Error())
		}
		return invalid("source."+tok.Field, tok.Error())
	}
	m := fieldPrefix.FindStringSubmatch(err.Error())
	if m == nil {
		return invalid("source", err.Error())
	}
	path, desc := m[1], m[2]
	top, rest := path, ""
	if i := strings.IndexAny(path, ".[,"); i >= 0 {
		top, rest = path[:i], path[i:]
	}
	switch top {
	case "secrets", "retiring_secrets":
		field := secretsField
		if top == "secrets" && secretsField == "secrets" {
			field += strings.SplitN(rest, ",", 2)[0] // secrets[1]: the index is the request's
		}
		return invalid(field, desc)
	case "signature":
		sub := strings.TrimPrefix(rest, ".")
		if sub == "" {
			sub = "header"
		}
		return invalid("source.signature_"+sub, desc)
	case "tolerance":
		return invalid("source.tolerance_seconds", desc)
	case "event_type", "event_id":
		return invalid("source."+top, desc)
	}
	return invalid("source."+path, desc)
}
