package b2

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/Backblaze/blazer/base"

	"github.com/b2cfs/b2cfs/core"
)

// action is what to do about a failed attempt.
type action int

const (
	fail    action = iota // give up with the error, classified
	retry                 // B2 did not apply the attempt: try again after a backoff
	reauth                // the account token is stale: authorise again, then try again
	unknown               // B2 may have applied the attempt: try again (only calls safe to repeat get this)
	done                  // the call succeeded after all
)

// apiError is a B2 error answer: blazer's, or one of this package's calls.
type apiError struct {
	status     int
	code, msg  string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.msg) }

// asAPI extracts status, code and Retry-After from any B2 error.
func asAPI(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, true
	}
	if st, code, msg := base.MsgCode(err); st != 0 {
		return &apiError{status: st, code: code, msg: msg, retryAfter: base.Backoff(err)}, true
	}
	return nil, false
}

// classify decides what to do about err from an attempt of call, and which
// core error it becomes if it is final; unsure says an earlier attempt of
// the same call may have been applied. This is the one place B2's errors
// are mapped.
//
// An attempt that may have reached B2 (the request was sent, then the
// connection broke or the deadline passed; 408; 5xx) has an unknown
// outcome. Uploads and copies are repeated anyway: each makes a new
// version, and a duplicate is an unreferenced version that the deleter or
// gc collects. A delete is repeated too, and its repeat's file_not_present
// then means the earlier attempt deleted it. b2_update_bucket and
// b2_finish_large_file are not repeated: a repeated update's 409 cannot be
// told from someone else's change, and a repeated finish fails once the
// first one finished. They fail at once with ErrUnknownOutcome, for the
// caller to resolve by reading back.
func classify(call string, err error, unsure bool) (action, error) {
	if errors.Is(err, errNoBucket) {
		return fail, err
	}
	ae, ok := asAPI(err)
	if !ok {
		if dialFailed(err) {
			// The connection was never made: B2 saw nothing.
			return retry, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, err)
		}
		return outcomeUnknown(call, err)
	}
	switch {
	case ae.status == http.StatusUnauthorized && call == "b2_authorize_account":
		return fail, fmt.Errorf("B2 refused the credentials: %s", ae.msg)
	case ae.status == http.StatusUnauthorized && (ae.code == "expired_auth_token" || ae.code == "bad_auth_token"):
		// The account token is stale (B2's expire after 24 hours, a
		// restarted B2 forgets them), or for uploads perhaps only the
		// upload token, which comes from the account token: authorise
		// again either way.
		return reauth, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, ae)
	case ae.status == http.StatusNotFound:
		return fail, fmt.Errorf("%w: %s: %s", core.ErrNotExist, call, ae.msg)
	case ae.status == http.StatusConflict && call == "b2_update_bucket":
		return fail, fmt.Errorf("%w: %s", core.ErrRevisionMismatch, ae.msg)
	case ae.status == http.StatusBadRequest && ae.code == "auth_token_limit":
		return retry, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, ae)
	case ae.status == http.StatusBadRequest && call == "b2_finish_large_file" && strings.Contains(ae.msg, "being finished"):
		// An earlier finish whose reply was lost is still assembling the
		// file: its outcome is not known yet.
		return outcomeUnknown(call, ae)
	case ae.status == http.StatusBadRequest && call == "b2_update_bucket":
		return fail, fmt.Errorf("%w: %s", core.ErrInfoRejected, ae.msg)
	case ae.status == http.StatusBadRequest && ae.code == "file_not_present":
		if unsure && call == "b2_delete_file_version" {
			return done, nil
		}
		return fail, fmt.Errorf("%w: %s: %s", core.ErrNotExist, call, ae.msg)
	case ae.status == http.StatusTooManyRequests:
		return retry, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, ae)
	case ae.status == http.StatusRequestTimeout || ae.status >= 500:
		return outcomeUnknown(call, ae)
	}
	return fail, fmt.Errorf("%s: %v", call, ae)
}

// outcomeUnknown classifies an attempt of call that B2 may have applied.
func outcomeUnknown(call string, err error) (action, error) {
	if call == "b2_update_bucket" || call == "b2_finish_large_file" {
		return fail, fmt.Errorf("%w (%w): %s: %w", core.ErrUnknownOutcome, core.ErrUnavailable, call, err)
	}
	return unknown, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, err)
}

// dialFailed reports whether err is a failure to connect, before anything
// was sent.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// errCode is the B2 error code of err for metrics: "" for none, "network"
// for transport errors and deadlines.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	if ae, ok := asAPI(err); ok {
		if ae.code != "" {
			return ae.code
		}
		return fmt.Sprint(ae.status)
	}
	return "network"
}
