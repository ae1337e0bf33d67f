package b2_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
)

// lossy is a transport that loses the replies to the first n calls named
// call after B2 has applied them, as a connection that breaks after the
// request went out.
type lossy struct {
	next http.RoundTripper
	call string
	n    atomic.Int32
}

func (l *lossy) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/"+l.call) && l.n.Add(-1) >= 0 {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset by peer (reply lost)")
	}
	return resp, err
}

// loseReplies returns a transport to the emulator at url that loses the
// replies to the first n calls named call.
func loseReplies(t testing.TB, url, call string, n int32) *lossy {
	l := &lossy{next: transport(t, url), call: call}
	l.n.Store(n)
	return l
}

func calls(srv *b2emu.Server, call string) int64 { return srv.Stats().Calls[call] }

func addInfo(t *testing.T, s *b2.Store, k, v string) (core.BucketInfo, map[string]string) {
	t.Helper()
	bi, err := s.BucketInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	info := map[string]string{k: v}
	for k, v := range bi.Info {
		info[k] = v
	}
	return bi, info
}

func TestUpdateUnknownOutcome(t *testing.T) {
	// An update whose outcome is unknown is never repeated: the repeat's
	// 409 would look like someone else's change.
	for _, tc := range []struct {
		name  string
		fault b2emu.Fault
		lost  bool
		cfg   b2.Config
		ctx   time.Duration
	}{
		{name: "reply-lost", lost: true},
		{name: "500", fault: b2emu.Fault{ErrorRate: 1, Status: 500}},
		{name: "503", fault: b2emu.Fault{ErrorRate: 1, Status: 503, RetryAfter: 1}},
		{name: "408", fault: b2emu.Fault{ErrorRate: 1, Status: 408}},
		{name: "attempt-deadline", fault: b2emu.Fault{Latency: time.Second}, cfg: b2.Config{Timeout: 300 * time.Millisecond}},
		{name: "ctx-ended", fault: b2emu.Fault{Latency: time.Second}, ctx: 300 * time.Millisecond},
	} {
		simRun(t, tc.name, func(t *testing.T) {
			srv, url := emulator(t, b2emu.Config{})
			cfg := tc.cfg
			if tc.lost {
				cfg.Transport = loseReplies(t, url, "b2_update_bucket", 1)
			}
			s := open(t, srv, url, cfg)
			bi, info := addInfo(t, s, "k", "v")
			srv.SetFault("b2_update_bucket", tc.fault)
			srv.ResetStats()
			ctx := testCtx(t)
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			_, err := s.UpdateBucketInfo(ctx, bi.Revision, info)
			if !errors.Is(err, core.ErrUnknownOutcome) || !errors.Is(err, core.ErrUnavailable) {
				t.Fatalf("update: %v, want ErrUnknownOutcome and ErrUnavailable", err)
			}
			if tc.ctx > 0 && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("update after ctx ended: %v, want it to wrap ctx's error", err)
			}
			if tc.fault.Latency > 0 {
				time.Sleep(tc.fault.Latency + 300*time.Millisecond) // the emulator counts a call once answered
			}
			if n := calls(srv, "b2_update_bucket"); n != 1 {
				t.Errorf("b2_update_bucket sent %d times, want 1", n)
			}
			if tc.lost {
				// B2 did apply it: a repeat would have been refused.
				if now, err := s.BucketInfo(testCtx(t)); err != nil || now.Revision != bi.Revision+1 || now.Info["k"] != "v" {
					t.Errorf("bucket after the lost reply: %+v %v, want the update applied", now, err)
				}
			}
			t.Logf("%v", err)
		})
	}
}

// eventually retries f until it succeeds, for at most 30 s.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for err := f(); err != nil; err = f() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUpdateRepeatsWhenNotApplied(t *testing.T) {
	// 429 and stale tokens are answered before B2 applies anything, and a
	// refused connection sends nothing: those are repeated.
	for _, tc := range []struct {
		name  string
		fault b2emu.Fault
	}{
		{"429", b2emu.Fault{ErrorRate: 1, Status: 429, MaxConsecutive: 2}},
		{"expired-token", b2emu.Fault{ErrorRate: 1, Status: 401, Code: "expired_auth_token", MaxConsecutive: 2}},
		{"bad-token", b2emu.Fault{ErrorRate: 1, Status: 401, Code: "bad_auth_token", MaxConsecutive: 2}},
		{"auth-token-limit", b2emu.Fault{ErrorRate: 1, Status: 400, Code: "auth_token_limit", MaxConsecutive: 2}},
	} {
		simRun(t, tc.name, func(t *testing.T) {
			srv, url := emulator(t, b2emu.Config{})
			s := open(t, srv, url, b2.Config{})
			bi, info := addInfo(t, s, "k", "v")
			srv.SetFault("b2_update_bucket", tc.fault)
			srv.ResetStats()
			nb, err := s.UpdateBucketInfo(testCtx(t), bi.Revision, info)
			if err != nil || nb.Info["k"] != "v" {
				t.Fatalf("update: %+v %v", nb, err)
			}
			if n := calls(srv, "b2_update_bucket"); n != 3 {
				t.Errorf("b2_update_bucket sent %d times, want 3", n)
			}
		})
	}
	simRun(t, "connection-refused", func(t *testing.T) {
		srv, url := emulator(t, b2emu.Config{})
		tr := transport(t, url)
		s := open(t, srv, url, b2.Config{Transport: tr})
		bi, info := addInfo(t, s, "k", "v")
		srv.Close()
		// A request sent on a kept-alive connection that the server has
		// closed meanwhile may have reached it; a new connection cannot
		// be made at all. B2 is then unreachable: the update fails at
		// once, and its outcome is known: not applied.
		tr.CloseIdleConnections()
		_, err := s.UpdateBucketInfo(testCtx(t), bi.Revision, info)
		if !errors.Is(err, core.ErrUnavailable) || errors.Is(err, core.ErrUnknownOutcome) {
			t.Fatalf("update with B2 refusing connections: %v, want ErrUnavailable and a known outcome", err)
		}
		relisten(t, srv, url)
		eventually(t, func() error {
			nb, err := s.UpdateBucketInfo(testCtx(t), bi.Revision, info)
			if err == nil && nb.Info["k"] != "v" {
				err = fmt.Errorf("bucket info %v", nb.Info)
			}
			return err
		})
	})
	simRun(t, "conflict", func(t *testing.T) {
		srv, url := emulator(t, b2emu.Config{})
		s := open(t, srv, url, b2.Config{})
		bi, info := addInfo(t, s, "k", "v")
		if _, err := s.UpdateBucketInfo(testCtx(t), bi.Revision, info); err != nil {
			t.Fatal(err)
		}
		_, err := s.UpdateBucketInfo(testCtx(t), bi.Revision, info)
		if !errors.Is(err, core.ErrRevisionMismatch) || errors.Is(err, core.ErrUnknownOutcome) {
			t.Fatalf("stale update: %v, want only ErrRevisionMismatch", err)
		}
	})
}

func TestFinishLargeFileLost(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10_000) // 3 parts
	simRun(t, "reply-lost", func(t *testing.T) {
		// B2 finished the file; the repeat would fail. The file is read
		// back instead.
		srv, url := emulator(t, b2emu.Config{MinPartSize: 1000})
		s := open(t, srv, url, b2.Config{PartSize: 64 << 10, Transport: loseReplies(t, url, "b2_finish_large_file", 1)})
		srv.ResetStats()
		fi, err := s.Upload(testCtx(t), "big", bytes.NewReader(data), int64(len(data)), "g")
		if err != nil {
			t.Fatal(err)
		}
		st := srv.Stats().Calls
		if st["b2_finish_large_file"] != 1 || st["b2_get_file_info"] != 1 {
			t.Errorf("calls %v, want one finish and one b2_get_file_info", st)
		}
		checkFile(t, s, "big", fi, data)
	})
	simRun(t, "not-applied", func(t *testing.T) {
		// A 503 may or may not have finished it; here it did not, so the
		// read-back finds it unfinished and finishes it again.
		srv, url := emulator(t, b2emu.Config{MinPartSize: 1000})
		s := open(t, srv, url, b2.Config{PartSize: 64 << 10})
		srv.SetFault("b2_finish_large_file", b2emu.Fault{ErrorRate: 1, Status: 503, MaxConsecutive: 1})
		srv.ResetStats()
		fi, err := s.Upload(testCtx(t), "big", bytes.NewReader(data), int64(len(data)), "g")
		if err != nil {
			t.Fatal(err)
		}
		st := srv.Stats().Calls
		if st["b2_finish_large_file"] != 2 || st["b2_get_file_info"] != 1 {
			t.Errorf("calls %v, want two finishes and one b2_get_file_info", st)
		}
		checkFile(t, s, "big", fi, data)
	})
}

func checkFile(t *testing.T, s *b2.Store, name string, fi core.FileInfo, data []byte) {
	t.Helper()
	rc, got, err := s.Download(testCtx(t), name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(b, data) || got.ID != fi.ID {
		t.Fatalf("%s: read %d bytes (%v), id %s, want %d bytes, id %s", name, len(b), err, got.ID, len(data), fi.ID)
	}
}

func TestDeleteLost(t *testing.T) { sim(t, testDeleteLost) }

func testDeleteLost(t *testing.T) {
	srv, url := emulator(t, b2emu.Config{})
	s := open(t, srv, url, b2.Config{Transport: loseReplies(t, url, "b2_delete_file_version", 1)})
	fi, err := s.Upload(testCtx(t), "f", strings.NewReader("x"), 1, "g")
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetStats()
	// The repeat answers file_not_present: the lost attempt deleted it.
	if err := s.Delete(testCtx(t), "f", fi.ID); err != nil {
		t.Fatalf("delete whose reply was lost: %v", err)
	}
	if n := calls(srv, "b2_delete_file_version"); n != 2 {
		t.Errorf("b2_delete_file_version sent %d times, want 2", n)
	}
	if _, err := s.Stat(testCtx(t), "f"); !errors.Is(err, core.ErrNotExist) {
		t.Errorf("stat after delete: %v", err)
	}
	// Without an unknown outcome, a missing version is still missing.
	if err := s.Delete(testCtx(t), "f", fi.ID); !errors.Is(err, core.ErrNotExist) {
		t.Errorf("delete of a deleted version: %v, want ErrNotExist", err)
	}
}

func TestCopyLost(t *testing.T) { sim(t, testCopyLost) }

func testCopyLost(t *testing.T) {
	srv, url := emulator(t, b2emu.Config{})
	s := open(t, srv, url, b2.Config{Transport: loseReplies(t, url, "b2_copy_file", 1)})
	src, err := s.Upload(testCtx(t), "src", strings.NewReader("data"), 4, "g")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := s.Copy(testCtx(t), "src", src.ID, "dst")
	if err != nil {
		t.Fatal(err)
	}
	if n := calls(srv, "b2_copy_file"); n != 2 {
		t.Errorf("b2_copy_file sent %d times, want 2", n)
	}
	st, err := s.Stat(testCtx(t), "dst")
	if err != nil || st.ID != fi.ID {
		t.Errorf("newest dst %+v %v, want the copy returned (%s)", st, err, fi.ID)
	}
}

// writeAll makes 30 uploads through s at once, every fifth a large file if
// large, and fails t for each that fails.
func writeAll(t *testing.T, s *b2.Store, large bool) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := []byte(strings.Repeat(fmt.Sprint(i), 100))
			if large && i%5 == 0 {
				data = bytes.Repeat(data, 1500) // above PartSize
			}
			if _, err := s.Upload(testCtx(t), fmt.Sprintf("w/%d", i), bytes.NewReader(data), int64(len(data)), "g"); err != nil {
				errs <- fmt.Errorf("write %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestWritesAcrossRestart(t *testing.T) {
	// A restarted B2 forgets every account and upload token: the writes
	// after it authorise again, once for all of them, and none fails.
	for _, large := range []bool{false, true} {
		simRun(t, fmt.Sprintf("large=%v", large), func(t *testing.T) {
			dir := t.TempDir()
			srv, url := emulator(t, b2emu.Config{Dir: dir, MinPartSize: 1000})
			s := open(t, srv, url, b2.Config{PartSize: 64 << 10})
			writeAll(t, s, large) // fills the pool of upload URLs
			srv.Close()
			srv2, err := b2emu.New(b2emu.Config{Dir: dir, MinPartSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			relisten(t, srv2, url)
			start := time.Now()
			writeAll(t, s, large)
			// One re-authorisation: blazer's and the bucket-info client's.
			if n := calls(srv2, "b2_authorize_account"); n != 2 {
				t.Errorf("b2_authorize_account called %d times after the restart, want 2", n)
			}
			t.Logf("30 writes after the restart in %v; calls %v", time.Since(start).Round(time.Millisecond), srv2.Stats().Calls)
		})
	}
}

func TestWritesAfterTokensExpire(t *testing.T) { sim(t, testWritesAfterTokensExpire) }

func testWritesAfterTokensExpire(t *testing.T) {
	// B2's tokens expire after 24 hours, here after 2 s: the same path.
	srv, url := emulator(t, b2emu.Config{TokenLifetime: 2 * time.Second, MinPartSize: 1000})
	s := open(t, srv, url, b2.Config{PartSize: 64 << 10})
	writeAll(t, s, true)
	time.Sleep(2100 * time.Millisecond)
	srv.ResetStats()
	writeAll(t, s, true)
	// At least one re-authorisation (more if the new tokens expired too
	// while writing).
	if n := calls(srv, "b2_authorize_account"); n < 2 {
		t.Errorf("b2_authorize_account called %d times after tokens expired, want 2 or more", n)
	}
}
