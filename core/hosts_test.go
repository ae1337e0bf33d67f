package core_test

// BenchmarkHosts simulates many hosts committing into one group at once,
// over a bucket with B2-like round-trip times, to see how group commit and
// the compare-and-swap backoff behave as the number of hosts grows:
//
//	go test ./core -run '^$' -bench Hosts -benchtime 1x -v
//
// Each host is its own *core.Group on one shared in-memory bucket; every
// bucket call sleeps a latency drawn from simModel around the (atomic)
// in-memory call, so that updates from different hosts race as they do on
// B2. Overrides:
//
//	B2CFS_SIM_LATENCY  base latency of every call (Go duration, default 30ms)
//	B2CFS_SIM_JITTER   extra latency, uniform in [0, jitter) (default 10ms)
//	B2CFS_SIM_WRITERS  writer goroutines per host (default 5)
//	B2CFS_SIM_COMMITS  commits per writer (default 4)
//	B2CFS_SIM_HOSTS    host counts to run, comma-separated (default 1,4,20,100)

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// simModel draws the latency of one bucket call: Base plus a uniform
// jitter in [0, Jitter). A fraction Before of it passes before the call
// reaches the bucket, the rest before the answer comes back, so the
// operation itself (a compare-and-swap included) takes effect at one
// instant inside the call.
type simModel struct {
	Base   time.Duration
	Jitter time.Duration
	Before float64 // in [0, 1]
}

func (m simModel) draw() (before, after time.Duration) {
	d := m.Base
	if m.Jitter > 0 {
		d += time.Duration(mrand.Int64N(int64(m.Jitter)))
	}
	before = time.Duration(float64(d) * m.Before)
	return before, d - before
}

// simStore is one host's way to a memstore.Store, behind simModel's
// latencies.
type simStore struct {
	inner *memstore.Store
	model simModel
	host  int
	log   *simLog // shared by the hosts of one bucket
}

// simLog records the outcomes of the updates of all hosts.
type simLog struct {
	refused atomic.Int64 // updates the bucket refused (revision moved)

	mu       sync.Mutex
	landings []int // GUARDED_BY(mu); the host of each landed update, in order
}

// streaks returns how many runs of landed updates by one host the log
// holds: 1 if one host landed all of them, len(landings) if the hosts
// took turns on every update.
func (l *simLog) streaks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i, h := range l.landings {
		if i == 0 || h != l.landings[i-1] {
			n++
		}
	}
	return n
}

var _ core.Store = (*simStore)(nil)

// simSleep waits d or until ctx ends.
func simSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call runs op between the two halves of a drawn latency. changes tells
// whether op changes the bucket: an answer it cannot deliver because ctx
// ended on the way back is then a lost reply, as on B2.
func simCall[T any](s *simStore, ctx context.Context, name string, changes bool, op func() (T, error)) (T, error) {
	var zero T
	before, after := s.model.draw()
	if err := simSleep(ctx, before); err != nil {
		return zero, err
	}
	v, err := op()
	if err := simSleep(ctx, after); err != nil {
		switch {
		case !changes:
			return zero, err
		case name == "UpdateBucketInfo":
			return zero, fmt.Errorf("%w: %s sent, reply lost: %w", core.ErrUnknownOutcome, name, err)
		default:
			return zero, fmt.Errorf("%w: %s sent, reply lost: %w", core.ErrUnavailable, name, err)
		}
	}
	return v, err
}

func (s *simStore) BucketInfo(ctx context.Context) (core.BucketInfo, error) {
	return simCall(s, ctx, "BucketInfo", false, func() (core.BucketInfo, error) { return s.inner.BucketInfo(ctx) })
}

func (s *simStore) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	return simCall(s, ctx, "UpdateBucketInfo", true, func() (core.BucketInfo, error) {
		bi, err := s.inner.UpdateBucketInfo(ctx, rev, info)
		switch {
		case err == nil:
			s.log.mu.Lock()
			s.log.landings = append(s.log.landings, s.host)
			s.log.mu.Unlock()
		case errors.Is(err, core.ErrRevisionMismatch):
			s.log.refused.Add(1)
		}
		return bi, err
	})
}

func (s *simStore) Upload(ctx context.Context, name string, data io.ReaderAt, size int64, group string) (core.FileInfo, error) {
	return simCall(s, ctx, "Upload", true, func() (core.FileInfo, error) { return s.inner.Upload(ctx, name, data, size, group) })
}

func (s *simStore) Download(ctx context.Context, name string, off, length int64) (io.ReadCloser, core.FileInfo, error) {
	type dl struct {
		rc io.ReadCloser
		fi core.FileInfo
	}
	r, err := simCall(s, ctx, "Download", false, func() (dl, error) {
		rc, fi, err := s.inner.Download(ctx, name, off, length)
		return dl{rc, fi}, err
	})
	return r.rc, r.fi, err
}

func (s *simStore) Stat(ctx context.Context, name string) (core.FileInfo, error) {
	return simCall(s, ctx, "Stat", false, func() (core.FileInfo, error) { return s.inner.Stat(ctx, name) })
}

func (s *simStore) Delete(ctx context.Context, name, id string) error {
	_, err := simCall(s, ctx, "Delete", true, func() (struct{}, error) { return struct{}{}, s.inner.Delete(ctx, name, id) })
	return err
}

func (s *simStore) Copy(ctx context.Context, src, srcID, dst string) (core.FileInfo, error) {
	return simCall(s, ctx, "Copy", true, func() (core.FileInfo, error) { return s.inner.Copy(ctx, src, srcID, dst) })
}

func (s *simStore) List(ctx context.Context, prefix string) ([]core.FileInfo, error) {
	return simCall(s, ctx, "List", false, func() ([]core.FileInfo, error) { return s.inner.List(ctx, prefix) })
}

// simConfig is one simulation's parameters.
type simConfig struct {
	model   simModel
	writers int // per host
	commits int // per writer
}

// simResult sums the simulation runs of one host count.
type simResult struct {
	hosts   int
	cfg     simConfig
	ok      int           // acknowledged commits
	unavail int           // commits failed with ErrUnavailable (too many swaps)
	failed  int           // commits failed otherwise
	wall    time.Duration // barrier release to the last commit's return
	lat     []time.Duration

	updates, landed, refused, lists, uploads, downloads int
	streaks                                             int // runs of landed updates by one host
	firstErr                                            error
}

func (r *simResult) perCommit(n int) float64 {
	if r.ok == 0 {
		return 0
	}
	return float64(n) / float64(r.ok)
}

func (r *simResult) throughput() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.ok) / r.wall.Seconds()
}

// quantile returns the q-quantile of the sorted latencies.
func (r *simResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.lat)-1))
	return r.lat[i]
}

func simEnvDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		b.Fatalf("%s=%q: want a non-negative Go duration", name, v)
	}
	return d
}

func simEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func simEnvHosts(b *testing.B) []int {
	v := os.Getenv("B2CFS_SIM_HOSTS")
	if v == "" {
		return []int{1, 4, 20, 100}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("B2CFS_SIM_HOSTS=%q: want positive integers separated by commas", v)
		}
		out = append(out, n)
	}
	return out
}

func BenchmarkHosts(b *testing.B) {
	cfg := simConfig{
		model: simModel{
			Base:   simEnvDuration(b, "B2CFS_SIM_LATENCY", 30*time.Millisecond),
			Jitter: simEnvDuration(b, "B2CFS_SIM_JITTER", 10*time.Millisecond),
			Before: 0.5,
		},
		writers: simEnvInt(b, "B2CFS_SIM_WRITERS", 5),
		commits: simEnvInt(b, "B2CFS_SIM_COMMITS", 4),
	}
	var results []*simResult
	for _, hosts := range simEnvHosts(b) {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			r := &simResult{hosts: hosts, cfg: cfg}
			for range b.N {
				simRun(b, hosts, cfg, r)
			}
			slices.Sort(r.lat)
			b.ReportMetric(float64(r.ok), "commits")
			b.ReportMetric(r.throughput(), "commits/s")
			b.ReportMetric(float64(r.quantile(0.5).Milliseconds()), "p50-ms")
			b.ReportMetric(float64(r.quantile(1).Milliseconds()), "max-ms")
			b.ReportMetric(float64(r.updates), "updates")
			b.ReportMetric(float64(r.lists), "lists")
			b.ReportMetric(float64(r.uploads), "uploads")
			b.ReportMetric(r.perCommit(r.lists), "lists/commit")
			b.ReportMetric(r.perCommit(r.updates), "updates/commit")
			b.ReportMetric(float64(r.failed), "errors")
			b.ReportMetric(float64(r.unavail), "unavailable")
			// A sub-benchmark may run more than once (b.N rises); the
			// table keeps its last run.
			results = slices.DeleteFunc(results, func(o *simResult) bool { return o.hosts == hosts })
			results = append(results, r)
			if r.failed > 0 {
				b.Errorf("%d commits failed; first: %v", r.failed, r.firstErr)
			}
		})
	}
	fmt.Print(simTable(cfg, results))
}

// simRun runs one simulation of hosts hosts and adds its figures to r.
func simRun(b *testing.B, hosts int, cfg simConfig, r *simResult) {
	b.Helper()
	b.StopTimer() // only the commits count, not setting up and checking
	const group = "sim"
	inner := memstore.New()
	log := &simLog{}
	groups := make([]*core.Group, hosts)
	for i := range groups {
		s := &simStore{inner: inner, model: cfg.model, host: i, log: log}
		g, err := core.NewGroup(s, group, core.Options{Host: fmt.Sprintf("sim-host-%03d", i)})
		if err != nil {
			b.Fatal(err)
		}
		groups[i] = g
	}
	defer func() {
		for _, g := range groups {
			g.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	startRev := simRevision(b, inner)
	before := inner.Calls()

	type outcome struct {
		name, key string
		err       error
		lat       time.Duration
	}
	outcomes := make([][]outcome, hosts*cfg.writers)
	start := make(chan struct{})
	var ready, wg sync.WaitGroup
	for h, g := range groups {
		for w := range cfg.writers {
			slot := h*cfg.writers + w
			ready.Add(1)
			wg.Go(func() {
				ready.Done()
				<-start
				for c := range cfg.commits {
					name := fmt.Sprintf("h%03d-w%02d-c%03d", h, w, c)
					data := bytes.Repeat([]byte{byte('a' + c%26)}, 100)
					copy(data, name)
					t0 := time.Now()
					key, err := g.Commit(ctx, name, "", bytes.NewReader(data), int64(len(data)))
					outcomes[slot] = append(outcomes[slot], outcome{name, key, err, time.Since(t0)})
				}
			})
		}
	}
	ready.Wait()
	b.StartTimer()
	t0 := time.Now()
	close(start) // every writer of every host starts now
	wg.Wait()
	r.wall += time.Since(t0)
	b.StopTimer()

	after := inner.Calls()
	r.updates += after["UpdateBucketInfo"] - before["UpdateBucketInfo"]
	r.lists += after["BucketInfo"] - before["BucketInfo"]
	r.uploads += after["Upload"] - before["Upload"]
	r.downloads += after["Download"] - before["Download"]
	r.refused += int(log.refused.Load())
	r.streaks += log.streaks()
	r.landed += int(simRevision(b, inner) - startRev)

	// A fresh host, straight on the bucket, must see every acknowledged
	// commit with its key, and none that failed with a definite outcome.
	check, err := core.NewGroup(inner, group, core.Options{Host: "sim-check"})
	if err != nil {
		b.Fatal(err)
	}
	defer check.Close()
	entries, err := storetest.Keys(ctx, check)
	if err != nil {
		b.Fatal(err)
	}
	for _, writer := range outcomes {
		for _, o := range writer {
			r.lat = append(r.lat, o.lat)
			got, present := entries[o.name]
			switch {
			case o.err == nil:
				r.ok++
				if !present || got != o.key {
					b.Fatalf("acknowledged commit of %s (key %s) lost: the index has %q", o.name, o.key, got)
				}
				continue
			case errors.Is(o.err, core.ErrUnknownOutcome):
				// may have landed or not
			case present:
				b.Fatalf("commit of %s failed (%v) but is in the index", o.name, o.err)
			}
			if errors.Is(o.err, core.ErrUnavailable) && !errors.Is(o.err, core.ErrUnknownOutcome) {
				// the bucket kept changing: too many refused swaps
				if r.unavail == 0 {
					b.Logf("first commit that found the bucket unavailable: %v", o.err)
				}
				r.unavail++
				continue
			}
			if r.failed == 0 {
				r.firstErr = o.err
			}
			r.failed++
		}
	}
	if n := len(entries); n != r.ok {
		b.Logf("index holds %d names, %d commits acknowledged", n, r.ok)
	}
}

// simRevision returns the bucket's revision, read without latency.
func simRevision(b *testing.B, s *memstore.Store) int64 {
	bi, err := s.BucketInfo(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return bi.Revision
}

// simTable renders the results as a markdown table.
func simTable(cfg simConfig, rs []*simResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nlatency %v + [0,%v) per call, %d writers/host, %d commits/writer, one group, default options\n\n",
		cfg.model.Base, cfg.model.Jitter, cfg.writers, cfg.commits)
	sb.WriteString("| hosts | commits | wall | commits/s | p50 | p90 | max | updates | landed | refused | lists | uploads | downloads | lists/commit | updates/commit | commits/landed | landed/streak | errors | unavailable |\n")
	sb.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	for _, r := range rs {
		batch, streak := 0.0, 0.0
		if r.landed > 0 {
			batch = float64(r.ok) / float64(r.landed)
		}
		if r.streaks > 0 {
			streak = float64(r.landed) / float64(r.streaks)
		}
		fmt.Fprintf(&sb, "| %d | %d | %.2f s | %.1f | %s | %s | %s | %d | %d | %d | %d | %d | %d | %.2f | %.2f | %.2f | %.1f | %d | %d |\n",
			r.hosts, r.ok, r.wall.Seconds(), r.throughput(),
			ms(r.quantile(0.5)), ms(r.quantile(0.9)), ms(r.quantile(1)),
			r.updates, r.landed, r.refused, r.lists, r.uploads, r.downloads,
			r.perCommit(r.lists), r.perCommit(r.updates), batch, streak, r.failed, r.unavail)
	}
	return sb.String()
}
