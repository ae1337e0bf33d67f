package b2_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// requests returns the paths b received, probes (b2_get_upload_url) apart.
func requests(b *b2emu.BlackHole) (calls []string, probes int) {
	for _, p := range b.Paths() {
		if strings.HasSuffix(p, "/b2_get_upload_url") {
			probes++
		} else {
			calls = append(calls, p)
		}
	}
	return calls, probes
}

// TestOutage: when B2 refuses connections, or accepts them and never
// answers, the call under way fails within Timeout, B2 is declared
// unreachable with one log line, calls made then fail at once without a
// request (probes apart), and B2's return is found within a probe period
// with one more line.
func TestOutage(t *testing.T) {
	for _, mode := range []string{"refused", "black-hole"} {
		simRun(t, mode, func(t *testing.T) {
			srv, url := emulator(t, b2emu.Config{})
			addr := strings.TrimPrefix(url, "http://")
			var log storetest.SyncBuffer
			const timeout = 4 * time.Second
			tr := transport(t, url)
			s := open(t, srv, url, b2.Config{Timeout: timeout, Transport: tr,
				Logger: slog.New(slog.NewTextHandler(&log, nil))})
			ctx := testCtx(t)
			if _, err := s.BucketInfo(ctx); err != nil {
				t.Fatal(err)
			}

			srv.Close()
			var hole *b2emu.BlackHole
			if mode == "black-hole" {
				var err error
				ln, err := network(t, url).Listen(addr)
				if err != nil {
					t.Fatal(err)
				}
				hole = b2emu.NewBlackHole(ln)
				defer hole.Close()
			}
			tr.CloseIdleConnections()
			start := time.Now()
			_, err := s.BucketInfo(ctx)
			first := time.Since(start)
			if !errors.Is(err, core.ErrUnavailable) {
				t.Fatalf("call with B2 %s: %v, want ErrUnavailable", mode, err)
			}
			// The bound holds to within scheduling: nothing waits for
			// the outage to end.
			if first > timeout+2*time.Second {
				t.Fatalf("call with B2 %s took %v, past Timeout %v", mode, first, timeout)
			}
			// A black hole is declared once a probe, sent when an attempt
			// got no answer, gets none either: perhaps just after the
			// call gave up.
			for wait := time.Now(); ; time.Sleep(10 * time.Millisecond) {
				if ok, _ := s.Reachable(); !ok {
					break
				}
				if time.Since(wait) > 20*time.Second {
					t.Fatal("B2 still reachable 20 s after a call failed for want of an answer")
				}
			}
			var before []string
			if hole != nil {
				before, _ = requests(hole)
			}
			start = time.Now()
			_, err = s.Upload(ctx, "f", strings.NewReader("data"), 4, "")
			_, err2 := s.BucketInfo(ctx)
			second := time.Since(start)
			if !errors.Is(err, core.ErrUnavailable) || !errors.Is(err2, core.ErrUnavailable) {
				t.Fatalf("calls during the declared outage: %v; %v, want ErrUnavailable", err, err2)
			}
			if second > time.Second {
				t.Errorf("calls during the declared outage took %v, want an answer at once", second)
			}
			if hole != nil {
				if after, _ := requests(hole); len(after) != len(before) {
					t.Errorf("calls during the declared outage sent requests: %q", after[len(before):])
				}
			}

			time.Sleep(2 * time.Second) // probes go on
			if hole != nil {
				if _, probes := requests(hole); probes < 2 {
					t.Errorf("%d probes in the outage's first seconds, want one a second", probes)
				}
				hole.Close()
			}
			relisten(t, srv, url)
			back := time.Now()
			for ok, _ := s.Reachable(); !ok; ok, _ = s.Reachable() {
				if time.Since(back) > 20*time.Second {
					t.Fatal("B2's return not found after 20 s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s: first call failed after %v, calls during the outage after %v, return found after %v",
				mode, first.Round(time.Millisecond), second.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
			if _, err := s.BucketInfo(ctx); err != nil {
				t.Fatalf("call after the outage: %v", err)
			}
			out := log.String()
			if n := strings.Count(out, "B2 unreachable"); n != 1 {
				t.Errorf("%d lines say B2 is unreachable, want 1:\n%s", n, out)
			}
			if n := strings.Count(out, "B2 reachable again"); n != 1 {
				t.Errorf("%d lines say B2 is back, want 1:\n%s", n, out)
			}
		})
	}
}

// TestStallIsNotOutage: B2 (or this host) stalled for longer than an
// attempt's deadline and a probe's, as a machine starved of CPU stalls,
// is not declared unreachable: the second probe is answered, and the call
// under way succeeds once B2 answers again. Declaring an outage after one
// probe made every call during it fail.
func TestStallIsNotOutage(t *testing.T) { sim(t, testStallIsNotOutage) }

func testStallIsNotOutage(t *testing.T) {
	srv, url := emulator(t, b2emu.Config{})
	const callTimeout = 500 * time.Millisecond
	var log storetest.SyncBuffer
	s := open(t, srv, url, b2.Config{Timeout: time.Minute, CallTimeout: callTimeout,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	ctx := testCtx(t)
	if _, err := s.BucketInfo(ctx); err != nil {
		t.Fatal(err)
	}
	// The attempt gets no answer within callTimeout, the two probes sent
	// then none within their 2 s each; the stall ends as the third probe
	// is sent, which then has all its 2 s for the answer.
	srv.Stall(callTimeout + 2*(2*time.Second+500*time.Millisecond))
	if _, err := s.BucketInfo(ctx); err != nil {
		t.Fatalf("call across the stall: %v, want it answered once the stall ends", err)
	}
	if out := log.String(); strings.Contains(out, "B2 unreachable") {
		t.Fatalf("B2 declared unreachable during a stall:\n%s", out)
	}
}

// TestSlowIsNotOutage: a call that B2 answers too slowly fails within
// Timeout, but B2 answers the probe, so it is not declared unreachable
// and other calls go on.
func TestSlowIsNotOutage(t *testing.T) { sim(t, testSlowIsNotOutage) }

func testSlowIsNotOutage(t *testing.T) {
	srv, url := emulator(t, b2emu.Config{})
	s := open(t, srv, url, b2.Config{Timeout: 3 * time.Second, CallTimeout: 500 * time.Millisecond})
	ctx := testCtx(t)
	srv.SetFault("b2_list_buckets", b2emu.Fault{Latency: 2 * time.Second})
	start := time.Now()
	_, err := s.BucketInfo(ctx)
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("slow call: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("slow call took %v, past Timeout 3s", d)
	}
	if ok, since := s.Reachable(); !ok {
		t.Fatalf("B2 declared unreachable (since %v) although it answers other calls", since)
	}
	if _, err := s.Upload(ctx, "f", strings.NewReader("data"), 4, ""); err != nil {
		t.Fatalf("upload beside the slow call: %v", err)
	}
}
