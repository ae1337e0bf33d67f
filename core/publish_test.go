package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
)

func TestPublish(t *testing.T) { bothFormats(t, testPublish) }

// Publish makes every change visible in one update, or none of them: a
// conflict on one object leaves the group and the bucket as they were.
func testPublish(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{})
	k, err := g.Commit(ctx, "rel/old", "", strings.NewReader("old"), 3)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("z", 3*core.InlineDefault)
	changes := []core.Change{
		{Name: "rel/old", Key: k, Data: strings.NewReader("new"), Size: 3},
		{Name: "rel/big", Data: strings.NewReader(big), Size: int64(len(big))},
	}
	for i := range 10 {
		v := fmt.Sprintf("file %d", i)
		changes = append(changes, core.Change{Name: fmt.Sprintf("rel/f%d", i), Data: strings.NewReader(v), Size: int64(len(v))})
	}
	before := s.Calls()
	var sent int64
	keys, err := g.Publish(ctx, changes, func(n int64) { sent += n })
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(changes) {
		t.Fatalf("%d keys for %d changes", len(keys), len(changes))
	}
	if d := s.Calls()["UpdateBucketInfo"] - before["UpdateBucketInfo"]; d != 1 {
		t.Errorf("publish of %d changes made %d updates, want 1", len(changes), d)
	}
	if want := int64(3 + len(big) + 60); sent != want {
		t.Errorf("progress reported %d bytes, want %d", sent, want)
	}
	other := newGroup(t, s, format, core.Options{})
	if got := read(t, other, "rel/old"); got != "new" {
		t.Errorf("rel/old = %q", got)
	}
	if got := read(t, other, "rel/f7"); got != "file 7" {
		t.Errorf("rel/f7 = %q", got)
	}
	if got := read(t, other, "rel/big"); got != big {
		t.Errorf("rel/big: %d bytes", len(got))
	}

	// One stale precondition: nothing lands, nothing is left behind.
	files := len(s.Files())
	_, err = g.Publish(ctx, []core.Change{
		{Name: "rel/f1", Key: keys[2], Data: strings.NewReader("changed"), Size: 7},
		{Name: "rel/new", Data: strings.NewReader(big), Size: int64(len(big))},
		{Name: "rel/old", Key: k, Data: strings.NewReader("stale"), Size: 5}, // k was replaced
	}, nil)
	if !errors.Is(err, core.ErrConflict) {
		t.Fatalf("publish with a stale key: %v, want ErrConflict", err)
	}
	names, err := other.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "rel/new" {
			t.Errorf("a failed publish left rel/new visible")
		}
	}
	if got := read(t, other, "rel/f1"); got != "file 1" {
		t.Errorf("a failed publish changed rel/f1: %q", got)
	}
	if n := len(s.Files()); n != files {
		t.Errorf("a failed publish left %d files behind (%d before, %d after)", n-files, files, n)
	}
}

// A Publish interrupted during its uploads leaves nothing visible.
func TestPublishInterrupted(t *testing.T) {
	s := memstore.New()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{})
	ctx, cancel := context.WithCancel(testCtx(t))
	var uploads atomic.Int32
	s.SetFault(func(op string) error {
		if op == "Upload" && uploads.Add(1) == 3 {
			cancel()
		}
		return nil
	})
	big := strings.Repeat("q", 2*core.InlineDefault)
	var changes []core.Change
	for i := range 6 {
		changes = append(changes, core.Change{Name: fmt.Sprintf("t/f%d", i), Data: strings.NewReader(big), Size: int64(len(big))})
	}
	if _, err := g.Publish(ctx, changes, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted publish: %v, want context.Canceled", err)
	}
	s.SetFault(nil)
	names, err := newGroup(t, s, core.FormatB2cfs, core.Options{}).List(testCtx(t))
	if err != nil || len(names) != 0 {
		t.Fatalf("after an interrupted publish: %v, %v; want an empty group", names, err)
	}
}
