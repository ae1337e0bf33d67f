package b2_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/b2emu/memnet"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/core/storetest"
)

var bucketSeq, emulatorSeq atomic.Int64

// networks holds the in-memory network of each emulator by its URL.
var networks sync.Map // string -> *memnet.Network

// emulator starts an emulator for the test on an in-memory network of its
// own (package memnet) and returns it and its URL; open's stores dial it
// there. Inside a bubble (sim) the emulator, blazer, the stores and the
// groups all wait on the bubble's clock.
func emulator(t testing.TB, cfg b2emu.Config) (*b2emu.Server, string) {
	t.Helper()
	srv, err := b2emu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := memnet.New()
	ln, err := n.Listen(fmt.Sprintf("b2emu-%d.test:80", emulatorSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Serve(ln)
	if err != nil {
		t.Fatal(err)
	}
	networks.Store(url, n)
	t.Cleanup(func() {
		srv.Close()
		networks.Delete(url)
	})
	return srv, url
}

// network returns the in-memory network of the emulator at url.
func network(t testing.TB, url string) *memnet.Network {
	t.Helper()
	n, ok := networks.Load(url)
	if !ok {
		t.Fatalf("no emulator at %s", url)
	}
	return n.(*memnet.Network)
}

// transport returns a new HTTP transport to the emulator at url, whose
// idle connections close when the test ends.
func transport(t testing.TB, url string) *http.Transport {
	tr := network(t, url).Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// open returns a store over a new bucket of srv (unless cfg names one),
// on a transport of its own unless cfg gives one.
func open(t testing.TB, srv *b2emu.Server, url string, cfg b2.Config) *b2.Store {
	t.Helper()
	if cfg.Bucket == "" {
		cfg.Bucket = fmt.Sprintf("bucket-%d", bucketSeq.Add(1))
		if err := srv.CreateBucket(cfg.Bucket); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Transport == nil {
		cfg.Transport = transport(t, url)
	}
	cfg.Endpoint, cfg.KeyID, cfg.Key = url, "b2cfs-emu-key-id", "b2cfs-emu-key"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := b2.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sim runs f in a bubble of simulated time (testing/synctest), where
// attempt deadlines, backoffs, Retry-After waits, late replies and leases
// take no wall time, and load cannot make them run out. f must not call
// t.Run or t.Parallel.
func sim(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		// Run last: background work that ends on a bound of its own
		// (a deleter's grace, a lock release in the background) ends
		// before the bubble does. Whatever still waits then is a leak,
		// and synctest panics with the goroutines that wait.
		t.Cleanup(func() { time.Sleep(drain) })
		f(t)
	})
}

// simRun runs f as subtest name of t, in a bubble of its own (sim).
func simRun(t *testing.T, name string, f func(t *testing.T)) bool {
	t.Helper()
	return t.Run(name, func(t *testing.T) { sim(t, f) })
}

// relisten makes srv serve at url again on the emulator's network: after
// srv.Close (B2 back from an outage), or for a new server on the same
// directory (B2 restarted).
func relisten(t testing.TB, srv *b2emu.Server, url string) {
	t.Helper()
	ln, err := network(t, url).Listen(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Serve(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
}

// drain is how long sim lets background work finish after a test.
const drain = 10 * time.Minute

// simOptions returns opts with the time package's clock (inside a bubble,
// the bubble's) unless it has a clock: core's default reads
// CLOCK_BOOTTIME, which a bubble does not simulate.
func simOptions(opts core.Options) core.Options {
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	return opts
}

func TestConformance(t *testing.T) {
	srv, url := emulator(t, b2emu.Config{})
	storetest.Run(t, func(t *testing.T) core.Store { return open(t, srv, url, b2.Config{}) })
}

func TestLargeFileConformance(t *testing.T) {
	// Uploads above PartSize go as large files in parts.
	srv, url := emulator(t, b2emu.Config{MinPartSize: 1000})
	storetest.Run(t, func(t *testing.T) core.Store { return open(t, srv, url, b2.Config{PartSize: 64 << 10}) })
}

func TestOpenErrors(t *testing.T) {
	srv, url := emulator(t, b2emu.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := transport(t, url)
	_, err := b2.Open(ctx, b2.Config{Endpoint: url, KeyID: "b2cfs-emu-key-id", Key: "wrong", Bucket: "x", Transport: tr})
	if err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("bad key: %v, want a credentials error", err)
	}
	_, err = b2.Open(ctx, b2.Config{Endpoint: url, KeyID: "b2cfs-emu-key-id", Key: "b2cfs-emu-key", Bucket: "nope", Transport: tr})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown bucket: %v", err)
	}
	_ = srv
	// A real TCP port nothing listens on.
	_, err = b2.Open(ctx, b2.Config{Endpoint: "http://127.0.0.1:1", KeyID: "a", Key: "b", Bucket: "x", Attempts: 2, CallTimeout: time.Second})
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("unreachable endpoint: %v, want ErrUnavailable", err)
	}
}

func newGroups(t *testing.T, srv *b2emu.Server, url string, n int, opts core.Options) []*core.Group {
	t.Helper()
	return newGroupsWith(t, srv, url, n, opts, b2.Config{})
}

// newGroupsWith returns n groups of one new bucket, each on a store of its
// own (separate B2 clients stand for separate hosts) configured by cfg and
// named host-0, host-1, ... unless opts names the host.
func newGroupsWith(t *testing.T, srv *b2emu.Server, url string, n int, opts core.Options, cfg b2.Config) []*core.Group {
	t.Helper()
	cfg.Bucket = fmt.Sprintf("bucket-%d", bucketSeq.Add(1))
	if err := srv.CreateBucket(cfg.Bucket); err != nil {
		t.Fatal(err)
	}
	var gs []*core.Group
	for i := 0; i < n; i++ {
		o := opts
		if o.Host == "" {
			o.Host = fmt.Sprintf("host-%d", i)
		}
		g, err := core.NewGroup(open(t, srv, url, cfg), "g", simOptions(o))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		gs = append(gs, g)
	}
	return gs
}

// bothFormats runs f on groups of each on-bucket format, each in a bubble
// of simulated time (sim).
func bothFormats(t *testing.T, f func(t *testing.T, format string)) {
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		t.Run(format, func(t *testing.T) { sim(t, func(t *testing.T) { f(t, format) }) })
	}
}

// bothFormatsEach is bothFormats for the long fault tests with cases of
// their own: one subtest per format and case, each in a bubble, run
// beside each other (their time is CPU: the bubbles simulate the rest).
func bothFormatsEach(t *testing.T, cases []string, f func(t *testing.T, format, c string)) {
	t.Parallel()
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c, func(t *testing.T) {
					t.Parallel()
					sim(t, func(t *testing.T) { f(t, format, c) })
				})
			}
		})
	}
}

func TestIncrementsTwoHosts(t *testing.T) { bothFormats(t, testIncrementsTwoHosts) }

func testIncrementsTwoHosts(t *testing.T, format string) {
	srv, url := emulator(t, b2emu.Config{})
	gs := newGroups(t, srv, url, 3, core.Options{Format: format})
	storetest.Increments(t, gs[:2], gs[2], 10, 10)
}

func TestIncrementsUnderFaults(t *testing.T) {
	bothFormatsEach(t, []string{"increments"}, func(t *testing.T, format, _ string) { testIncrementsUnderFaults(t, format) })
}

func testIncrementsUnderFaults(t *testing.T, format string) {
	srv, url := emulator(t, b2emu.Config{TokenLifetime: 5 * time.Second})
	gs := newGroups(t, srv, url, 3, core.Options{IndexTTL: -1, Format: format})
	srv.SetFault("b2_upload_file", b2emu.Fault{ErrorRate: 0.2, Status: 503})
	srv.SetFault("b2_list_buckets", b2emu.Fault{ErrorRate: 0.2, Status: 429, RetryAfter: 1})
	srv.SetFault("b2_update_bucket", b2emu.Fault{ErrorRate: 0.1, Status: 401, Code: "expired_auth_token"})
	storetest.Increments(t, gs[:2], gs[2], 10, 10)
	st := srv.Stats()
	t.Logf("calls under faults: %v", st.Calls)
}

func TestLinearizable(t *testing.T) { bothFormats(t, testLinearizable) }

func testLinearizable(t *testing.T, format string) {
	srv, url := emulator(t, b2emu.Config{})
	gs := newGroups(t, srv, url, 3, core.Options{IndexTTL: -1, Grace: -1, Format: format})
	storetest.Linearizable(t, gs, 15)
}
