package integration

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	blazer "github.com/Backblaze/blazer/b2"
	"github.com/Backblaze/blazer/x/consistent"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
)

// The helpers of the lock tests: flock(1) runs and "b2cfs lock" runs.

// requireFlock skips a test without flock(1) (package util-linux).
func requireFlock(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("flock"); err != nil {
		tb.Skip("flock(1) not installed (util-linux)")
	}
}

// flockRun runs flock(1) with args and returns its exit status, how long
// it ran and its output.
func flockRun(tb testing.TB, args ...string) (int, time.Duration, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "flock", args...).CombinedOutput()
	return exitCode(tb, err), time.Since(start), string(out)
}

// exitCode is the status a shell would report for a command that ended
// with err.
func exitCode(tb testing.TB, err error) int {
	tb.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode()
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()) // as a shell reports it
		}
	}
	tb.Fatalf("command did not exit normally: %v", err)
	return -1
}

// holder is a process that holds a lock until released: flock(1) or
// "b2cfs lock" running "echo locked; read x".
type holder struct {
	tb    testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
	err   error
	gotAt time.Time // when "locked" was read
}

// startHolder starts cmd (whose command must be holdScript) and returns
// without waiting for the lock.
func startHolder(tb testing.TB, cmd *exec.Cmd) *holder {
	tb.Helper()
	h := &holder{tb: tb, cmd: cmd, lines: make(chan string, 16), done: make(chan struct{})}
	var err error
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	go func() {
		h.err = cmd.Wait()
		close(h.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-h.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-h.done
		}
	})
	return h
}

// holdScript is the command a holder runs under the lock.
var holdScript = []string{"sh", "-c", "echo locked; read x"}

// flockHolder starts flock(1) with args on path running holdScript.
func flockHolder(tb testing.TB, path string, args ...string) *holder {
	tb.Helper()
	args = append(append(args, path), holdScript...)
	return startHolder(tb, exec.Command("flock", args...))
}

// lockHolder starts "b2cfs lock" with args running holdScript.
func (e *env) lockHolder(args ...string) *holder {
	e.tb.Helper()
	return startHolder(e.tb, e.lockCmd(append(append(args, "--"), holdScript...)...))
}

// lockCmd returns "b2cfs lock ARGS" against the emulator.
func (e *env) lockCmd(args ...string) *exec.Cmd {
	return e.tool(append([]string{"lock"}, args...)...)
}

// tool returns "b2cfs ARGS" against the emulator.
func (e *env) tool(args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "B2_APPLICATION_KEY_ID="+b2emu.DefaultKeyID, "B2_APPLICATION_KEY="+b2emu.DefaultKey, "B2CFS_ENDPOINT="+e.url)
	return cmd
}

// waitLocked waits until the holder has the lock, failing after d.
func (h *holder) waitLocked(d time.Duration) {
	h.tb.Helper()
	if !h.locked(d) {
		h.tb.Fatalf("%v: no lock after %v", h.cmd.Args, d)
	}
}

// locked reports whether the holder gets the lock within d.
func (h *holder) locked(d time.Duration) bool {
	h.tb.Helper()
	if !h.gotAt.IsZero() {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				<-h.done
				h.tb.Fatalf("%v exited without the lock: %v", h.cmd.Args, h.err)
			}
			if strings.TrimSpace(l) == "locked" {
				h.gotAt = time.Now()
				return true
			}
		case <-h.done:
			h.tb.Fatalf("%v exited without the lock: %v", h.cmd.Args, h.err)
		case <-t.C:
			return false
		}
	}
}

// release lets the holder's command end, and waits for it.
func (h *holder) release() {
	h.tb.Helper()
	h.stdin.Close()
	h.wait()
}

// wait waits for the holder to exit and returns its exit status.
func (h *holder) wait() int {
	h.tb.Helper()
	select {
	case <-h.done:
	case <-time.After(time.Minute):
		h.tb.Fatalf("%v still running after a minute", h.cmd.Args)
	}
	return exitCode(h.tb, h.err)
}

// lockName is the lock object of file path in a mount.
func lockName(path string) string { return core.ReservedPrefix + "locks/" + path }

// lockStatus runs "b2cfs lock ARGS" and returns its exit status.
func (e *env) lockStatus(args ...string) int {
	e.tb.Helper()
	cmd := e.lockCmd(args...)
	out, err := cmd.CombinedOutput()
	if code := exitCode(e.tb, err); code != 0 {
		e.tb.Logf("%v: exit %d\n%s", cmd.Args, code, out)
		return code
	}
	return 0
}

// toolOutput runs "b2cfs ARGS", which must succeed, and returns its output.
func (e *env) toolOutput(args ...string) string {
	e.tb.Helper()
	cmd := e.tool(args...)
	out, err := cmd.Output()
	if err != nil {
		e.tb.Fatalf("%v: %v", cmd.Args, err)
	}
	return string(out)
}

// blazerGroup opens group name with blazer's own x/consistent.
func (e *env) blazerGroup(ctx context.Context, name string) *consistent.Group {
	e.tb.Helper()
	client, err := blazer.NewClient(ctx, b2emu.DefaultKeyID, b2emu.DefaultKey, blazer.APIBase(e.url))
	if err != nil {
		e.tb.Fatal(err)
	}
	bk, err := client.Bucket(ctx, bucket)
	if err != nil {
		e.tb.Fatal(err)
	}
	return consistent.NewGroup(bk, name)
}
