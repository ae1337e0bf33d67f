package b2

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/Backblaze/blazer/base"

	"github.com/b2cfs/b2cfs/core"
)

// action is what to do about a failed attempt.
type action int

const (
	fail   action = iota // give up with the error, classified
	retry                // try again after a backoff
	reauth               // authorise again, then try again
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

// classify decides what to do about err from call, and which core error it
// becomes if it is final. This is the one place B2's errors are mapped.
func classify(call string, err error) (action, error) {
	if errors.Is(err, errNoBucket) {
		return fail, err
	}
	ae, ok := asAPI(err)
	if !ok {
		// Transport errors and attempt deadlines: B2 may not have seen
		// the request, or may have; every call here is safe to repeat
		// (a repeated update_bucket fails its revision check).
		return retry, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, err)
	}
	switch {
	case ae.status == http.StatusUnauthorized && (call == "b2_upload_file" || call == "b2_upload_part"):
		// An upload token expired: the next attempt takes a new URL.
		return retry, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, ae)
	case ae.status == http.StatusUnauthorized && call == "b2_authorize_account":
		return fail, fmt.Errorf("B2 refused the credentials: %s", ae.msg)
	case ae.status == http.StatusUnauthorized && (ae.code == "expired_auth_token" || ae.code == "bad_auth_token"):
		return reauth, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, ae)
	case ae.status == http.StatusNotFound:
		return fail, fmt.Errorf("%w: %s: %s", core.ErrNotExist, call, ae.msg)
	case ae.status == http.StatusConflict && call == "b2_update_bucket":
		return fail, fmt.Errorf("%w: %s", core.ErrRevisionMismatch, ae.msg)
	case ae.status == http.StatusBadRequest && call == "b2_update_bucket":
		return fail, fmt.Errorf("%w: %s", core.ErrInfoRejected, ae.msg)
	case ae.status == http.StatusBadRequest && ae.code == "file_not_present":
		return fail, fmt.Errorf("%w: %s: %s", core.ErrNotExist, call, ae.msg)
	case ae.status == http.StatusRequestTimeout || ae.status == http.StatusTooManyRequests || ae.status >= 500:
		return retry, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, ae)
	case ae.status == http.StatusBadRequest && ae.code == "auth_token_limit":
		return retry, fmt.Errorf("%w: %s: %v", core.ErrUnavailable, call, ae)
	}
	return fail, fmt.Errorf("%s: %v", call, ae)
}

// retry runs f with a deadline of CallTimeout per attempt.
func (s *Store) retry(ctx context.Context, call string, f func(context.Context) error) error {
	return s.retryBudget(ctx, call, s.cfg.CallTimeout, f)
}

// budget is the attempt deadline for moving n bytes: CallTimeout plus one
// second per MiB (a floor of 1 MiB/s).
func (s *Store) budget(n int64) time.Duration {
	return s.cfg.CallTimeout + time.Duration(n>>20)*time.Second
}

// retryBudget runs f until it succeeds, fails for good, Attempts tries
// are spent or ctx ends. Each attempt gets its own deadline.
func (s *Store) retryBudget(ctx context.Context, call string, budget time.Duration, f func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	var last error
	reauths := 0
	for attempt := 1; ; attempt++ {
		sess := s.sess.Load()
		actx, cancel := context.WithTimeout(ctx, budget)
		start := time.Now()
		err := f(actx)
		cancel()
		if s.cfg.Observe != nil {
			s.cfg.Observe(call, Class(call), errCode(err), time.Since(start))
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		act, cerr := classify(call, err)
		last = cerr
		if act == fail || attempt >= s.cfg.Attempts {
			if act != fail {
				return fmt.Errorf("%w (gave up after %d attempts)", last, attempt)
			}
			return last
		}
		wait := backoff + rand.N(backoff/2)
		if ae, ok := asAPI(err); ok && ae.retryAfter > 0 {
			wait = min(ae.retryAfter, 10*time.Second)
		}
		backoff = min(2*backoff, 3*time.Second)
		if act == reauth && sess != nil {
			if err := s.reauthorize(ctx, sess); err != nil {
				return fmt.Errorf("%w: re-authorising: %v", core.ErrUnavailable, err)
			}
			// A new token is not a failed attempt, but only a few are
			// allowed per call.
			if reauths++; reauths <= 3 {
				attempt--
			}
			wait = 0
		}
		if call == "b2_upload_file" || call == "b2_upload_part" {
			s.dropURLs() // pooled upload URLs may share the failure (expired tokens)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
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
