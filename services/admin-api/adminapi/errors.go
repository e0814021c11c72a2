package adminapi

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/tenant/tenantkv"
	"github.com/greentic/events/services/admin-api/adminconv"
)

// invalid is an InvalidArgument error naming one field of the request in a
// google.rpc.BadRequest detail; field is the path in the request
// ("tenant.rate_limit.burst").
func invalid(field, description string) error {
	st := status.New(codes.InvalidArgument, field+": "+description)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: field, Description: description},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// fieldPrefix matches the "field: description" form of the validation
// errors of packages tenant, schedule and bundle.
var fieldPrefix = regexp.MustCompile(`^([a-z_]+(?:\[[0-9]+\])?(?:\.[A-Za-z0-9_-]+(?:\[[0-9]+\])?)*(?:, [a-z_]+)*): (.*)$`)

// invalidErr turns a validation error into InvalidArgument. The field is
// taken from the error where it names one (bus token errors, "field: ..."
// errors), under the request path prefix ("tenant"); otherwise the error
// is reported against prefix itself.
func invalidErr(prefix string, err error) error {
	var tok *bus.TokenError
	if errors.As(err, &tok) {
		field := tok.Field
		if prefix != "" {
			field = prefix + "." + field
		}
		return invalid(field, err.Error())
	}
	msg := err.Error()
	if m := fieldPrefix.FindStringSubmatch(msg); m != nil {
		field := m[1]
		if prefix != "" {
			field = prefix + "." + field
		}
		return invalid(field, m[2])
	}
	return invalid(prefix, msg)
}

// conversionInvalid turns an error of package adminconv into
// InvalidArgument naming the request field, under the request path prefix
// ("source").
func conversionInvalid(prefix string, err error) error {
	var fe *adminconv.FieldError
	if errors.As(err, &fe) {
		return invalid(prefix+"."+fe.Field, fe.Reason)
	}
	return invalid(prefix, err.Error())
}

// required is InvalidArgument for a missing field.
func required(field string) error { return invalid(field, "required") }

// notFound is NotFound naming what is missing ("tenant acme").
func notFound(format string, args ...any) error {
	return status.Errorf(codes.NotFound, format+" does not exist", args...)
}

// storeErr maps the errors of tenantkv to status errors; what names the
// item ("tenant acme"). Status errors pass unchanged; anything else is
// Unavailable (the bus is down or slow) or the context's own error.
func storeErr(what string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err // already a status (nil included): a refusal of a Modify change
	}
	switch {
	case errors.Is(err, tenantkv.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s does not exist", what)
	case errors.Is(err, tenantkv.ErrExists):
		return status.Errorf(codes.AlreadyExists, "%s already exists", what)
	case errors.Is(err, tenantkv.ErrConflict):
		return status.Errorf(codes.FailedPrecondition, "%s was changed by someone else (revision conflict): read it again and retry", what)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: deadline exceeded", what)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: canceled", what)
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("%s: storage unavailable: %v", what, err))
}
