package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

// Run runs the suite on stores made by newStore; each call must return a
// store over a fresh, empty bucket.
func Run(t *testing.T, newStore func(t *testing.T) core.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s core.Store)
	}{
		{"InfoCAS", testInfoCAS},
		{"InfoRejected", testInfoRejected},
		{"UploadDownload", testUploadDownload},
		{"Ranges", testRanges},
		{"Empty", testEmpty},
		{"NotExist", testNotExist},
		{"VersionsAndDelete", testVersionsAndDelete},
		{"OddNames", testOddNames},
		{"GroupMark", testGroupMark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func testInfoCAS(t *testing.T, s core.Store) {
	c := ctx(t)
	bi, err := s.BucketInfo(c)
	if err != nil {
		t.Fatal(err)
	}
	info := map[string]string{"k1": "v1"}
	for k, v := range bi.Info {
		info[k] = v
	}
	nb, err := s.UpdateBucketInfo(c, bi.Revision, info)
	if err != nil {
		t.Fatal(err)
	}
	if nb.Revision <= bi.Revision || nb.Info["k1"] != "v1" {
		t.Fatalf("update answered rev %d info %v, want rev > %d and k1=v1", nb.Revision, nb.Info, bi.Revision)
	}
	again, err := s.BucketInfo(c)
	if err != nil {
		t.Fatal(err)
	}
	if again.Revision != nb.Revision || again.Info["k1"] != "v1" {
		t.Fatalf("read back rev %d info %v, want %d and k1=v1", again.Revision, again.Info, nb.Revision)
	}
	// A stale revision must fail and change nothing.
	info["k1"] = "v2"
	if _, err := s.UpdateBucketInfo(c, bi.Revision, info); !errors.Is(err, core.ErrRevisionMismatch) {
		t.Fatalf("stale update: got %v, want ErrRevisionMismatch", err)
	}
	after, err := s.BucketInfo(c)
	if err != nil {
		t.Fatal(err)
	}
	if after.Info["k1"] != "v1" || after.Revision != nb.Revision {
		t.Fatalf("stale update changed the bucket: %v rev %d", after.Info, after.Revision)
	}
}

func testInfoRejected(t *testing.T, s core.Store) {
	c := ctx(t)
	bi, err := s.BucketInfo(c)
	if err != nil {
		t.Fatal(err)
	}
	info := map[string]string{"big": strings.Repeat("x", 20000)}
	if _, err := s.UpdateBucketInfo(c, bi.Revision, info); !errors.Is(err, core.ErrInfoRejected) {
		t.Fatalf("oversize info: got %v, want ErrInfoRejected", err)
	}
}

func put(t *testing.T, s core.Store, name string, data []byte) core.FileInfo {
	t.Helper()
	return putMarked(t, s, name, data, "")
}

func putMarked(t *testing.T, s core.Store, name string, data []byte, group string) core.FileInfo {
	t.Helper()
	fi, err := s.Upload(ctx(t), name, bytes.NewReader(data), int64(len(data)), group)
	if err != nil {
		t.Fatalf("upload %q: %v", name, err)
	}
	if fi.ID == "" || fi.Size != int64(len(data)) {
		t.Fatalf("upload %q answered %+v", name, fi)
	}
	return fi
}

func get(t *testing.T, s core.Store, name string, off, n int64) ([]byte, core.FileInfo) {
	t.Helper()
	rc, fi, err := s.Download(ctx(t), name, off, n)
	if err != nil {
		t.Fatalf("download %q [%d,+%d): %v", name, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", name, err)
	}
	return b, fi
}

func testUploadDownload(t *testing.T, s core.Store) {
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	fi := put(t, s, "dir/file", data)
	b, gi := get(t, s, "dir/file", 0, -1)
	if !bytes.Equal(b, data) {
		t.Fatalf("downloaded %d bytes, want %d equal", len(b), len(data))
	}
	if gi.ID != fi.ID {
		t.Fatalf("download id %q, upload id %q", gi.ID, fi.ID)
	}
	st, err := s.Stat(ctx(t), "dir/file")
	if err != nil || st.ID != fi.ID || st.Size != int64(len(data)) {
		t.Fatalf("stat = %+v, %v; want %+v", st, err, fi)
	}
}

func testRanges(t *testing.T, s core.Store) {
	data := []byte("hello, world")
	put(t, s, "r", data)
	for _, tc := range []struct {
		off, n int64
		want   string
	}{
		{0, 5, "hello"},
		{7, -1, "world"},
		{7, 100, "world"},
		{11, 1, "d"},
		{12, -1, ""},
		{50, 3, ""},
	} {
		if b, _ := get(t, s, "r", tc.off, tc.n); string(b) != tc.want {
			t.Errorf("range [%d,+%d) = %q, want %q", tc.off, tc.n, b, tc.want)
		}
	}
}

func testEmpty(t *testing.T, s core.Store) {
	put(t, s, "empty", nil)
	if b, _ := get(t, s, "empty", 0, -1); len(b) != 0 {
		t.Fatalf("empty file read %d bytes", len(b))
	}
}

func testNotExist(t *testing.T, s core.Store) {
	if _, _, err := s.Download(ctx(t), "missing", 0, -1); !errors.Is(err, core.ErrNotExist) {
		t.Fatalf("download missing: %v, want ErrNotExist", err)
	}
	if _, err := s.Stat(ctx(t), "missing"); !errors.Is(err, core.ErrNotExist) {
		t.Fatalf("stat missing: %v, want ErrNotExist", err)
	}
}

func testVersionsAndDelete(t *testing.T, s core.Store) {
	v1 := put(t, s, "v", []byte("one"))
	v2 := put(t, s, "v", []byte("two"))
	if b, _ := get(t, s, "v", 0, -1); string(b) != "two" {
		t.Fatalf("newest = %q, want two", b)
	}
	if err := s.Delete(ctx(t), "v", v2.ID); err != nil {
		t.Fatal(err)
	}
	if b, _ := get(t, s, "v", 0, -1); string(b) != "one" {
		t.Fatalf("after deleting newest = %q, want one", b)
	}
	if err := s.Delete(ctx(t), "v", v1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx(t), "v"); !errors.Is(err, core.ErrNotExist) {
		t.Fatalf("stat after deleting all: %v, want ErrNotExist", err)
	}
}

func testOddNames(t *testing.T, s core.Store) {
	for _, name := range []string{"a b+c", "100%/x?y#z", "ünï/cødé", "a%2Fb"} {
		put(t, s, name, []byte(name))
		if b, _ := get(t, s, name, 0, -1); string(b) != name {
			t.Errorf("%q read back %q", name, b)
		}
	}
}

func testGroupMark(t *testing.T, s core.Store) {
	// Above the large-file threshold of the large-file conformance run too.
	big := bytes.Repeat([]byte("m"), 200_000)
	marked := putMarked(t, s, "marked/a", []byte("a"), "Grp-1_.~")
	putMarked(t, s, "marked/big", big, "g2")
	unmarked := put(t, s, "unmarked/a", []byte("u"))
	if _, err := s.Copy(ctx(t), "marked/a", marked.ID, "marked/copy"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(ctx(t), "unmarked/a", unmarked.ID, "unmarked/copy"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"marked/a": "Grp-1_.~", "marked/big": "g2", "marked/copy": "Grp-1_.~", "unmarked/a": "", "unmarked/copy": ""}
	files, err := s.List(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		g, ok := want[f.Name]
		if !ok {
			t.Errorf("listed unexpected %q", f.Name)
			continue
		}
		delete(want, f.Name)
		if f.Group != g {
			t.Errorf("%q listed with group %q, want %q", f.Name, f.Group, g)
		}
	}
	if len(want) > 0 {
		t.Errorf("not listed: %v", want)
	}
}
