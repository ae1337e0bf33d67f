package b2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/b2cfs/b2cfs/core"
)

// retrier is the api that makes the calls of another api (direct) under
// a Store's retry policy, each call one backoff.Retry:
//
//   - every attempt has a deadline, and is cut short when B2 is declared
//     unreachable (health); while it is, a call fails at once;
//   - classify decides about each failed attempt: a call is repeated only
//     when B2 did not apply the attempt or a repeat is harmless, and after
//     a stale token it authorises again first;
//   - the waits between attempts grow exponentially with jitter, or are
//     B2's Retry-After;
//   - a call ends after Config.Attempts tries, or once B2 has not answered
//     it, nor moved its bytes, for Config.Timeout.
//
// Its methods keep the contracts of the api's and return core's errors.
// Every attempt is reported to Config.Observe and every repeat logged at
// debug level. Safe for concurrent use.
type retrier struct {
	next   api
	cfg    Config // Timeout, CallTimeout, Attempts, Observe, Logger
	health *health

	// auth is held by the one re-authorisation under way: a channel, not
	// a mutex, so that a caller waiting for it stops when its context
	// ends, and a test's bubble of simulated time sees it wait (the
	// holder may be waiting out a backoff).
	auth chan struct{}
	gen  atomic.Int64 // authorisations made: an attempt's token is its generation's
}

// The waits between the attempts of a call: from firstWait, doubling up
// to maxWait, each plus up to half of it again, so that calls that failed
// together do not come back together; B2's Retry-After instead, up to
// maxRetryAfter; none after a new token, of which a call gets maxReauths
// without counting them as attempts. minAttempt is the least time left of
// a call's bound worth another attempt.
const (
	firstWait     = 100 * time.Millisecond
	maxWait       = 3 * time.Second
	maxRetryAfter = 10 * time.Second
	maxReauths    = 3
	minAttempt    = 200 * time.Millisecond
)

func newRetrier(next api, cfg Config, h *health) *retrier {
	return &retrier{next: next, cfg: cfg, health: h, auth: make(chan struct{}, 1)}
}

func (r *retrier) authorizeAccount(ctx context.Context) error {
	if err := r.do(ctx, "b2_authorize_account", r.next.authorizeAccount); err != nil {
		return err
	}
	r.gen.Add(1)
	return nil
}

// reauthorize authorises again, once for all the attempts that found the
// token of generation gen stale.
func (r *retrier) reauthorize(ctx context.Context, gen int64) error {
	select {
	case r.auth <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.auth }()
	if r.gen.Load() != gen {
		return nil
	}
	return r.authorizeAccount(ctx)
}

func (r *retrier) listBuckets(ctx context.Context) (core.BucketInfo, error) {
	return run(ctx, r, "b2_list_buckets", r.cfg.CallTimeout, func(ctx context.Context, _ *watchdog) (core.BucketInfo, error) {
		return r.next.listBuckets(ctx)
	})
}

// updateBucket's attempt waits Timeout for the answer, not CallTimeout:
// one cut short has an unknown outcome, which costs reading the bucket
// back.
func (r *retrier) updateBucket(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	return run(ctx, r, "b2_update_bucket", r.cfg.Timeout, func(ctx context.Context, _ *watchdog) (core.BucketInfo, error) {
		return r.next.updateBucket(ctx, rev, info)
	})
}

// uploadFile's attempt ends after Timeout without a byte moving, then
// after the budget of its size once the data is sent.
func (r *retrier) uploadFile(ctx context.Context, name string, data io.ReaderAt, size int64, info map[string]string) (core.FileInfo, error) {
	return run(ctx, r, "b2_upload_file", r.cfg.Timeout, func(ctx context.Context, wd *watchdog) (core.FileInfo, error) {
		defer r.health.transfer(size)()
		return r.next.uploadFile(ctx, name, wd.fed(data, size, r.budget(size)), size, info)
	})
}

func (r *retrier) startLargeFile(ctx context.Context, name string, size int64, info map[string]string) (largeFile, error) {
	return run(ctx, r, "b2_start_large_file", r.cfg.CallTimeout, func(ctx context.Context, _ *watchdog) (largeFile, error) {
		return r.next.startLargeFile(ctx, name, size, info)
	})
}

// uploadPart's attempt has uploadFile's deadlines.
func (r *retrier) uploadPart(ctx context.Context, u *partURL, lf largeFile, part int, data io.ReaderAt, off, n int64) (string, error) {
	return run(ctx, r, "b2_upload_part", r.cfg.Timeout, func(ctx context.Context, wd *watchdog) (string, error) {
		defer r.health.transfer(n)()
		return r.next.uploadPart(ctx, u, lf, part, wd.fed(data, off+n, r.budget(n)), off, n)
	})
}

// finishLargeFile's attempt waits the budget of the file's size: B2
// assembles the parts meanwhile. It is not repeated after an attempt
// that B2 may have applied (see classify).
func (r *retrier) finishLargeFile(ctx context.Context, lf largeFile, sums map[int]string) (core.FileInfo, error) {
	return run(ctx, r, "b2_finish_large_file", r.budget(lf.size), func(ctx context.Context, _ *watchdog) (core.FileInfo, error) {
		defer r.health.transfer(lf.size)()
		return r.next.finishLargeFile(ctx, lf, sums)
	})
}

func (r *retrier) getFileInfo(ctx context.Context, lf largeFile) (core.FileInfo, bool, error) {
	type state struct {
		fi       core.FileInfo
		finished bool
	}
	st, err := run(ctx, r, "b2_get_file_info", r.cfg.CallTimeout, func(ctx context.Context, _ *watchdog) (state, error) {
		fi, finished, err := r.next.getFileInfo(ctx, lf)
		return state{fi, finished}, err
	})
	return st.fi, st.finished, err
}

// cancelLargeFile cleans up after a failed upload: it is tried once,
// within Timeout even if ctx ended, and its error is not classified.
func (r *retrier) cancelLargeFile(ctx context.Context, lf largeFile) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	defer cancel()
	return r.next.cancelLargeFile(ctx, lf)
}

// downloadFileByName's attempt waits CallTimeout for the answer; then the
// body fails once no byte arrives for Timeout, or B2 is declared
// unreachable.
func (r *retrier) downloadFileByName(ctx context.Context, name string, off, n int64) (io.ReadCloser, core.FileInfo, error) {
	type answer struct {
		rc io.ReadCloser
		fi core.FileInfo
	}
	a, err := run(ctx, r, "b2_download_file_by_name", r.cfg.CallTimeout, func(actx context.Context, _ *watchdog) (answer, error) {
		// The body outlives the attempt: it is read later, under ctx.
		// Until the answer comes the attempt's deadline applies too.
		bctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(actx, cancel)
		rc, fi, err := r.next.downloadFileByName(bctx, name, off, n)
		if !stop() {
			err = errors.Join(err, actx.Err()) // the attempt ended as the answer came
		}
		if err != nil {
			if rc != nil {
				rc.Close()
			}
			cancel()
			return answer{}, err
		}
		return answer{newIdleReader(rc, r.cfg.Timeout, cancel, r.health), fi}, nil
	})
	return a.rc, a.fi, err
}

func (r *retrier) headFileByName(ctx context.Context, name string) (core.FileInfo, error) {
	return run(ctx, r, "b2_download_file_by_name", r.cfg.CallTimeout, func(ctx context.Context, _ *watchdog) (core.FileInfo, error) {
		return r.next.headFileByName(ctx, name)
	})
}

func (r *retrier) copyFile(ctx context.Context, srcID, dst string) (core.FileInfo, error) {
	return run(ctx, r, "b2_copy_file", r.cfg.CallTimeout, func(ctx context.Context, _ *watchdog) (core.FileInfo, error) {
		return r.next.copyFile(ctx, srcID, dst)
	})
}

func (r *retrier) listFileNames(ctx context.Context, prefix, start string) ([]core.FileInfo, string, error) {
	type page struct {
		files []core.FileInfo
		next  string
	}
	p, err := run(ctx, r, "b2_list_file_names", r.cfg.CallTimeout, func(ctx context.Context, _ *watchdog) (page, error) {
		files, next, err := r.next.listFileNames(ctx, prefix, start)
		return page{files, next}, err
	})
	return p.files, p.next, err
}

func (r *retrier) deleteFileVersion(ctx context.Context, name, id string) error {
	return r.do(ctx, "b2_delete_file_version", func(ctx context.Context) error {
		return r.next.deleteFileVersion(ctx, name, id)
	})
}

// do runs a call that returns only an error and moves no data.
func (r *retrier) do(ctx context.Context, call string, f func(context.Context) error) error {
	_, err := run(ctx, r, call, r.cfg.CallTimeout, func(ctx context.Context, _ *watchdog) (struct{}, error) {
		return struct{}{}, f(ctx)
	})
	return err
}

// budget is the wait for the answer to a call that makes B2 handle n bytes
// (an upload's, once its body is sent; a large file's finish, which
// assembles its parts): CallTimeout plus one second per MiB.
func (r *retrier) budget(n int64) time.Duration {
	return r.cfg.CallTimeout + time.Duration(n>>20)*time.Second
}

// run makes call through op until an attempt succeeds, one fails for good,
// Attempts tries are spent, ctx ends, B2 is declared unreachable (the
// attempt under way is cut short, and a call made meanwhile fails at
// once), or B2 has not answered the call, nor moved its bytes, for Timeout
// (or idle, if longer). Each attempt ends when it gets no answer for idle:
// its watchdog, which op feeds while bytes move, stands for its deadline.
// An attempt that ctx or an outage ended is classified like any other, so
// a call that may have been applied reports an unknown outcome rather than
// only a cancellation. On an error the value is T's zero value, and on
// classify's done too.
func run[T any](ctx context.Context, r *retrier, call string, idle time.Duration, op func(context.Context, *watchdog) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err // nothing sent
	}
	p := newPolicy(r, call, idle)
	v, err := backoff.Retry(ctx, func() (T, error) {
		actx, err := p.begin(ctx)
		if err != nil {
			return zero, backoff.Permanent(err)
		}
		v, err := op(actx, p.wd)
		if err = p.end(ctx, err); err != nil {
			return zero, err
		}
		return v, nil
	}, backoff.WithBackOff(p), backoff.WithNotify(p.notify),
		// The bound is on the time without an answer, not since the
		// first attempt: p's NextBackOff keeps it.
		backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		return v, nil
	case p.outOfTime:
		err = fmt.Errorf("%w (no answer from B2 for %v)", err, p.bound.Round(time.Second))
	case ctx.Err() != nil && err == context.Cause(ctx):
		err = ctx.Err() // what bazil turns into EINTR, should ctx have a cause
	}
	return zero, err
}

// policy is one call's retry policy: the state its attempts share, and
// the backoff.BackOff of its backoff.Retry. Its methods are called by the
// goroutine of that call, apart from the watchdog's feeding of last.
type policy struct {
	r           *retrier
	call        string
	idle, bound time.Duration
	last        atomic.Int64 // when B2 last answered the call or moved its bytes (health's clock)
	exp         backoff.ExponentialBackOff

	sent      int           // attempts begun
	tries     int           // attempts that count towards Attempts
	reauths   int           // new tokens got
	unsure    bool          // an attempt may have been applied
	wait      time.Duration // what the last attempt asked to wait; < 0: the exponential backoff
	outOfTime bool          // the bound left no time for another attempt

	// The attempt under way:
	gen     int64 // the generation of its token
	wd      *watchdog
	actx    context.Context
	cancel  context.CancelCauseFunc
	stopCut func() bool // stops the cut at an outage
	start   time.Time
}

func newPolicy(r *retrier, call string, idle time.Duration) *policy {
	p := &policy{r: r, call: call, idle: idle, bound: max(r.cfg.Timeout, idle), wait: -1,
		// ExponentialBackOff spreads a wait RandomizationFactor either
		// side of its interval: 1.25 b ± 20 % is [b, 1.5 b].
		exp: backoff.ExponentialBackOff{InitialInterval: firstWait * 5 / 4, RandomizationFactor: 0.2,
			Multiplier: 2, MaxInterval: maxWait * 5 / 4}}
	p.last.Store(r.health.clock.now())
	return p
}

// left is how much of the call's bound is left.
func (p *policy) left() time.Duration {
	return p.bound - p.r.health.clock.since(p.last.Load())
}

// begin starts an attempt and returns its context, or an error if B2 is
// unreachable.
func (p *policy) begin(ctx context.Context) (context.Context, error) {
	down, err := p.r.health.check()
	if err != nil {
		if p.unsure {
			_, err = outcomeUnknown(p.call, err)
		}
		return nil, fmt.Errorf("%s: %w", p.call, err)
	}
	p.sent++
	p.gen = p.r.gen.Load()
	actx, cancel := context.WithCancelCause(ctx)
	p.wd = newWatchdog(min(p.idle, max(p.left(), 0)), cancel, &p.last, p.r.health)
	p.stopCut = context.AfterFunc(down, func() { cancel(errDown) })
	p.actx, p.cancel, p.start = actx, cancel, time.Now()
	return actx, nil
}

// end ends the attempt that returned err, records its outcome (Observe,
// health) and classifies it: it returns nil if the call succeeded, an
// error wrapped by backoff.Permanent if the call is over, else the error
// of an attempt worth repeating, after authorising again if its token was
// stale.
func (p *policy) end(ctx context.Context, err error) error {
	silent := context.Cause(p.actx) == errNoAnswer
	p.stopCut()
	p.wd.stop()
	p.cancel(nil)
	h := p.r.health
	if p.r.cfg.Observe != nil {
		p.r.cfg.Observe(p.call, Class(p.call), errCode(err), time.Since(p.start))
	}
	if _, isAPI := asAPI(err); err == nil || isAPI {
		h.answered()
		p.last.Store(h.clock.now())
	}
	switch {
	case err == nil:
		return nil
	case dialFailed(err):
		h.refused(err)
	case silent:
		h.silent()
	}
	act, cerr := classify(p.call, err, p.unsure)
	switch {
	case act == done:
		return nil
	case act == fail:
		return backoff.Permanent(cerr)
	case ctx.Err() != nil:
		return backoff.Permanent(ctx.Err())
	}
	p.unsure = p.unsure || act == unknown
	if p.tries++; act == reauth && p.reauths < maxReauths {
		p.tries-- // a new token is not a failed attempt, but only a few are allowed
	}
	if p.tries >= p.r.cfg.Attempts {
		return backoff.Permanent(fmt.Errorf("%w (gave up after %d attempts)", cerr, p.tries))
	}
	p.wait = -1
	if ae, ok := asAPI(err); ok && ae.retryAfter > 0 {
		p.wait = min(ae.retryAfter, maxRetryAfter)
	}
	if act == reauth {
		p.reauths++
		if err := p.r.reauthorize(ctx, p.gen); err != nil {
			err = fmt.Errorf("%w: re-authorising: %v", core.ErrUnavailable, err)
			if p.unsure {
				_, err = outcomeUnknown(p.call, err) // an earlier attempt may have been applied
			}
			return backoff.Permanent(err)
		}
		p.wait = 0
	}
	return cerr
}

// NextBackOff is the wait before the next attempt, or backoff.Stop when
// the call's bound leaves no time for an attempt after it.
func (p *policy) NextBackOff() time.Duration {
	wait := p.exp.NextBackOff() // grows even when the attempt asked otherwise
	if p.wait >= 0 {
		wait = p.wait
	}
	if p.left() < wait+minAttempt {
		p.outOfTime = true
		return backoff.Stop
	}
	return wait
}

// Reset starts the exponential backoff over.
func (p *policy) Reset() { p.exp.Reset() }

// notify logs a failed attempt that is about to be repeated.
func (p *policy) notify(err error, wait time.Duration) {
	p.r.cfg.Logger.Debug("B2 call failed; trying again", "call", p.call, "attempt", p.sent,
		"wait", wait.Round(time.Millisecond).String(), "err", err.Error())
}

// errNoAnswer is the cause of an attempt that its watchdog ended.
var errNoAnswer = errors.New("no answer from B2 within the attempt's deadline")

// watchdog ends an attempt that B2 has not answered, nor moved bytes for,
// within its idle time. Transfers feed it as their data is read.
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
	w.last.Store(w.h.clock.now())
	w.h.progress()
}

func (w *watchdog) stop() { w.timer.Stop() }

// fed returns data as read by a transfer that sends it up to end: every
// read that moves bytes feeds w, and once the bytes before end are read B2
// has at least answer to store them and reply.
func (w *watchdog) fed(data io.ReaderAt, end int64, answer time.Duration) io.ReaderAt {
	return fedReaderAt{data, end, w, answer}
}

type fedReaderAt struct {
	r      io.ReaderAt
	end    int64
	wd     *watchdog
	answer time.Duration
}

func (r fedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	if n > 0 {
		r.wd.feed()
	}
	if off+int64(n) >= r.end {
		r.wd.timer.Reset(max(r.wd.idle, r.answer))
	}
	return n, err
}

// idleReader is a download's body: it fails when Read makes no progress
// for idle, or B2 is declared unreachable, and tells health of the bytes
// that arrive.
type idleReader struct {
	rc     io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelFunc // ends the body's request
	h      *health
}

func newIdleReader(rc io.ReadCloser, idle time.Duration, cancel context.CancelFunc, h *health) *idleReader {
	stopOutage := context.AfterFunc(h.outage(), cancel)
	return &idleReader{rc: rc, idle: idle, h: h, timer: time.AfterFunc(idle, cancel),
		cancel: func() { stopOutage(); cancel() }}
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.timer.Reset(r.idle)
	if n > 0 {
		r.h.progress()
		r.h.answered()
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: download broke off: %v", core.ErrUnavailable, err)
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	r.cancel()
	return r.rc.Close()
}
