package integration

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A helper process is this test binary run again with one test selected
// and an environment variable set to 1. The test, run that way, reads
// requests as JSON lines on stdin and answers each with a JSON line on
// stdout that starts with a prefix of its own (the test framework writes
// lines of its own). Its calls run on one OS thread, so that a signal sent
// to that thread (tgkill) interrupts the call it is in; SIGALRM is caught
// and ignored.

// serveHelper is the body of a helper process's test: unless env is set
// to 1 it returns at once. Otherwise, on its locked thread with SIGALRM
// caught, it calls setup (when not nil), then answers every request read
// from stdin with handle's result, printed after prefix, until stdin ends.
func serveHelper[Req, Res any](t *testing.T, env, prefix string, setup func(), handle func(Req) Res) {
	if os.Getenv(env) != "1" {
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGALRM)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
		}
	}()
	if setup != nil {
		setup()
	}
	dec := json.NewDecoder(os.Stdin)
	for {
		var r Req
		if err := dec.Decode(&r); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			return
		}
		line, err := json.Marshal(handle(r))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s%s\n", prefix, line)
	}
}

func errnoInt(err error) int {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return int(syscall.EIO)
}

// helperProc is a running helper process, seen from the test.
type helperProc struct {
	t     *testing.T
	label string // the helper in messages: "interrupt helper", "helper a"
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string // its answers, without the prefix
	done  chan struct{}
}

// startHelperProc runs test (the helper's test function) in a new process
// with env=1 and the extra environment variables extra. Lines of its
// output that do not start with prefix are logged if it reports a
// failure. Once the test ends, the helper's input is closed; it must exit
// within grace.
func startHelperProc(t *testing.T, label, test, env, prefix string, grace time.Duration, extra ...string) *helperProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), env+"=1"), extra...)
	cmd.Dir = filepath.Dir(exe) // TestMain's build of the command fails quickly there; the helper does not need it
	cmd.Stderr = os.Stderr
	h := &helperProc{t: t, label: label, cmd: cmd, lines: make(chan string, 4), done: make(chan struct{})}
	if h.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		var rest []string
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				h.lines <- l
			} else {
				rest = append(rest, sc.Text())
			}
		}
		if slices.ContainsFunc(rest, func(l string) bool { return strings.HasPrefix(l, "---") || strings.HasPrefix(l, "FAIL") }) {
			t.Logf("%s output:\n%s", label, strings.Join(rest, "\n"))
		}
		close(h.lines)
	}()
	go func() {
		cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		h.in.Close()
		select {
		case <-h.done:
		case <-time.After(grace):
			cmd.Process.Kill()
			<-h.done
			t.Errorf("%s still running %v after its input ended", label, grace)
		}
	})
	return h
}

// send writes v to the helper as one JSON line, without waiting for an
// answer.
func (h *helperProc) send(v any) {
	h.t.Helper()
	line, err := json.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.in.Write(append(line, '\n')); err != nil {
		h.t.Fatalf("%s: %v", h.label, err)
	}
}

// recvLine waits up to d for the helper's next answer line; ok is false
// when none came. The test fails if the helper exited.
func (h *helperProc) recvLine(d time.Duration) (line string, ok bool) {
	h.t.Helper()
	select {
	case l, open := <-h.lines:
		if !open {
			<-h.done
			h.t.Fatalf("%s exited: %v", h.label, h.cmd.ProcessState)
		}
		return l, true
	case <-time.After(d):
		return "", false
	}
}

// recv waits up to d for the helper's next answer and decodes it into v;
// it returns false when none came.
func (h *helperProc) recv(d time.Duration, v any) bool {
	h.t.Helper()
	l, ok := h.recvLine(d)
	if !ok {
		return false
	}
	if err := json.Unmarshal([]byte(l), v); err != nil {
		h.t.Fatalf("%s: %v: %q", h.label, err, l)
	}
	return true
}
