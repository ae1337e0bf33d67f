package fs_test

import (
	"slices"
	"syscall"
	"testing"

	fusefs "bazil.org/fuse/fs"
)

// calls returns the store's b2_update_bucket and upload counts.
func (w *world) calls() (updates, uploads int) {
	c := w.store.Calls()
	return c["UpdateBucketInfo"], c["Upload"]
}

// names lists h's root directory.
func (h *host) names() []string {
	h.w.t.Helper()
	ents, err := h.root.(fusefs.HandleReadDirAller).ReadDirAll(h.w.ctx)
	if err != nil {
		h.w.t.Fatalf("host %s: readdir: %v", h.name, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name)
	}
	return out
}

// A file created, written and closed is one commit: nothing reaches B2
// before the close, and a small file's close is one b2_update_bucket.
func TestNewFileIsOneCommit(t *testing.T) {
	w := newWorld(t, -1)
	w.seed(map[string]string{"seed": "x"})
	u0, up0 := w.calls()
	f := w.A.open("new", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0)
	f.write("hello", 0)
	w.checkStored("new", absent)
	f.close(0)
	w.checkStored("new", "hello")
	w.B.check("new", "hello")
	if u, up := w.calls(); u-u0 != 1 || up-up0 != 0 {
		t.Errorf("create, write and close made %d updates and %d uploads, want 1 and 0", u-u0, up-up0)
	}
}

// A temporary file renamed before its first close is committed once,
// under its final name; the temporary name never reaches B2.
func TestRenamedBeforeCloseIsOneCommit(t *testing.T) {
	w := newWorld(t, -1)
	w.seed(map[string]string{"seed": "x"})
	u0, _ := w.calls()
	f := w.A.open("tmp", syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL, 0)
	f.write("content", 0)
	w.A.rename("tmp", "final", 0)
	if got := w.A.names(); !slices.Contains(got, "final") || slices.Contains(got, "tmp") {
		t.Errorf("A lists %v after the rename, want final and no tmp", got)
	}
	f.close(0)
	w.checkStored("final", "content")
	w.checkStored("tmp", absent)
	if u, _ := w.calls(); u-u0 != 1 {
		t.Errorf("create, write, rename and close made %d updates, want 1", u-u0)
	}
}

// sed -i: a temporary file written, closed and renamed over the file is
// two updates, and the rename still refuses a file changed elsewhere.
func TestSedInPlaceCost(t *testing.T) {
	w := newWorld(t, -1)
	w.seed(map[string]string{"f": "a\n"})
	w.A.check("f", "a\n")
	u0, up0 := w.calls()
	tmp := w.A.open("sedXYZ", syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL, 0)
	tmp.write("b\n", 0)
	tmp.close(0)
	w.A.rename("sedXYZ", "f", 0)
	w.checkStored("f", "b\n")
	w.checkStored("sedXYZ", absent)
	if u, up := w.calls(); u-u0 > 2 || up-up0 != 0 {
		t.Errorf("sed -i made %d updates and %d uploads, want at most 2 and 0", u-u0, up-up0)
	}

	w.B.put("f", "other host\n") // f changes elsewhere after A read it
	tmp = w.A.open("sedABC", syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL, 0)
	tmp.write("c\n", 0)
	tmp.close(0)
	w.A.rename("sedABC", "f", syscall.EBUSY)
	w.checkStored("f", "other host\n")
}

// A pending file is this host's alone: listed and opened here, unseen
// elsewhere, and unlinking it before its close costs nothing and leaves
// nothing.
func TestPendingFileIsLocal(t *testing.T) {
	w := newWorld(t, -1)
	w.seed(map[string]string{"seed": "x"})
	u0, _ := w.calls()
	f := w.A.open("p", syscall.O_WRONLY|syscall.O_CREAT, 0)
	f.write("data", 0)
	if got := w.A.names(); !slices.Contains(got, "p") {
		t.Errorf("A lists %v, want p in it", got)
	}
	w.A.check("p", "data") // another descriptor on the same host sees it
	if got := w.B.names(); slices.Contains(got, "p") {
		t.Errorf("B lists %v before A closed p", got)
	}
	w.B.check("p", absent)
	w.A.open("p", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, syscall.EEXIST)
	w.A.unlink("p", 0)
	f.close(0)
	w.checkStored("p", absent)
	w.A.check("p", absent)
	if u, _ := w.calls(); u != u0 {
		t.Errorf("create, write and unlink before the close made %d updates, want 0", u-u0)
	}
}

// Two hosts create one name: the first close wins, the second is EBUSY
// with its bytes kept; a create that wrote nothing opens the other's
// file, as O_CREAT opens an existing one.
func TestCreateRace(t *testing.T) {
	w := newWorld(t, -1)
	w.seed(map[string]string{"seed": "x"})
	a := w.A.open("x", syscall.O_WRONLY|syscall.O_CREAT, 0)
	b := w.B.open("x", syscall.O_WRONLY|syscall.O_CREAT, 0)
	a.write("from A", 0)
	b.write("from B", 0)
	a.close(0)
	b.close(syscall.EBUSY)
	w.checkStored("x", "from A")
	if n := w.B.kept(); n != 1 {
		t.Errorf("B kept %d changes, want its rejected bytes", n)
	}

	lockFile := w.A.open("lockfile", syscall.O_RDONLY|syscall.O_CREAT, 0) // flock(1) creates its file so
	w.B.put("lockfile", "B wrote")
	lockFile.close(0)
	w.A.check("lockfile", "B wrote")
	w.checkStored("lockfile", "B wrote")
}

// A read-only descriptor that created a file commits it at its close,
// and one opened later on a pending file commits nothing.
func TestPendingCommittedByItsCreator(t *testing.T) {
	w := newWorld(t, -1)
	w.seed(map[string]string{"seed": "x"})
	f := w.A.open("empty", syscall.O_RDONLY|syscall.O_CREAT, 0)
	other := w.A.open("empty", syscall.O_RDONLY, 0)
	other.close(0)
	w.checkStored("empty", absent)
	f.close(0)
	w.checkStored("empty", "")
	w.B.check("empty", "")
}
