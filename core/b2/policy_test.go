package b2

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/b2cfs/b2cfs/core"
)

func testRetrier(next api, attempts int) *retrier {
	cfg := Config{Timeout: time.Minute, CallTimeout: time.Second, Attempts: attempts, Logger: slog.New(slog.DiscardHandler)}
	h := newHealth(func(context.Context) error { return nil }, cfg.Logger)
	return newRetrier(next, cfg, h)
}

func TestPolicyWaits(t *testing.T) {
	// Exponential from 100 ms to 3 s, each plus up to half again; B2's
	// Retry-After (at most 10 s) and a new token (none) instead.
	p := newPolicy(testRetrier(nil, 8), "b2_list_buckets", time.Second)
	p.Reset()
	for i, b := range []time.Duration{100, 200, 400, 800, 1600, 3000, 3000} {
		b *= time.Millisecond
		if w := p.NextBackOff(); w < b || w > b*3/2 {
			t.Errorf("wait %d: %v, want [%v, %v]", i, w, b, b*3/2)
		}
	}
	for _, tc := range []struct{ asked, want time.Duration }{
		{5 * time.Second, 5 * time.Second},
		{0, 0},
	} {
		p.wait = tc.asked
		if w := p.NextBackOff(); w != tc.want {
			t.Errorf("asked for %v: waits %v", tc.asked, w)
		}
	}
	// Once the bound leaves no time for an attempt after the wait, the
	// call stops.
	p.wait = -1
	p.last.Store(p.r.health.clock.now() - int64(time.Minute-time.Second))
	if w := p.NextBackOff(); w != backoff.Stop || !p.outOfTime {
		t.Errorf("past the bound: waits %v", w)
	}
}

// fakeAPI answers authorizeAccount; the calls tested go through run with
// their own op.
type fakeAPI struct {
	api
	auths atomic.Int32
}

func (f *fakeAPI) authorizeAccount(context.Context) error { f.auths.Add(1); return nil }

func TestRun(t *testing.T) {
	expired := &apiError{status: 401, code: "expired_auth_token"}
	for _, tc := range []runCase{
		{name: "429-then-ok", call: "b2_list_buckets", errs: []error{&apiError{status: 429}, &apiError{status: 503}}, sent: 3},
		{name: "attempts-spent", call: "b2_list_buckets", attempts: 3,
			errs: []error{&apiError{status: 500}, &apiError{status: 500}, &apiError{status: 500}, nil},
			sent: 3, want: []error{core.ErrUnavailable}, text: "gave up after 3 attempts"},
		{name: "update-not-repeated", call: "b2_update_bucket", errs: []error{&apiError{status: 500}},
			sent: 1, want: []error{core.ErrUnknownOutcome, core.ErrUnavailable}},
		{name: "conflict", call: "b2_update_bucket", errs: []error{&apiError{status: 409}},
			sent: 1, want: []error{core.ErrRevisionMismatch}},
		{name: "not-found", call: "b2_download_file_by_name", errs: []error{&apiError{status: 404}},
			sent: 1, want: []error{core.ErrNotExist}},
		{name: "delete-lost-reply", call: "b2_delete_file_version",
			errs: []error{errors.New("connection reset"), &apiError{status: 400, code: "file_not_present"}, errors.New("not sent")}, sent: 2},
		{name: "delete-missing", call: "b2_delete_file_version", errs: []error{&apiError{status: 400, code: "file_not_present"}},
			sent: 1, want: []error{core.ErrNotExist}},
		{name: "stale-token", call: "b2_list_buckets", attempts: 2, errs: []error{expired, expired, expired}, sent: 4, auths: 3},
		{name: "stale-tokens-count-after-three", call: "b2_list_buckets", attempts: 2,
			errs: []error{expired, expired, expired, expired, expired, nil}, sent: 5, auths: 4,
			want: []error{core.ErrUnavailable}, text: "gave up after 2 attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) { synctest.Test(t, func(t *testing.T) { testRunCase(t, tc) }) })
	}
}

// runCase is one case of TestRun.
type runCase struct {
	name     string
	call     string
	errs     []error // the attempts' errors, then success
	attempts int
	sent     int
	auths    int32
	want     []error // errors.Is targets; none: success
	text     string
}

// testRunCase runs one case, in simulated time: its backoffs take none.
func testRunCase(t *testing.T, tc runCase) {
	f := &fakeAPI{}
	attempts := tc.attempts
	if attempts == 0 {
		attempts = 8
	}
	r := testRetrier(f, attempts)
	var observed atomic.Int32
	r.cfg.Observe = func(call, class, code string, d time.Duration) { observed.Add(1) }
	sent := 0
	v, err := run(context.Background(), r, tc.call, time.Second, func(context.Context, *watchdog) (int, error) {
		sent++
		if sent <= len(tc.errs) && tc.errs[sent-1] != nil {
			return sent, tc.errs[sent-1]
		}
		return sent, nil
	})
	// Every attempt is observed, the authorisations' too.
	if sent != tc.sent || observed.Load() != int32(sent)+f.auths.Load() || f.auths.Load() != tc.auths {
		t.Errorf("%d attempts, %d authorisations, %d observed; want %d, %d", sent, f.auths.Load(), observed.Load(), tc.sent, tc.auths)
	}
	if len(tc.want) == 0 {
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if tc.call != "b2_delete_file_version" && v != sent {
			t.Errorf("value %d, want the last attempt's, %d", v, sent)
		}
		return
	}
	for _, w := range tc.want {
		if !errors.Is(err, w) {
			t.Errorf("run: %v, want %v", err, w)
		}
	}
	if !strings.Contains(err.Error(), tc.text) || v != 0 {
		t.Errorf("run: %v, %d; want %q and no value", err, v, tc.text)
	}
}

func TestRunRetryAfter(t *testing.T) { synctest.Test(t, testRunRetryAfter) }

func testRunRetryAfter(t *testing.T) {
	r := testRetrier(&fakeAPI{}, 8)
	sent := 0
	start := time.Now()
	_, err := run(context.Background(), r, "b2_list_buckets", time.Second, func(context.Context, *watchdog) (struct{}, error) {
		if sent++; sent == 1 {
			return struct{}{}, &apiError{status: 429, retryAfter: time.Second}
		}
		return struct{}{}, nil
	})
	if d := time.Since(start); err != nil || d < time.Second {
		t.Errorf("after a Retry-After of 1 s: %v after %v", err, d)
	}
}

func TestRunContextEnded(t *testing.T) {
	// A call that may have been applied reports so even when ctx ended;
	// others report ctx's error.
	for _, tc := range []struct {
		call string
		want error
	}{
		{"b2_update_bucket", core.ErrUnknownOutcome},
		{"b2_list_buckets", context.Canceled},
	} {
		r := testRetrier(&fakeAPI{}, 8)
		ctx, cancel := context.WithCancel(context.Background())
		_, err := run(ctx, r, tc.call, time.Second, func(ctx context.Context, _ *watchdog) (struct{}, error) {
			cancel()
			<-ctx.Done()
			return struct{}{}, ctx.Err()
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s after ctx ended: %v, want %v", tc.call, err, tc.want)
		}
		if tc.call == "b2_list_buckets" && err != context.Canceled {
			t.Errorf("%s after ctx ended: %v, want context.Canceled itself", tc.call, err)
		}
	}
}

// flakyAuth answers its first authorisation with a 503.
type flakyAuth struct {
	api
	auths atomic.Int32
}

func (f *flakyAuth) authorizeAccount(context.Context) error {
	if f.auths.Add(1) == 1 {
		return &apiError{status: 503}
	}
	return nil
}

// TestReauthorizeQueued: calls whose token went stale together wait for
// the one re-authorisation under way, which waits out a backoff of its own
// (B2 answered it 503 first), and then go on with its token; a waiting
// call whose context ends stops waiting. A waiter blocked on a mutex would
// stop the bubble's time while the holder waits on it: this test (and a
// run of TestIncrementsUnderFaults under load) then hung.
func TestReauthorizeQueued(t *testing.T) { synctest.Test(t, testReauthorizeQueued) }

func testReauthorizeQueued(t *testing.T) {
	f := &flakyAuth{}
	r := testRetrier(f, 8)
	gen := r.gen.Load()
	errs := make(chan error, 4)
	go func() { errs <- r.reauthorize(context.Background(), gen) }()
	synctest.Wait() // it holds the re-authorisation, backing off after the 503
	for range 2 {
		go func() { errs <- r.reauthorize(context.Background(), gen) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := r.reauthorize(ctx, gen); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter whose context ended: %v, want its deadline", err)
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("re-authorisation: %v", err)
		}
	}
	if n, g := f.auths.Load(), r.gen.Load(); n != 2 || g != gen+1 {
		t.Errorf("%d authorisations, generation %d; want 2 (a 503, then one for all) and %d", n, g, gen+1)
	}
}
