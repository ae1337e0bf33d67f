package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

// VersionKey returns a new random version key: 40 lower-case hex digits,
// the shape of the keys the engine gives versions.
func VersionKey() string {
	var b [20]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Upload stores data as name in s, marked as written by group ("":
// unmarked, as blazer's x/consistent writes), and fails t if it cannot.
func Upload(t testing.TB, s core.Store, name, data, group string) core.FileInfo {
	t.Helper()
	fi, err := s.Upload(context.Background(), name, strings.NewReader(data), int64(len(data)), group)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// Commit stores data as object name of g, replacing whatever version it
// has, and returns the new version's key; it fails t if it cannot.
func Commit(t testing.TB, g *core.Group, name, data string) string {
	t.Helper()
	ctx := context.Background()
	key, err := Key(ctx, g, name)
	if errors.Is(err, core.ErrNotExist) {
		key = ""
	} else if err != nil {
		t.Fatal(err)
	}
	nk, err := g.Commit(ctx, name, key, strings.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return nk
}

// DataFile is the B2 file of version key of object name of g when the
// version is not inline. It is written out here, independently of the
// formats' code, so that tests of gc check core's naming against it.
func DataFile(g *core.Group, name, key string) string {
	if g.Format() == core.FormatB2cfs {
		return ".b2cfs/data/" + g.Name() + "/" + key
	}
	return name + "/" + key
}

// Names lists every file of s, in name order; it fails t if it cannot.
func Names(t testing.TB, s core.Store) []string {
	t.Helper()
	files, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// Tick returns a moment strictly after the uploads made before it and
// strictly before those made after it, as B2 (in milliseconds) and
// memstore record their times.
func Tick() time.Time {
	time.Sleep(10 * time.Millisecond)
	now := time.Now()
	time.Sleep(10 * time.Millisecond)
	return now
}
