package core_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/b2emu/memnet"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// scaleEnv is an emulator bucket holding one b2cfs-format group of n files
// at its root. The emulator serves on an in-memory network, so that the
// test runs in a bubble (sim).
type scaleEnv struct {
	srv    *b2emu.Server
	net    *memnet.Network
	url    string
	bucket string
	files  int
}

func newScaleEnv(t testing.TB, n int) *scaleEnv {
	t.Helper()
	srv, err := b2emu.New(b2emu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	nw := memnet.New()
	ln, err := nw.Listen("b2emu.test:80")
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Serve(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &scaleEnv{srv: srv, net: nw, url: url, bucket: "scale-test", files: n}
	if err := srv.CreateBucket(e.bucket); err != nil {
		t.Fatal(err)
	}
	g := e.group(t, core.Options{})
	if err := core.BulkCreate(context.Background(), g, "", n, 16); err != nil {
		t.Fatal(err)
	}
	return e
}

// group opens the group on a new client (a host with cold caches).
func (e *scaleEnv) group(t testing.TB, opts core.Options) *core.Group {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := e.net.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	s, err := b2.Open(ctx, b2.Config{Endpoint: e.url, KeyID: b2emu.DefaultKeyID, Key: b2emu.DefaultKey, Bucket: e.bucket, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock() // the bubble's
	}
	g, err := core.NewGroup(s, "big", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// lsl is what "ls -l" of the root needs: every name with its size and time.
func lsl(ctx context.Context, g *core.Group) (int, error) {
	snap, err := storetest.Entries(ctx, g)
	if err != nil {
		return 0, err
	}
	n := 0
	for name, e := range snap {
		if strings.Contains(name, "/") {
			continue
		}
		if _, err := g.Stat(ctx, name, e.Key); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

func (e *scaleEnv) calls() int64 {
	var n int64
	for _, c := range e.srv.Stats().Calls {
		n += c
	}
	return n
}

// TestScale10k: go test -v -run TestScale10k ./core/ prints the figures.
// It runs in simulated time, the emulator on an in-memory network, and
// checks counts only, so load slows it down but cannot fail it. Its time
// is CPU (the 500 commits to the 10,000-file group most), which it spends
// beside the other parallel tests.
func TestScale10k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 10,000-file group")
	}
	t.Parallel()
	sim(t, testScale10k)
}

func testScale10k(t *testing.T) {
	ctx := testCtx(t)
	const n = 10_000
	e := newScaleEnv(t, n)
	g := e.group(t, core.Options{IndexTTL: time.Minute})

	e.srv.ResetStats()
	files, err := lsl(ctx, g)
	if err != nil || files != n {
		t.Fatalf("ls -l listed %d files (%v), want %d", files, err, n)
	}
	cold := e.calls()
	e.srv.ResetStats()
	if _, err := lsl(ctx, g); err != nil {
		t.Fatal(err)
	}
	warm := e.calls()
	t.Logf("ls -l of a %d-file root: %d B2 calls cold, %d warm", n, cold, warm)
	if cold > 3 || warm != 0 {
		t.Errorf("ls -l: %d calls cold (want <= 3), %d warm (want 0)", cold, warm)
	}

	// Commits: uploads, updates and index bytes per commit, to a group of
	// 100 files and to this one (ls -l above changed nothing).
	for _, env := range []*scaleEnv{newScaleEnv(t, 100), e} {
		size := env.files
		perCommit := commitCost(t, ctx, env)
		t.Logf("group of %5d files: per commit %.2f uploads, %.2f updates, %.2f listings, %.0f bytes uploaded besides the data",
			size, perCommit.uploads, perCommit.updates, perCommit.lists, perCommit.metaBytes)
		if perCommit.uploads > 2 || perCommit.updates != 1 {
			t.Errorf("group of %d: %.2f uploads and %.2f updates per commit, want <= 2 and 1", size, perCommit.uploads, perCommit.updates)
		}
		if perCommit.metaBytes > 32<<10 {
			t.Errorf("group of %d: %.0f index bytes per commit", size, perCommit.metaBytes)
		}
	}
}

type cost struct{ uploads, updates, lists, metaBytes float64 }

// commitCost commits 500 small files (enough to fold the index more than
// once) to the group of e, on a host with cold caches, and returns the
// cost per commit.
func commitCost(t *testing.T, ctx context.Context, e *scaleEnv) cost {
	size := e.files
	g := e.group(t, core.Options{})
	if _, err := g.List(ctx); err != nil {
		t.Fatal(err)
	}
	const commits, data = 500, 100
	e.srv.ResetStats()
	for i := 0; i < commits; i++ {
		name := fmt.Sprintf("f%d", i%size)
		key, err := storetest.Key(ctx, g, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Commit(ctx, name, key, strings.NewReader(strings.Repeat("y", data)), data); err != nil {
			t.Fatal(err)
		}
	}
	st := e.srv.Stats()
	var c cost
	c.uploads = float64(st.Calls["b2_upload_file"]) / commits
	c.updates = float64(st.Calls["b2_update_bucket"]) / commits
	c.lists = float64(st.Calls["b2_list_buckets"]) / commits
	// Bytes in: data, manifests and the JSON of update_bucket calls.
	c.metaBytes = float64(st.BytesIn-commits*data) / commits
	return c
}
