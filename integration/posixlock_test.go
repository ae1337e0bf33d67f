package integration

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
)

// POSIX locks belong to a process (traditional fcntl locks) or to an open
// file description (OFD locks), so each lock owner of these tests is a
// helper process: this test binary run again with B2CFS_POSIXLOCK_HELPER=1
// (TestPosixLockHelper). It reads requests as JSON lines on stdin and
// answers each with a line on stdout. Its calls run on one OS thread, whose
// id it reports first, so that a signal sent to that thread (tgkill)
// interrupts a waiting F_SETLKW.
const posixHelperEnv = "B2CFS_POSIXLOCK_HELPER"

const posixPrefix = "posixlock-helper: "

// Linux's OFD lock commands (not in package syscall).
const (
	fOFDGetlk  = 36
	fOFDSetlk  = 37
	fOFDSetlkw = 38
)

// posixReq is one request to a helper.
type posixReq struct {
	Op    string `json:"op"` // open, close, setlk, setlkw, getlk, ofd-setlk, ofd-setlkw, ofd-getlk
	Path  string `json:"path,omitempty"`
	FD    int    `json:"fd,omitempty"`
	Type  string `json:"type,omitempty"` // r, w, u
	Start int64  `json:"start,omitempty"`
	Len   int64  `json:"len,omitempty"` // 0: to the end of the file
	To    string `json:"to,omitempty"`  // increment: the counter file
}

// posixRes is a helper's answer.
type posixRes struct {
	Errno int    `json:"errno"`
	FD    int    `json:"fd,omitempty"`
	Type  string `json:"type,omitempty"` // getlk: r, w or u
	Start int64  `json:"start,omitempty"`
	Len   int64  `json:"len,omitempty"`
	PID   int32  `json:"pid,omitempty"`
	Took  int64  `json:"took"` // nanoseconds
}

func lockType(s string) int16 {
	switch s {
	case "r":
		return syscall.F_RDLCK
	case "w":
		return syscall.F_WRLCK
	}
	return syscall.F_UNLCK
}

func lockTypeName(t int16) string {
	switch t {
	case syscall.F_RDLCK:
		return "r"
	case syscall.F_WRLCK:
		return "w"
	}
	return "u"
}

// kernelSigaction is struct sigaction as the rt_sigaction system call
// takes it on amd64 and arm64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const saRestart = 0x10000000

// clearRestart drops SA_RESTART from the handler Go installed for sig, so
// that an interrupted F_SETLKW returns EINTR instead of being restarted by
// the kernel (FUSE answers an interrupted lock with ERESTARTSYS).
func clearRestart(sig syscall.Signal) error {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return fmt.Errorf("struct sigaction layout unknown on %s", runtime.GOARCH)
	}
	var sa kernelSigaction
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&sa)), 8, 0, 0); e != 0 {
		return e
	}
	sa.flags &^= saRestart
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0); e != 0 {
		return e
	}
	return nil
}

// TestPosixLockHelper is the helper process of the POSIX lock tests; run
// directly, it does nothing.
func TestPosixLockHelper(t *testing.T) {
	ready := func() {
		restart := "restart"
		if err := clearRestart(syscall.SIGALRM); err == nil {
			restart = "norestart"
		}
		fmt.Printf("%sready %d %s\n", posixPrefix, syscall.Gettid(), restart)
	}
	serveHelper(t, posixHelperEnv, posixPrefix, ready, func(r posixReq) posixRes {
		var res posixRes
		start := time.Now()
		var err error
		switch r.Op {
		case "open":
			res.FD, err = syscall.Open(r.Path, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		case "close":
			err = syscall.Close(r.FD)
		case "setlk", "setlkw", "getlk", "ofd-setlk", "ofd-setlkw", "ofd-getlk":
			cmd := map[string]int{"setlk": syscall.F_SETLK, "setlkw": syscall.F_SETLKW, "getlk": syscall.F_GETLK,
				"ofd-setlk": fOFDSetlk, "ofd-setlkw": fOFDSetlkw, "ofd-getlk": fOFDGetlk}[r.Op]
			lk := syscall.Flock_t{Type: lockType(r.Type), Whence: io.SeekStart, Start: r.Start, Len: r.Len}
			err = syscall.FcntlFlock(uintptr(r.FD), cmd, &lk)
			if strings.HasSuffix(r.Op, "getlk") && err == nil {
				res.Type, res.Start, res.Len, res.PID = lockTypeName(lk.Type), lk.Start, lk.Len, lk.Pid
			}
		case "increment":
			err = lockedIncrement(r.Path, r.To, r.Start, r.Len)
		default:
			t.Fatalf("unknown op %q", r.Op)
		}
		res.Took = int64(time.Since(start))
		res.Errno = errnoInt(err)
		return res
	})
}

// lockedIncrement adds one to the number in file to under a write lock on
// start..+length of file lock (F_SETLKW), which it holds until to is
// closed (and so committed).
func lockedIncrement(lock, to string, start, length int64) error {
	lfd, err := syscall.Open(lock, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(lfd) // releases the lock, if still held
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: start, Len: length}
	if err := syscall.FcntlFlock(uintptr(lfd), syscall.F_SETLKW, &lk); err != nil {
		return err
	}
	fd, err := syscall.Open(to, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := syscall.Pread(fd, buf, 0)
	if err != nil {
		syscall.Close(fd)
		return err
	}
	var v int
	fmt.Sscan(string(buf[:n]), &v)
	out := []byte(fmt.Sprintf("%d\n", v+1))
	if err := syscall.Ftruncate(fd, 0); err != nil {
		syscall.Close(fd)
		return err
	}
	if _, err := syscall.Pwrite(fd, out, 0); err != nil {
		syscall.Close(fd)
		return err
	}
	if err := syscall.Close(fd); err != nil {
		return err
	}
	lk.Type = syscall.F_UNLCK
	return syscall.FcntlFlock(uintptr(lfd), syscall.F_SETLK, &lk)
}

// posixHelper is a running helper process: one POSIX lock owner.
type posixHelper struct {
	*helperProc
	name      string
	pid, tid  int
	norestart bool // SIGALRM interrupts F_SETLKW with EINTR
}

func startPosixHelper(t *testing.T, name string) *posixHelper {
	t.Helper()
	p := startHelperProc(t, "helper "+name, "TestPosixLockHelper", posixHelperEnv, posixPrefix, 30*time.Second, "GODEBUG=asyncpreemptoff=1")
	h := &posixHelper{helperProc: p, name: name, pid: p.cmd.Process.Pid}
	l, ok := h.recvLine(time.Minute)
	if !ok {
		t.Fatalf("helper %s not ready after a minute", name)
	}
	var word string
	if _, err := fmt.Sscanf(l, "ready %d %s", &h.tid, &word); err != nil {
		t.Fatalf("helper %s: %q: %v", name, l, err)
	}
	h.norestart = word == "norestart"
	return h
}

// recv waits up to d for the answer to the request sent last; ok is false
// when none came.
func (h *posixHelper) recv(d time.Duration) (res posixRes, ok bool) {
	h.t.Helper()
	ok = h.helperProc.recv(d, &res)
	return res, ok
}

// do sends r and waits for its answer. Each call is bounded by the
// mount's own deadlines; the bound here only keeps a hung mount from
// hanging the test.
func (h *posixHelper) do(r posixReq) posixRes {
	h.t.Helper()
	h.send(r)
	res, ok := h.recv(2 * time.Minute)
	if !ok {
		h.cmd.Process.Kill()
		h.t.Fatalf("helper %s: no answer to %+v after 2 minutes", h.name, r)
	}
	return res
}

// open opens path read-write and returns the descriptor.
func (h *posixHelper) open(path string) int {
	h.t.Helper()
	res := h.do(posixReq{Op: "open", Path: path})
	if res.Errno != 0 {
		h.t.Fatalf("helper %s: open %s: %v", h.name, path, syscall.Errno(res.Errno))
	}
	return res.FD
}

// setlk asks for a lock (op setlk, setlkw, ofd-setlk, ...) and returns the
// errno.
func (h *posixHelper) setlk(op string, fd int, typ string, start, length int64) syscall.Errno {
	h.t.Helper()
	return syscall.Errno(h.do(posixReq{Op: op, FD: fd, Type: typ, Start: start, Len: length}).Errno)
}

// must asks for a lock that must be granted.
func (h *posixHelper) must(op string, fd int, typ string, start, length int64) {
	h.t.Helper()
	if e := h.setlk(op, fd, typ, start, length); e != 0 {
		h.t.Fatalf("helper %s: %s %s %d+%d: %v, want success", h.name, op, typ, start, length, e)
	}
}

// busy asks for a lock that must be refused at once with EAGAIN.
func (h *posixHelper) busy(op string, fd int, typ string, start, length int64) {
	h.t.Helper()
	res := h.do(posixReq{Op: op, FD: fd, Type: typ, Start: start, Len: length})
	if e := syscall.Errno(res.Errno); e != syscall.EAGAIN {
		h.t.Fatalf("helper %s: %s %s %d+%d: %v, want EAGAIN", h.name, op, typ, start, length, e)
	}
	if d := time.Duration(res.Took); d > 10*time.Second { // a wait would last as long as the holder: generous on a loaded machine
		h.t.Fatalf("helper %s: refused %s took %v", h.name, op, d)
	}
}

// getlk asks F_GETLK (or F_OFD_GETLK) about typ on start..+length.
func (h *posixHelper) getlk(op string, fd int, typ string, start, length int64) posixRes {
	h.t.Helper()
	res := h.do(posixReq{Op: op, FD: fd, Type: typ, Start: start, Len: length})
	if res.Errno != 0 {
		h.t.Fatalf("helper %s: %s: %v", h.name, op, syscall.Errno(res.Errno))
	}
	return res
}

// interrupt sends SIGALRM to the helper's calling thread.
func (h *posixHelper) interrupt() {
	h.t.Helper()
	if err := syscall.Tgkill(h.pid, h.tid, syscall.SIGALRM); err != nil {
		h.t.Fatal(err)
	}
}

// posixHosts mounts group twice on a new bucket, with a file f written
// through the first mount (the second sees it at once), and returns the
// mounts and the group as read from B2.
func posixHosts(t *testing.T, group string) (a, b *mount, g *core.Group) {
	t.Helper()
	e := newEnv(t, b2emu.Config{})
	a = e.mount(group)
	sh(t, a.dir, `echo data > f`)
	b = e.mount(group)
	return a, b, e.group(group)
}

// posixOwner starts the helper name, one lock owner, with f of m open.
func posixOwner(t *testing.T, name string, m *mount) (*posixHelper, int) {
	t.Helper()
	h := startPosixHelper(t, name)
	return h, h.open(m.path("f"))
}

// lockHolders returns the live holders of the lock of file in group, read
// from B2, as "mode@pid" sorted, where pid is the b2cfs process (host)
// holding it.
func lockHolders(t *testing.T, g *core.Group, file string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, err := g.Holders(ctx, lockName(file))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		if h.Expires.IsZero() || time.Now().Before(h.Expires) {
			out = append(out, fmt.Sprintf("%s@%d", h.Mode, h.PID))
		}
	}
	sort.Strings(out)
	return out
}

// wantHolders fails unless the lock of file is held as want ("mode@pid").
func wantHolders(t *testing.T, g *core.Group, file string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := lockHolders(t, g, file); !slices.Equal(got, want) {
		t.Fatalf("holders of the lock of %s: %v, want %v", file, got, want)
	}
}

// held is a holder entry as lockHolders shows it: the lock record names
// the process that took the lock.
func held(mode string, h *posixHelper) string { return fmt.Sprintf("%s@%d", mode, h.pid) }

// refusalLines counts the mount's log lines about refused locks of pid.
func refusalLines(m *mount, pid int) int {
	n := 0
	for _, l := range strings.Split(m.log.String(), "\n") {
		if strings.Contains(l, "lock refused") && strings.Contains(l, fmt.Sprintf("pid=%d ", pid)) {
			n++
		}
	}
	return n
}

// TestPosixLockReadRangesAcrossHosts: read locks on different ranges from
// two hosts coexist (both hold the file's lock shared); a write lock on
// yet another range is refused at once, since the distributed lock is
// whole-file; F_GETLK reports the other host's read lock (whole file, the
// pid from the lock record) or F_UNLCK; the refusals are logged once.
func TestPosixLockReadRangesAcrossHosts(t *testing.T) {
	a, b, g := posixHosts(t, "pr")
	ha, fa := posixOwner(t, "a", a)
	hb, fb := posixOwner(t, "b", b)

	ha.must("setlk", fa, "r", 0, 10)
	hb.must("setlk", fb, "r", 100, 10)
	wantHolders(t, g, "f", held("shared", ha), held("shared", hb))
	ha.must("setlk", fa, "r", 50, 0) // a second range, to the end of the file
	wantHolders(t, g, "f", held("shared", ha), held("shared", hb))

	for range 5 {
		hb.busy("setlk", fb, "w", 200, 10)
	}
	if n := refusalLines(b, hb.pid); n != 1 {
		t.Fatalf("%d log lines about refusals of helper b, want 1:\n%s", n, b.log.String())
	}
	wantHolders(t, g, "f", held("shared", ha), held("shared", hb))

	// F_GETLK: a read lock is placeable; a write lock is not, because of
	// the other host's read lock.
	if res := hb.getlk("getlk", fb, "r", 500, 1); res.Type != "u" {
		t.Fatalf("F_GETLK read beside read locks: %+v, want F_UNLCK", res)
	}
	res := hb.getlk("getlk", fb, "w", 500, 1)
	if res.Type != "r" || res.Start != 0 || res.Len != 0 || res.PID != int32(ha.pid) {
		t.Fatalf("F_GETLK write beside host A's read lock: %+v, want a read lock of the whole file by pid %d (the process holding it through A)", res, ha.pid)
	}

	ha.must("setlk", fa, "u", 0, 0)
	wantHolders(t, g, "f", held("shared", hb))
	hb.must("setlk", fb, "w", 200, 10) // now the only holder: upgrades
	wantHolders(t, g, "f", held("exclusive", hb))
	hb.must("setlk", fb, "u", 0, 0)
	wantHolders(t, g, "f")
}

// TestPosixLockWriteRange: a write lock on one range keeps the other host
// out of every range, reads and writes alike; F_GETLK there reports it;
// partial unlocks keep the lock exclusive while a write range is left,
// downgrade it to shared when only read ranges are left and release it
// with the last range; a waiting F_SETLKW on the other host gets the lock
// once it is free.
func TestPosixLockWriteRange(t *testing.T) {
	a, b, g := posixHosts(t, "pw")
	ha, fa := posixOwner(t, "a", a)
	hb, fb := posixOwner(t, "b", b)

	ha.must("setlk", fa, "w", 0, 100)
	wantHolders(t, g, "f", held("exclusive", ha))
	hb.busy("setlk", fb, "r", 1000, 10)
	hb.busy("setlk", fb, "w", 0, 0)
	res := hb.getlk("getlk", fb, "r", 1000, 10)
	if res.Type != "w" || res.Start != 0 || res.Len != 0 || res.PID != int32(ha.pid) {
		t.Fatalf("F_GETLK beside host A's write lock: %+v, want a write lock of the whole file by pid %d", res, ha.pid)
	}
	if res := ha.getlk("getlk", fa, "w", 0, 0); res.Type != "u" {
		t.Fatalf("F_GETLK by the holder itself: %+v, want F_UNLCK", res)
	}

	// Partial unlocks: 0-39 and 60-99 are still write locks.
	ha.must("setlk", fa, "u", 40, 20)
	hb.busy("setlk", fb, "r", 40, 20)
	ha.must("setlk", fa, "u", 0, 40)
	hb.busy("setlk", fb, "r", 0, 10)
	wantHolders(t, g, "f", held("exclusive", ha))
	// A read range beside the last write range; unlocking the write range
	// downgrades the lock, in place.
	ha.must("setlk", fa, "r", 200, 10)
	ha.must("setlk", fa, "u", 60, 40)
	wantHolders(t, g, "f", held("shared", ha))
	hb.must("setlk", fb, "r", 0, 0)
	hb.busy("setlk", fb, "w", 300, 1)
	wantHolders(t, g, "f", held("shared", ha), held("shared", hb))
	hb.must("setlk", fb, "u", 0, 0)

	// A waiting F_SETLKW on B gets the lock once A releases it.
	ha.must("setlk", fa, "w", 200, 10) // upgrade: B holds nothing now
	hb.send(posixReq{Op: "setlkw", FD: fb, Type: "w", Start: 5, Len: 1})
	if res, ok := hb.recv(2 * time.Second); ok {
		t.Fatalf("F_SETLKW on B while A holds a write lock returned %+v", res)
	}
	released := time.Now()
	ha.must("setlk", fa, "u", 200, 10) // A's last range
	res, ok := hb.recv(10 * time.Second)
	if !ok || res.Errno != 0 {
		t.Fatalf("F_SETLKW on B after A released: %+v (answered: %v)", res, ok)
	}
	t.Logf("B's waiting F_SETLKW got the lock %v after A released", time.Since(released))
	wantHolders(t, g, "f", held("exclusive", hb))
	hb.must("setlk", fb, "u", 0, 0)
	wantHolders(t, g, "f")
}

// TestPosixLockUpgradeDowngrade: an owner holding a read lock upgrades to
// a write lock in place: F_SETLK is refused with EAGAIN while another host
// holds a read lock, and the read lock stays held; F_SETLKW waits, an
// interrupt ends the wait with EINTR and still leaves the read lock held,
// and once the other host lets go the upgrade completes without the lock
// ever being free. A downgrade lets the other host in again.
func TestPosixLockUpgradeDowngrade(t *testing.T) {
	a, b, g := posixHosts(t, "pu")
	ha, fa := posixOwner(t, "a", a)
	hb, fb := posixOwner(t, "b", b)

	ha.must("setlk", fa, "r", 0, 0)
	hb.must("setlk", fb, "r", 0, 0)
	ha.busy("setlk", fa, "w", 0, 0)
	wantHolders(t, g, "f", held("shared", ha), held("shared", hb))

	if ha.norestart {
		ha.send(posixReq{Op: "setlkw", FD: fa, Type: "w", Start: 0, Len: 0})
		if res, ok := ha.recv(1500 * time.Millisecond); ok {
			t.Fatalf("upgrade with F_SETLKW beside a read lock returned %+v", res)
		}
		start := time.Now()
		ha.interrupt()
		res, ok := ha.recv(5 * time.Second)
		if !ok || syscall.Errno(res.Errno) != syscall.EINTR {
			t.Fatalf("interrupted F_SETLKW upgrade: %+v (answered: %v), want EINTR", res, ok)
		}
		t.Logf("interrupted upgrade returned EINTR %v after the signal", time.Since(start))
		// The read lock is still A's: B cannot write, and the record
		// still has both read locks.
		wantHolders(t, g, "f", held("shared", ha), held("shared", hb))
	} else {
		t.Log("SA_RESTART could not be cleared on this architecture: the interrupted F_SETLKW is not checked")
	}
	hb.busy("setlk", fb, "w", 0, 0)

	// The upgrade waits for B and completes when B unlocks.
	ha.send(posixReq{Op: "setlkw", FD: fa, Type: "w", Start: 0, Len: 0})
	if res, ok := ha.recv(1500 * time.Millisecond); ok {
		t.Fatalf("upgrade with F_SETLKW beside a read lock returned %+v", res)
	}
	hb.must("setlk", fb, "u", 0, 0)
	res, ok := ha.recv(10 * time.Second)
	if !ok || res.Errno != 0 {
		t.Fatalf("F_SETLKW upgrade after B unlocked: %+v (answered: %v)", res, ok)
	}
	wantHolders(t, g, "f", held("exclusive", ha))
	hb.busy("setlk", fb, "r", 0, 0)

	// Downgrade in place: B may read, not write.
	ha.must("setlk", fa, "r", 0, 0)
	wantHolders(t, g, "f", held("shared", ha))
	hb.must("setlk", fb, "r", 0, 0)
	hb.busy("setlk", fb, "w", 0, 0)
	ha.must("setlk", fa, "u", 0, 0)
	hb.must("setlk", fb, "u", 0, 0)
	wantHolders(t, g, "f")
}

// TestPosixLockSameHost: two processes on one mount are two owners, and
// they conflict as processes on two hosts do (the lock record has an entry
// for each); F_GETLK names the other process. Any close of the file by a
// process releases its POSIX locks; an OFD lock stays until its own
// descriptor is closed.
func TestPosixLockSameHost(t *testing.T) {
	a, b, g := posixHosts(t, "ps")
	h1, f1 := posixOwner(t, "a1", a)
	h2, f2 := posixOwner(t, "a2", a)
	hb, fb := posixOwner(t, "b", b)

	h1.must("setlk", f1, "w", 0, 10)
	h2.busy("setlk", f2, "w", 20, 10)
	h2.busy("setlk", f2, "r", 20, 10)
	res := h2.getlk("getlk", f2, "r", 20, 10)
	if res.Type != "w" || res.PID != int32(h1.pid) {
		t.Fatalf("F_GETLK beside another process's write lock on the same host: %+v, want a write lock by pid %d", res, h1.pid)
	}
	h1.must("setlk", f1, "r", 0, 10) // downgrade: both may read
	h2.must("setlk", f2, "r", 20, 10)
	wantHolders(t, g, "f", held("shared", h1), held("shared", h2))
	res = h2.getlk("getlk", f2, "w", 20, 10)
	if res.Type != "r" || res.PID != int32(h1.pid) {
		t.Fatalf("F_GETLK write beside another process's read lock: %+v, want a read lock by pid %d", res, h1.pid)
	}
	hb.busy("setlk", fb, "w", 0, 0)

	// Closing another descriptor of the file releases h1's POSIX locks.
	g1 := h1.open(a.path("f"))
	if e := syscall.Errno(h1.do(posixReq{Op: "close", FD: g1}).Errno); e != 0 {
		t.Fatal(e)
	}
	wantHolders(t, g, "f", held("shared", h2))
	h2.must("setlk", f2, "u", 0, 0)
	wantHolders(t, g, "f")

	// An OFD lock belongs to its open file description: closing another
	// descriptor of the process leaves it; closing its own releases it.
	h1.must("ofd-setlk", f1, "w", 0, 0)
	h2.busy("setlk", f2, "r", 0, 0)
	if res := h2.getlk("ofd-getlk", f2, "r", 0, 0); res.Type != "w" {
		t.Fatalf("F_OFD_GETLK beside an OFD write lock: %+v", res)
	}
	g1 = h1.open(a.path("f"))
	if e := syscall.Errno(h1.do(posixReq{Op: "close", FD: g1}).Errno); e != 0 {
		t.Fatal(e)
	}
	wantHolders(t, g, "f", held("exclusive", h1))
	if e := syscall.Errno(h1.do(posixReq{Op: "close", FD: f1}).Errno); e != 0 {
		t.Fatal(e)
	}
	eventually(t, 5*time.Second, func() error {
		if got := lockHolders(t, g, "f"); len(got) != 0 {
			return fmt.Errorf("holders after the OFD lock's descriptor closed: %v", got)
		}
		return nil
	})
	hb.must("setlk", fb, "w", 0, 0)
	hb.must("setlk", fb, "u", 0, 0)
}

// TestPosixLockCounter: two processes on each of two mounts add one to a
// counter file 10 times each, each time under a write lock on one byte
// range of a lock file (F_SETLKW), opening the counter once locked: the
// byte-range lock excludes across hosts and within one, so no increment is
// lost.
func TestPosixLockCounter(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("pc", "index_ttl=0.1")
	sh(t, a.dir, `echo 0 > c && touch c.lock`)
	b := e.mount("pc", "index_ttl=0.1")
	const rounds = 10
	type worker struct {
		h *posixHelper
		m *mount
	}
	var ws []worker
	for _, m := range []*mount{a, b} {
		for i := range 2 {
			ws = append(ws, worker{startPosixHelper(t, fmt.Sprintf("%s-%d", filepath.Base(m.dir), i)), m})
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(ws))
	var waited atomic.Int64 // increments that waited for the lock
	for _, w := range ws {
		h, m := w.h, w.m
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				h.send(posixReq{Op: "increment", Path: m.path("c.lock"), To: m.path("c"), Start: 1 << 30, Len: 1})
				res, ok := h.recv(2 * time.Minute)
				if !ok || res.Errno != 0 {
					errs <- fmt.Errorf("helper %s: increment: %v (answered: %v)", h.name, syscall.Errno(res.Errno), ok)
					return
				}
				if time.Duration(res.Took) >= 30*time.Millisecond { // about core's first poll
					waited.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := object(t, e.group("pc"), "c")
	if err != nil || strings.TrimSpace(got) != fmt.Sprint(4*rounds) {
		t.Fatalf("counter is %q (%v), want %d", got, err, 4*rounds)
	}
	t.Logf("%d increments under byte-range locks in %v, %d of them after waiting for the lock", 4*rounds, time.Since(start), waited.Load())
}
