package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	blazer "github.com/Backblaze/blazer/b2"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
)

// The benchmarks count B2 calls with the emulator's counters; run them
// with
//
//	go test ./integration -run '^$' -bench . -benchtime 20x
//
// Figures are per operation: "calls/op" counts every B2 call.

func totalCalls(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// reportCalls reports the calls counted since the last ResetStats.
func reportCalls(b *testing.B, e *env, n int, names ...string) {
	c := e.calls()
	b.ReportMetric(float64(totalCalls(c))/float64(n), "calls/op")
	for _, name := range names {
		b.ReportMetric(float64(c[name])/float64(n), name+"/op")
	}
}

// BenchmarkOpenReadClose: open, read and close of an unchanged file that
// is cached, inside index_ttl. Goal: 0 calls.
func BenchmarkOpenReadClose(b *testing.B) {
	e := newEnv(b, b2emu.Config{})
	a := e.mount("bench", "index_ttl=1m")
	data := randomBytes(256 << 10)
	if err := os.WriteFile(a.path("f"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err := os.ReadFile(a.path("f")); err != nil {
		b.Fatal(err)
	}
	e.emu.ResetStats()
	b.ResetTimer()
	for range b.N {
		got, err := os.ReadFile(a.path("f"))
		if err != nil || !bytes.Equal(got, data) {
			b.Fatalf("read %d bytes, %v", len(got), err)
		}
	}
	b.StopTimer()
	reportCalls(b, e, b.N)
}

// BenchmarkCommit: replacing a file through the mount. Goal: one upload
// and one b2_update_bucket, no b2_list_buckets.
func BenchmarkCommit(b *testing.B) {
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		b.Run(format, func(b *testing.B) {
			e := newEnv(b, b2emu.Config{})
			a := e.mount("bench", "index_ttl=1m", "format="+format)
			if err := os.WriteFile(a.path("f"), []byte("first"), 0o644); err != nil {
				b.Fatal(err)
			}
			e.emu.ResetStats()
			b.ResetTimer()
			for i := range b.N {
				if err := os.WriteFile(a.path("f"), fmt.Appendf(nil, "version %d", i), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportCalls(b, e, b.N, "b2_upload_file", "b2_update_bucket", "b2_list_buckets")
		})
	}
}

// BenchmarkLsL: `ls -l` of a directory of 20 files. Cold: a fresh mount
// whose view of the index has expired; warm: the same listing again
// inside index_ttl.
func BenchmarkLsL(b *testing.B) {
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		b.Run(format, func(b *testing.B) {
			e := newEnv(b, b2emu.Config{})
			w := e.mount("bench", "format="+format)
			sh(b, w.dir, `mkdir d && for i in $(seq -w 1 20); do echo $i > d/f$i; done`)
			w.unmount()
			ls := func(m *mount) {
				out, err := exec.Command("ls", "-l", m.path("d")).CombinedOutput()
				if err != nil || bytes.Count(out, []byte("\n")) != 21 {
					b.Fatalf("ls -l: %v\n%s", err, out)
				}
			}
			b.Run("cold", func(b *testing.B) {
				var calls int64
				for range b.N {
					b.StopTimer()
					m := e.mount("bench", "index_ttl=1s")
					time.Sleep(1100 * time.Millisecond)
					e.emu.ResetStats()
					b.StartTimer()
					ls(m)
					b.StopTimer()
					calls += totalCalls(e.calls())
					m.unmount()
				}
				b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			})
			b.Run("warm", func(b *testing.B) {
				m := e.mount("bench", "index_ttl=1m")
				ls(m)
				e.emu.ResetStats()
				b.ResetTimer()
				for range b.N {
					ls(m)
				}
				b.StopTimer()
				reportCalls(b, e, b.N)
			})
		})
	}
}

// BenchmarkSequential writes and reads 256 MiB through the mount and with
// blazer directly on the same emulator, and reports the mount's speed as
// a ratio of blazer's (goal: at least 0.8).
func BenchmarkSequential(b *testing.B) {
	const size = 256 << 20
	e := newEnv(b, b2emu.Config{})
	data := randomBytes(size)
	ctx := context.Background()
	client, err := blazer.NewClient(ctx, b2emu.DefaultKeyID, b2emu.DefaultKey, blazer.APIBase(e.url))
	if err != nil {
		b.Fatal(err)
	}
	bk, err := client.Bucket(ctx, bucket)
	if err != nil {
		b.Fatal(err)
	}
	var mountW, mountR, directW, directR time.Duration
	for i := range b.N {
		name := fmt.Sprintf("seq%d", i)
		a := e.mount("seq")
		start := time.Now()
		f, err := os.Create(a.path(name))
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += 1 << 20 {
			if _, err := f.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		mountW += time.Since(start)

		r := e.mount("seq") // a fresh host: nothing cached
		start = time.Now()
		rf, err := os.Open(r.path(name))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rf)
		rf.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes through the mount: %v", n, err)
		}
		mountR += time.Since(start)
		a.unmount()
		r.unmount()

		start = time.Now()
		w := bk.Object("direct/" + name).NewWriter(ctx)
		if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		directW += time.Since(start)
		start = time.Now()
		br := bk.Object("direct/" + name).NewReader(ctx)
		n, err = io.Copy(io.Discard, br)
		br.Close()
		if err != nil || n != size {
			b.Fatalf("blazer read %d bytes: %v", n, err)
		}
		directR += time.Since(start)
	}
	mb := float64(size) / (1 << 20) * float64(b.N)
	b.ReportMetric(mb/mountW.Seconds(), "mount-write-MiB/s")
	b.ReportMetric(mb/mountR.Seconds(), "mount-read-MiB/s")
	b.ReportMetric(mb/directW.Seconds(), "blazer-write-MiB/s")
	b.ReportMetric(mb/directR.Seconds(), "blazer-read-MiB/s")
	b.ReportMetric(directW.Seconds()/mountW.Seconds(), "write-ratio")
	b.ReportMetric(directR.Seconds()/mountR.Seconds(), "read-ratio")
}
