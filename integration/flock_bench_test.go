package integration

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
)

// The lock benchmarks; run them with
//
//	go test ./integration -run '^$' -bench 'Flock' -benchtime 20x
//
// BenchmarkFlockUncontended counts B2 calls of flock(LOCK_EX) + flock(LOCK_UN)
// through a mount (goal: at most 3 Class C); the others add 30 ms of latency
// to every B2 call and report the hand-off time from a release on one host
// to the acquisition by a waiter on another, and lock-protected increments
// per second.

// latency is what the timed benchmarks add to every B2 call.
const latency = 30 * time.Millisecond

// flockFD locks or unlocks fd, failing the benchmark on error.
func flockFD(b *testing.B, f *os.File, how int) {
	b.Helper()
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		b.Fatalf("flock(%s, %d): %v", f.Name(), how, err)
	}
}

func openLock(b *testing.B, path string) *os.File {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkFlockUncontended: LOCK_EX then LOCK_UN on an open file nobody
// else locks.
func BenchmarkFlockUncontended(b *testing.B) {
	for _, format := range []string{core.FormatB2cfs, core.FormatBlazer} {
		b.Run(format, func(b *testing.B) {
			requireFUSE(b)
			e := newEnv(b, b2emu.Config{})
			a := e.mount("lk", "index_ttl=1m", "format="+format)
			if err := os.WriteFile(a.path("f.lock"), nil, 0o644); err != nil {
				b.Fatal(err)
			}
			f := openLock(b, a.path("f.lock"))
			defer f.Close()
			flockFD(b, f, syscall.LOCK_EX) // warm up: upload URL, caches
			flockFD(b, f, syscall.LOCK_UN)
			e.emu.ResetStats()
			b.ResetTimer()
			for range b.N {
				flockFD(b, f, syscall.LOCK_EX)
				flockFD(b, f, syscall.LOCK_UN)
			}
			b.StopTimer()
			st := e.emu.Stats()
			for _, class := range []string{"A", "B", "C"} {
				b.ReportMetric(float64(st.Classes[class])/float64(b.N), "class"+class+"/op")
			}
			reportCalls(b, e, b.N)
		})
	}
}

// BenchmarkFlockHandoff: a waiter blocks in flock(LOCK_EX) while another
// descriptor holds the lock, on the same mount or on another host's; the
// time is from the holder's LOCK_UN returning to the waiter's flock
// returning.
func BenchmarkFlockHandoff(b *testing.B) {
	for _, hosts := range []string{"same-host", "cross-host"} {
		b.Run(hosts, func(b *testing.B) {
			requireFUSE(b)
			e := newEnv(b, b2emu.Config{})
			create(b, e.group("ho"), "f.lock", "")
			a := e.mount("ho", "index_ttl=1m")
			bm := a
			if hosts == "cross-host" {
				bm = e.mount("ho", "index_ttl=1m")
			}
			e.emu.SetFault("*", b2emu.Fault{Latency: latency})
			fa := openLock(b, a.path("f.lock"))
			defer fa.Close()
			fb := openLock(b, bm.path("f.lock"))
			defer fb.Close()
			var total, worst time.Duration
			b.ResetTimer()
			for range b.N {
				flockFD(b, fa, syscall.LOCK_EX)
				got := make(chan time.Time, 1)
				go func() {
					if err := syscall.Flock(int(fb.Fd()), syscall.LOCK_EX); err != nil {
						b.Error(err)
					}
					got <- time.Now()
				}()
				time.Sleep(500 * time.Millisecond) // the waiter is waiting
				flockFD(b, fa, syscall.LOCK_UN)
				released := time.Now()
				d := (<-got).Sub(released)
				total, worst = total+d, max(worst, d)
				flockFD(b, fb, syscall.LOCK_UN)
			}
			b.StopTimer()
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-handoff/op")
			b.ReportMetric(float64(worst.Milliseconds()), "ms-worst")
		})
	}
}

// BenchmarkFlockIncrements: flock, read a counter file, write it back plus
// one, close it (commit), unlock; on one mount, and on two mounts at once
// (one worker each).
func BenchmarkFlockIncrements(b *testing.B) {
	for _, hosts := range []int{1, 2} {
		b.Run(strconv.Itoa(hosts)+"-hosts", func(b *testing.B) {
			requireFUSE(b)
			e := newEnv(b, b2emu.Config{})
			create(b, e.group("inc"), "c", "0")
			var ms []*mount
			for range hosts {
				ms = append(ms, e.mount("inc", "index_ttl=1m"))
			}
			e.emu.SetFault("*", b2emu.Fault{Latency: latency})
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for i, m := range ms {
				n := b.N / hosts
				if i == 0 {
					n += b.N % hosts
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						increment(b, m)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			e.emu.SetFault("*", b2emu.Fault{})
			// Read through B2: a mount's view may be index_ttl old.
			data, err := object(b, e.group("inc"), "c")
			if err != nil || strings.TrimSpace(data) != strconv.Itoa(b.N) {
				b.Fatalf("counter %q (%v) after %d increments", data, err, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "incr/s")
		})
	}
}

// increment adds one to counter c under the lock of c itself.
func increment(b *testing.B, m *mount) {
	f, err := os.Open(m.path("c"))
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		b.Error(err)
		return
	}
	data, err := os.ReadFile(m.path("c"))
	if err == nil {
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		err = os.WriteFile(m.path("c"), []byte(strconv.Itoa(n+1)), 0o644)
	}
	if err != nil {
		b.Error(err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// create stores name with content data in group g, before any mount
// starts: a mount's view of the index may be index_ttl old.
func create(b *testing.B, g *core.Group, name, data string) {
	b.Helper()
	if _, err := g.Commit(context.Background(), name, "", strings.NewReader(data), int64(len(data))); err != nil {
		b.Fatal(err)
	}
}
