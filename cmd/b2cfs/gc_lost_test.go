package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// TestGCAfterLostReplies: two groups of one bucket (one per on-bucket
// format) take increments from two hosts while B2 loses 30 % of the
// replies of every call that changes the bucket, which leaves duplicate
// uploads, uploads of commits that never landed and manifests nobody
// references. gc must then delete only unreferenced files: every object
// of both groups still reads, and the counters are exact.
func TestGCAfterLostReplies(t *testing.T) {
	e := newTestEnv(t)
	var checks []*core.Group
	for _, format := range []string{core.FormatB2cfs, core.FormatBlazer} {
		name := "lost-" + format
		var hosts []*core.Group
		for i := 0; i < 2; i++ {
			g, err := core.NewGroup(e.store(), name, core.Options{Format: format, Grace: -1, Host: fmt.Sprintf("host-%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			hosts = append(hosts, g)
		}
		check := e.groupFormat(name, format)
		checks = append(checks, check)
		for _, c := range []string{"b2_update_bucket", "b2_upload_file", "b2_delete_file_version", "b2_copy_file"} {
			e.srv.SetFault(c, b2emu.Fault{LostRate: 0.3, LostAs: b2emu.LostMixed, LateWait: 100 * time.Millisecond})
		}
		storetest.FaultyIncrements(t, hosts, check, 4, 10)
		for _, c := range []string{"b2_update_bucket", "b2_upload_file", "b2_delete_file_version", "b2_copy_file"} {
			e.srv.SetFault(c, b2emu.Fault{})
		}
	}
	var lost int64
	for _, n := range e.srv.Stats().Lost {
		lost += n
	}
	if lost == 0 {
		t.Fatal("no reply was lost: the test proved nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := e.store()
	before := storetest.Names(t, s)
	res, err := core.CollectGarbage(ctx, s, core.GCOptions{Grace: 0, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatalf("gc after lost replies: %v", err)
	}
	t.Logf("%d replies lost; gc: %d files, %d referenced, %d deleted", lost, len(before), res.Referenced, len(res.Garbage))
	if len(res.Garbage) == 0 {
		t.Fatal("gc found no garbage: superseded versions and orphans of lost replies should be there")
	}
	for _, g := range checks {
		v, err := g.View(ctx)
		if err != nil {
			t.Fatalf("group %s unreadable after gc: %v", g.Name(), err)
		}
		for name := range v.All() {
			if _, err := readObject(g, name); err != nil {
				t.Fatalf("group %s: %s unreadable after gc: %v", g.Name(), name, err)
			}
		}
		if v, err := readObject(g, "counter"); err != nil || v != "40" {
			t.Fatalf("group %s: counter = %q, %v after gc, want 40", g.Name(), v, err)
		}
	}
}
