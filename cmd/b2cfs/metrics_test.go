package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
)

func TestMetricsServed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if m, err := startMetrics(ctx, "", nil); m != nil || err != nil || m.b2Hook() != nil || m.coreHook() != nil || m.opHook() != nil {
		t.Fatalf("no address: %v %v", m, err)
	}
	m := newMetrics()
	addr, err := m.serve(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	m.registerCache(c)
	m.b2Hook()("b2_upload_file", "A", "", time.Millisecond)
	m.b2Hook()("b2_update_bucket", "A", "conflict", time.Millisecond)
	var cm core.Metrics = m.coreHook()
	cm.Committed("ok")
	cm.Committed("conflict")
	cm.CASRetried()
	cm.LockAcquired(core.Exclusive, 2*time.Second)
	cm.LeaseRenewed()
	cm.LeaseLost()
	m.opHook()("Read", time.Millisecond)

	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{
		`b2cfs_b2_calls_total{call="b2_upload_file",class="A"} 1`,
		`b2cfs_b2_errors_total{call="b2_update_bucket",code="conflict"} 1`,
		`b2cfs_commits_total{outcome="ok"} 1`,
		`b2cfs_commits_total{outcome="conflict"} 1`,
		`b2cfs_commits_total{outcome="full"} 0`,
		`b2cfs_cas_retries_total 1`,
		`b2cfs_lock_acquisitions_total{mode="exclusive"} 1`,
		`b2cfs_lock_wait_seconds_sum{mode="exclusive"} 2`,
		`b2cfs_lease_renewals_total 1`,
		`b2cfs_lease_losses_total 1`,
		`b2cfs_fuse_op_duration_seconds_count{op="Read"} 1`,
		`b2cfs_cache_hits_total 0`,
		`b2cfs_cache_misses_total 0`,
		`b2cfs_cache_bytes 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// TestMetricsReachable: b2cfs_b2_reachable follows the store's view of B2.
func TestMetricsReachable(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := openStore(ctx, storeOptions{Bucket: e.bucket, Endpoint: e.url, Timeout: time.Second,
		Credentials: credentials{KeyID: b2emu.DefaultKeyID, Key: b2emu.DefaultKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := newMetrics()
	addr, err := m.serve(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m.registerStore(s)
	scrape := func() string {
		resp, err := http.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := scrape(); !strings.Contains(body, "\nb2cfs_b2_reachable 1\n") {
		t.Fatalf("B2 up: metrics lack b2cfs_b2_reachable 1:\n%s", body)
	}
	e.srv.Close()
	if _, err := s.BucketInfo(ctx); err == nil {
		t.Fatal("a call with the emulator stopped succeeded")
	}
	if body := scrape(); !strings.Contains(body, "\nb2cfs_b2_reachable 0\n") {
		t.Fatalf("B2 down: metrics lack b2cfs_b2_reachable 0:\n%s", body)
	}
}
