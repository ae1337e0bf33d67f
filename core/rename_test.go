package core_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// TestRenameReplacesOnlyTheTargetSeen: a rename replaces its target only
// at the version the caller saw (Move.ToKey); a target changed or created
// since fails the whole rename with ErrConflict and changes nothing.
func TestRenameReplacesOnlyTheTargetSeen(t *testing.T) {
	bothFormats(t, testRenameReplacesOnlyTheTargetSeen)
}

func testRenameReplacesOnlyTheTargetSeen(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{IndexTTL: -1})
	other := newGroup(t, s, format, core.Options{IndexTTL: -1})
	put := func(g *core.Group, name, key, data string) string {
		t.Helper()
		k, err := g.Commit(ctx, name, key, strings.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	target := put(g, "t", "", "old")
	src := put(g, "s", "", "new")
	// Another host changes the target after this one saw it.
	put(other, "t", target, "theirs")
	err := g.Rename(ctx, []core.Move{{From: "s", To: "t", Key: src, ToKey: target}})
	if !errors.Is(err, core.ErrConflict) {
		t.Fatalf("rename over a target changed since it was seen: %v, want ErrConflict", err)
	}
	if got := read(t, g, "t"); got != "theirs" {
		t.Fatalf("target after the refused rename: %q, want theirs", got)
	}
	if got := read(t, g, "s"); got != "new" {
		t.Fatalf("source after the refused rename: %q, want new", got)
	}
	// A target that appeared after the caller saw none.
	put(other, "u", "", "created elsewhere")
	if err := g.Rename(ctx, []core.Move{{From: "s", To: "u", Key: src}}); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("rename over a target created since: %v, want ErrConflict", err)
	}
	// The version seen: replaced.
	cur, err := storetest.Key(ctx, g, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Rename(ctx, []core.Move{{From: "s", To: "t", Key: src, ToKey: cur}}); err != nil {
		t.Fatalf("rename over the target seen: %v", err)
	}
	if got := read(t, g, "t"); got != "new" {
		t.Fatalf("target after the rename: %q, want new", got)
	}
}
