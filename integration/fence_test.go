package integration

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// Fenced leases through real mounts: a holder whose mount was frozen
// (SIGSTOP) past its lease cannot commit once another host took the lock,
// and the lock's waiters take turns across hosts.

// The stale holder is a helper process (see serveHelper), so that this
// test's process holds no descriptor on the frozen mount: a process that
// does can hang on it (every close of a copy of such a descriptor, such
// as the one exec makes in a child, waits for the mount).
const fenceHelperEnv, fencePrefix = "B2CFS_FENCE_HELPER", "fence-helper: "

// fenceReq asks the helper to "hold" (flock(LOCK_EX) Lock, then open Data
// with O_TRUNC and write Content), to "close" Data, or to "flock" Lock
// again without waiting.
type fenceReq struct{ Op, Lock, Data, Content string }

// fenceRes is the errno of the request (0: success) and what failed.
type fenceRes struct {
	Errno int
	Err   string
}

// TestFenceHelper is the helper process of TestStaleHolderRefused.
func TestFenceHelper(t *testing.T) {
	var lock, data *os.File
	serveHelper(t, fenceHelperEnv, fencePrefix, nil, func(r fenceReq) fenceRes {
		var err error
		switch r.Op {
		case "hold":
			if lock, err = os.Open(r.Lock); err == nil {
				err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
			}
			if err == nil {
				data, err = os.OpenFile(r.Data, os.O_WRONLY|os.O_TRUNC, 0)
			}
			if err == nil {
				_, err = data.WriteString(r.Content)
			}
		case "close":
			err = data.Close()
		case "flock":
			err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		}
		if err != nil {
			return fenceRes{Errno: errnoInt(err), Err: err.Error()}
		}
		return fenceRes{}
	})
}

// TestStaleHolderRefused: a process holds flock on job.lock through mount
// A and has written data, not yet closed; mount A is frozen (SIGSTOP) past
// its 2 s lease; a flock on mount B takes the lock and B writes data. When
// A resumes, the holder's close is refused with ENOLCK, B2 keeps B's data,
// A's log says LOCK LOST and A's recovery directory has the refused bytes;
// flock on the holder's descriptor reports the loss once.
func TestStaleHolderRefused(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a, b := e.mount("fence", "lease=2s"), e.mount("fence", "lease=2s")
	g := e.group("fence")
	if err := os.WriteFile(a.path("data"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.path("job.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	readsAs(t, b.path("job.lock"), "")
	h := startHelperProc(t, "stale holder", "TestFenceHelper", fenceHelperEnv, fencePrefix, 30*time.Second)
	ask := func(r fenceReq) fenceRes {
		t.Helper()
		h.send(r)
		var res fenceRes
		if !h.recv(time.Minute, &res) {
			t.Fatalf("helper: no answer to %s", r.Op)
		}
		return res
	}
	if res := ask(fenceReq{Op: "hold", Lock: a.path("job.lock"), Data: a.path("data"), Content: "stale\n"}); res.Err != "" {
		t.Fatalf("hold: %s", res.Err)
	}
	// The lock record names the process that took the lock.
	if out := e.toolOutput("locks", bucket+"/fence"); !strings.Contains(out, " "+strconv.Itoa(h.cmd.Process.Pid)+" ") {
		t.Errorf("b2cfs locks does not show the holding process %d:\n%s", h.cmd.Process.Pid, out)
	}

	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, took, out := flockRun(t, "-w", "60", b.path("job.lock"), "sh", "-c", "printf 'new\\n' > "+b.path("data"))
	a.cmd.Process.Signal(syscall.SIGCONT)
	if code != 0 {
		t.Fatalf("flock on B exited %d after %v: %s", code, took, out)
	}
	t.Logf("B took the lock of frozen A and wrote in %v", time.Since(start).Round(time.Millisecond))

	if res := ask(fenceReq{Op: "close"}); res.Errno != int(syscall.ENOLCK) {
		t.Errorf("close of the stale holder's file: %+v, want ENOLCK", res)
	}
	if got, err := object(t, g, "data"); err != nil || got != "new\n" {
		t.Errorf("B2 holds %q (%v), want the new holder's data", got, err)
	}
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(a.log.String(), "LOCK LOST") {
			return errors.New("A logged no LOCK LOST")
		}
		return nil
	})
	if !slices.Contains(a.recovery(), "stale\n") {
		t.Errorf("A's recovery directory does not keep the refused bytes: %q", a.recovery())
	}
	if res := ask(fenceReq{Op: "flock"}); res.Errno != int(syscall.ENOLCK) {
		t.Errorf("flock on the descriptor of the lost lock: %+v, want ENOLCK once", res)
	}
	if res := ask(fenceReq{Op: "flock"}); res.Err != "" {
		t.Errorf("flock after the loss was reported: %s", res.Err)
	}
}

// TestFlockContention: 2 mounts x 2 processes x 25 flock-protected
// read-modify-write increments with 30 ms added to every B2 call: exactly
// 100, and the waits are fair enough that the worst single wait is
// printed (the figure to compare with the target of 3 s).
func TestFlockContention(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a, b := e.mount("contend"), e.mount("contend")
	g := e.group("contend")
	if err := os.WriteFile(a.path("c"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	readsAs(t, b.path("c"), "0\n")
	e.emu.SetFault("*", b2emu.Fault{Latency: latency})
	e.emu.ResetStats()
	const each = 25
	var jobs []fmJob
	for _, m := range []*mount{a, a, b, b} {
		jobs = append(jobs, fmJob{Op: "rmw", Path: m.path("c"), N: each, Lock: true})
	}
	start := time.Now()
	res := runHelpers(t, jobs)
	elapsed := time.Since(start)
	calls := e.calls()
	e.emu.SetFault("*", b2emu.Fault{})
	var worst time.Duration
	for i, r := range res {
		if r.Err != "" {
			t.Errorf("process %d: %s", i, r.Err)
		}
		if r.EBUSY > 0 {
			t.Errorf("process %d: %d closes under flock failed with EBUSY", i, r.EBUSY)
		}
		worst = max(worst, time.Duration(r.MaxWait))
	}
	got, err := object(t, g, "c")
	if err != nil || got != fmt.Sprintf("%d\n", 4*each) {
		t.Errorf("B2 holds %q (%v), want %d", got, err, 4*each)
	}
	t.Logf("%d increments from 2 mounts x 2 processes at %v per B2 call in %v (%.1f/s); worst flock wait %v; B2 calls %v",
		4*each, latency, elapsed.Round(time.Millisecond), float64(4*each)/elapsed.Seconds(), worst.Round(time.Millisecond), calls)
}
