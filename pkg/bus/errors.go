package bus

import (
	"errors"
	"time"
)

// permanentError marks a failure that no retry can fix (bad input, a
// rejected request). The consumer loop dead-letters it at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// retryableError marks a transient failure, optionally with the delay the
// other side asked for (Retry-After).
type retryableError struct {
	err   error
	after time.Duration
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// Retryable marks err as transient. Errors not marked either way are treated
// as retryable by the consumer loop. Retryable(nil) is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err}
}

// RetryAfter marks err as transient and asks for the next attempt no sooner than d.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err, after: d}
}

// IsPermanent reports whether err (or an error it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryDelay returns the delay requested by a RetryAfter error, if any.
func retryDelay(err error) (time.Duration, bool) {
	var r *retryableError
	if errors.As(err, &r) && r.after > 0 {
		return r.after, true
	}
	return 0, false
}

// dlqHeaderError carries headers for the dead letter its failure produces.
type dlqHeaderError struct {
	err    error
	header map[string]string
}

func (e *dlqHeaderError) Error() string { return e.err.Error() }
func (e *dlqHeaderError) Unwrap() error { return e.err }

// WithDeadLetterHeader adds a header to the dead letter that err produces
// if the message is dead-lettered (the flow-executor names the flows that
// failed, so a replay can run only those). It keeps err's marking
// (Permanent, Retryable). WithDeadLetterHeader(nil, ...) is nil.
func WithDeadLetterHeader(err error, key, value string) error {
	if err == nil {
		return nil
	}
	return &dlqHeaderError{err: err, header: map[string]string{key: value}}
}

// deadLetterHeaders collects the headers added with WithDeadLetterHeader
// along err's chain (the outermost wins).
func deadLetterHeaders(err error) map[string]string {
	out := map[string]string{}
	for err != nil {
		if h, ok := err.(*dlqHeaderError); ok {
			for k, v := range h.header {
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
		}
		err = errors.Unwrap(err)
	}
	return out
}
