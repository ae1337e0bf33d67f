package b2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
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

// retry runs f, a call whose attempts each get CallTimeout to be answered.
func (s *Store) retry(ctx context.Context, call string, f func(context.Context) error) error {
	return s.do(ctx, call, s.cfg.CallTimeout, func(ctx context.Context, _ *watchdog) error { return f(ctx) })
}

// do runs f until it succeeds, fails for good, Attempts tries are spent,
// ctx ends, B2 is declared unreachable (health: the attempt under way is
// cut short, and a call made meanwhile fails at once), or B2 has not
// answered the call, nor moved its bytes, for Timeout (or idle, if
// longer). Each attempt ends when it gets no answer for idle: its
// watchdog, which f feeds while bytes move, stands for its deadline. An
// attempt that ctx or an outage ended is classified like any other, so a
// call that may have been applied reports an unknown outcome rather than
// only a cancellation.
func (s *Store) do(ctx context.Context, call string, idle time.Duration, f func(context.Context, *watchdog) error) error {
	backoff := 100 * time.Millisecond
	reauths := 0
	unsure := false
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	bound := max(s.cfg.Timeout, idle)
	var last atomic.Int64 // when B2 last answered or moved bytes, in Unix ns
	last.Store(time.Now().UnixNano())
	left := func() time.Duration { return bound - time.Since(time.Unix(0, last.Load())) }
	for attempt := 1; ; attempt++ {
		down, err := s.health.check()
		if err != nil {
			if unsure {
				_, err = outcomeUnknown(call, err)
			}
			return fmt.Errorf("%s: %w", call, err)
		}
		sess := s.sess.Load()
		actx, cancel := context.WithCancelCause(ctx)
		wd := newWatchdog(min(idle, max(left(), 0)), cancel, &last, s.health)
		stopCut := context.AfterFunc(down, func() { cancel(errDown) })
		start := time.Now()
		err = f(actx, wd)
		silent := context.Cause(actx) == errNoAnswer
		stopCut()
		wd.stop()
		cancel(nil)
		if s.cfg.Observe != nil {
			s.cfg.Observe(call, Class(call), errCode(err), time.Since(start))
		}
		if _, isAPI := asAPI(err); err == nil || isAPI {
			s.health.answered()
			last.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil:
			return nil
		case dialFailed(err):
			s.health.refused(err)
		case silent:
			s.health.silent()
		}
		act, cerr := classify(call, err, unsure)
		switch {
		case act == done:
			return nil
		case act == fail:
			return cerr
		case ctx.Err() != nil:
			return ctx.Err()
		case attempt >= s.cfg.Attempts:
			return fmt.Errorf("%w (gave up after %d attempts)", cerr, attempt)
		}
		unsure = unsure || act == unknown
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
			s.dropURLs() // pooled upload URLs may share the failure
		}
		if left() < wait+minAttempt {
			return fmt.Errorf("%w (no answer from B2 for %v)", cerr, bound.Round(time.Second))
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

// minAttempt is the least time left of a call's bound worth another
// attempt.
const minAttempt = 200 * time.Millisecond

// errNoAnswer is the cause of an attempt that its watchdog ended.
var errNoAnswer = errors.New("no answer from B2 within the attempt's deadline")

// watchdog ends an attempt that B2 has not answered, nor moved bytes for,
// within its idle time. Transfers feed it as their bodies move.
type watchdog struct {
	idle  time.Duration
	timer *time.Timer
	last  *atomic.Int64 // the call's last progress
	h     *health
}

func newWatchdog(idle time.Duration, cancel context.CancelCauseFunc, last *atomic.Int64, h *health) *watchdog {
	return &watchdog{idle: idle, last: last, h: h, timer: time.AfterFunc(idle, func() { cancel(errNoAnswer) })}
}

// feed says bytes moved: the attempt has idle again from now.
func (w *watchdog) feed() {
	w.timer.Reset(w.idle)
	w.last.Store(time.Now().UnixNano())
	w.h.progress()
}

func (w *watchdog) stop() { w.timer.Stop() }

// fedReader is an upload's body: it feeds a watchdog on every read that
// moves bytes, and once the body is read gives B2 at least answer to
// store it and reply.
type fedReader struct {
	r      io.Reader
	wd     *watchdog
	answer time.Duration
}

func (r fedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.wd.feed()
	}
	if err == io.EOF {
		r.wd.timer.Reset(max(r.wd.idle, r.answer))
	}
	return n, err
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
