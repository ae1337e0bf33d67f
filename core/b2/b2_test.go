package b2_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/core/storetest"
)

var bucketSeq atomic.Int64

// emulator starts an emulator for the test and returns it and its URL.
func emulator(t testing.TB, cfg b2emu.Config) (*b2emu.Server, string) {
	t.Helper()
	srv, err := b2emu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, url
}

// open returns a store over a new bucket of srv.
func open(t testing.TB, srv *b2emu.Server, url string, cfg b2.Config) *b2.Store {
	t.Helper()
	if cfg.Bucket == "" {
		cfg.Bucket = fmt.Sprintf("bucket-%d", bucketSeq.Add(1))
		if err := srv.CreateBucket(cfg.Bucket); err != nil {
			t.Fatal(err)
		}
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
	_, err := b2.Open(ctx, b2.Config{Endpoint: url, KeyID: "b2cfs-emu-key-id", Key: "wrong", Bucket: "x"})
	if err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("bad key: %v, want a credentials error", err)
	}
	_, err = b2.Open(ctx, b2.Config{Endpoint: url, KeyID: "b2cfs-emu-key-id", Key: "b2cfs-emu-key", Bucket: "nope"})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown bucket: %v", err)
	}
	_ = srv
	start := time.Now()
	_, err = b2.Open(ctx, b2.Config{Endpoint: "http://127.0.0.1:1", KeyID: "a", Key: "b", Bucket: "x", Attempts: 2, CallTimeout: time.Second})
	if !errors.Is(err, core.ErrUnavailable) || time.Since(start) > 10*time.Second {
		t.Fatalf("unreachable endpoint: %v after %v, want ErrUnavailable quickly", err, time.Since(start))
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
		g, err := core.NewGroup(open(t, srv, url, cfg), "g", o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		gs = append(gs, g)
	}
	return gs
}

// bothFormats runs f on groups of each on-bucket format.
func bothFormats(t *testing.T, f func(t *testing.T, format string)) {
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		t.Run(format, func(t *testing.T) { f(t, format) })
	}
}

// bothFormatsParallel is bothFormats for the long fault tests, which mostly
// wait out retry backoffs on their own emulator: they run beside each
// other and beside the other parallel tests, once the package's serial
// tests (timing ones among them) are done.
func bothFormatsParallel(t *testing.T, f func(t *testing.T, format string)) {
	t.Parallel()
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			f(t, format)
		})
	}
}

func TestIncrementsTwoHosts(t *testing.T) { bothFormats(t, testIncrementsTwoHosts) }

func testIncrementsTwoHosts(t *testing.T, format string) {
	srv, url := emulator(t, b2emu.Config{})
	gs := newGroups(t, srv, url, 3, core.Options{Format: format})
	storetest.Increments(t, gs[:2], gs[2], 10, 10)
}

func TestIncrementsUnderFaults(t *testing.T) { bothFormatsParallel(t, testIncrementsUnderFaults) }

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
