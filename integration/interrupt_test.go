package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/storetest"
	"github.com/b2cfs/b2cfs/namespace"
)

// TestInterruptStorm runs mkdir, rmdir, create, rename and unlink on a
// mount from a process that receives a signal (SIGALRM, caught) at a random
// point of each call, a few milliseconds in, so that many of those calls
// are interrupted while the mount is talking to B2. After each batch it reads the group from B2 (no cache) and checks
// every call against what happened there: a call that returned 0 took
// effect, a call that failed (EINTR or anything else) changed nothing, and
// the group stays readable; at the end a new mount must work and show what
// B2 holds. Both on-bucket formats, each with the default index_ttl and
// with index_ttl=0 (every request reads the index, so there are more
// places for a signal to land).
func TestInterruptStorm(t *testing.T) {
	for _, format := range []string{core.FormatB2cfs, core.FormatBlazer} {
		for _, ttl := range []string{"1s", "0"} {
			t.Run(format+"/index_ttl="+ttl, func(t *testing.T) {
				e := newEnv(t, b2emu.Config{})
				e.format = format
				testInterruptStorm(t, e, ttl)
			})
		}
	}
}

// stormCalls is how many calls of each kind the storm makes. A group in
// blazer's format holds a few dozen names, and at most this many exist at
// once.
const stormCalls = 20

// stormEvery is the shortest window in which the helper is signalled once
// per call (see TestInterruptHelper).
const stormEvery = 3 * time.Millisecond

func testInterruptStorm(t *testing.T, e *env, ttl string) {
	const group = "storm"
	// A little latency on the update that commits widens the window in
	// which a signal lands while B2 has the request and the mount waits
	// for the reply.
	e.emu.SetFault("b2_update_bucket", b2emu.Fault{Latency: time.Millisecond, Jitter: 2 * time.Millisecond})
	m := e.mount(group, "index_ttl="+ttl)
	s := &storm{t: t, e: e, m: m, g: e.group(group), group: group, h: startInterruptHelper(t)}
	defer s.report() // also when a check stops the test
	s.sync()

	names := func(prefix string) []string {
		out := make([]string, stormCalls)
		for i := range out {
			out[i] = fmt.Sprintf("%s%02d", prefix, i)
		}
		return out
	}
	dirs, files, moved := names("d"), names("f"), names("g")

	s.run("mkdir", dirs, nil)
	s.run("rmdir", dirs, nil)
	s.run("create", files, nil)
	s.run("rename", files, moved)
	// Unlink each file under the name B2 has it by (the old one where the
	// rename failed).
	var last []string
	for i := range files {
		if s.has(files[i]) && !s.has(moved[i]) {
			last = append(last, files[i])
		} else {
			last = append(last, moved[i])
		}
	}
	s.run("unlink", last, nil)

	// A new mount (another host, no cache) starts and shows what B2 holds.
	fresh := e.mount(group)
	got := sh(t, fresh.dir, `ls -A`)
	if want := s.visible(); got != want {
		t.Errorf("new mount lists\n%q\nB2 holds\n%q", got, want)
	}
	sh(t, fresh.dir, `ls -lR > /dev/null`)
}

// storm is the state of one storm run: the group as B2 last showed it and
// the counts so far.
type storm struct {
	t       *testing.T
	e       *env
	m       *mount
	g       *core.Group
	group   string
	h       *interruptHelper
	state   map[string]string // the group's index as B2 last showed it
	counts  map[string]*stormCount
	signals int
}

// stormCount counts the calls of one kind.
type stormCount struct {
	calls, ok, eintr, effective, mismatched int
	errors                                  map[string]int // failures other than EINTR, by errno
}

func (c *stormCount) String() string {
	var other []string
	for e, n := range c.errors {
		other = append(other, fmt.Sprintf("%s %d", e, n))
	}
	sort.Strings(other)
	s := fmt.Sprintf("%3d calls: %3d returned 0, %3d EINTR, %3d other errors", c.calls, c.ok, c.eintr, c.calls-c.ok-c.eintr)
	if len(other) > 0 {
		s += " (" + strings.Join(other, ", ") + ")"
	}
	return s + fmt.Sprintf("; %3d effective in B2, %d mismatched", c.effective, c.mismatched)
}

func (c *stormCount) add(o *stormCount) {
	c.calls += o.calls
	c.ok += o.ok
	c.eintr += o.eintr
	c.effective += o.effective
	c.mismatched += o.mismatched
	for e, n := range o.errors {
		if c.errors == nil {
			c.errors = map[string]int{}
		}
		c.errors[e] += n
	}
}

// report logs the counts of the calls made so far.
func (s *storm) report() {
	var total stormCount
	for _, op := range []string{"mkdir", "rmdir", "create", "rename", "unlink"} {
		if c := s.counts[op]; c != nil {
			s.t.Logf("%-6s %s", op, c)
			total.add(c)
		}
	}
	s.t.Logf("total  %s; %d signals sent, %d interrupted requests logged by the mount",
		&total, s.signals, strings.Count(s.m.log.String(), "operation interrupted"))
	if total.calls > 0 && total.eintr == 0 {
		s.t.Logf("no call returned EINTR: the signals never caught the mount waiting")
	}
}

// sync reads the group from B2; the group must be readable.
func (s *storm) sync() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	entries, err := storetest.Keys(ctx, s.g)
	if err != nil {
		s.t.Fatalf("group unreadable: %v", err)
	}
	s.state = entries
	// The command-line tools read it too, with their own fresh view.
	s.e.toolOutput("ls", "-l", bucket+"/"+s.group)
}

// object returns the B2 name of path: the object itself, or the marker of
// a directory.
func (s *storm) object(op, path string) string {
	if op == "mkdir" || op == "rmdir" {
		return namespace.Marker(path)
	}
	return path
}

func (s *storm) has(name string) bool {
	_, ok := s.state[name]
	return ok
}

// run makes the helper call op on each path (renaming paths[i] to to[i])
// under signals, then checks each call against B2.
func (s *storm) run(op string, paths, to []string) {
	t := s.t
	t.Helper()
	abs := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			out = append(out, s.m.path(p))
		}
		return out
	}
	res := s.h.do(interruptBatch{Op: op, Paths: abs(paths), To: abs(to), Every: stormEvery})
	s.signals += res.Signals
	if s.counts == nil {
		s.counts = map[string]*stormCount{}
	}
	c := &stormCount{errors: map[string]int{}}
	s.counts[op] = c
	for i, p := range paths {
		c.calls++
		switch errno := syscall.Errno(res.Errnos[i]); errno {
		case 0:
			c.ok++
		case syscall.EINTR:
			c.eintr++
		default:
			c.errors[errnoName(errno)]++
		}
		if op == "create" && res.Close[i] > 0 {
			t.Errorf("close of %s just created: %v", p, syscall.Errno(res.Close[i]))
		}
	}
	before := s.state
	s.sync()
	after := s.state
	for i, p := range paths {
		errno := syscall.Errno(res.Errnos[i])
		// The B2 names the call touches, and whether each should exist if
		// the call took effect.
		want := map[string]bool{s.object(op, p): op == "mkdir" || op == "create"}
		if op == "rename" {
			want = map[string]bool{p: false, to[i]: true}
		}
		// Whether the call could succeed at all: what it creates is absent
		// and what it removes or moves away is there.
		possible := true
		for n, exists := range want {
			if _, had := before[n]; had == exists {
				possible = false
			}
		}
		unchanged, effect := true, true
		var diff []string
		for n, exists := range want {
			_, had := before[n]
			_, has := after[n]
			if had != has {
				unchanged = false
				diff = append(diff, fmt.Sprintf("%s %s", n, map[bool]string{true: "appeared", false: "vanished"}[has]))
			}
			if has != exists {
				effect = false
			}
		}
		if !unchanged {
			c.effective++
		}
		call := fmt.Sprintf("%s %s", op, p)
		if op == "rename" {
			call += " " + to[i]
		}
		switch {
		case errno == 0 && !possible:
			c.mismatched++
			t.Errorf("%s returned 0, but B2 did not allow it beforehand (%v)", call, want)
		case errno == 0 && !effect:
			c.mismatched++
			t.Errorf("%s returned 0, but did not take effect in B2", call)
		case errno != 0 && !unchanged:
			c.mismatched++
			t.Errorf("%s returned %s, but changed B2: %s", call, errnoName(errno), strings.Join(diff, ", "))
		}
	}
}

// visible is what "ls -A" at the root of a mount shows for the group as
// B2 last showed it.
func (s *storm) visible() string {
	var out []string
	for n := range s.state {
		if p, k := namespace.Classify(n); k == namespace.Dir || k == namespace.File {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EINTR:
		return "EINTR"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EEXIST:
		return "EEXIST"
	case syscall.EIO:
		return "EIO"
	case syscall.EBUSY:
		return "EBUSY"
	case syscall.ENOTEMPTY:
		return "ENOTEMPTY"
	case syscall.ENOSPC:
		return "ENOSPC"
	}
	return e.Error()
}

// The helper process is this test binary run again with
// B2CFS_INTERRUPT_HELPER=1 (TestInterruptHelper). It reads batches as JSON
// lines on stdin and answers each with a result line on stdout.
//
// Every call runs on one OS thread, and the signals are sent to that thread
// (tgkill): a signal sent to the process (setitimer) would go to whichever
// of the Go runtime's threads the kernel picks, mostly not the one waiting
// in the mount. Go's handler is installed with SA_RESTART, which does not
// matter here: FUSE answers an interrupted request with the errno the file
// system replies (EINTR when it gives up), and the kernel never restarts a
// call that failed with EINTR. The calls are raw system calls, which, unlike
// package os, do not retry on EINTR.
const interruptHelperEnv = "B2CFS_INTERRUPT_HELPER"

// resultPrefix starts the helper's result lines (the test framework writes
// lines of its own).
const resultPrefix = "interrupt-helper: "

// interruptBatch is one batch of calls the helper makes under signals.
type interruptBatch struct {
	Op    string        `json:"op"` // mkdir, rmdir, create (open O_CREAT|O_EXCL, then close), rename, unlink
	Paths []string      `json:"paths"`
	To    []string      `json:"to,omitempty"` // rename targets
	Every time.Duration `json:"every"`        // the shortest window a call's signal is sent in
}

// interruptResult is the helper's answer to one batch.
type interruptResult struct {
	Errnos  []int `json:"errnos"`          // per call, 0 for success
	Close   []int `json:"close,omitempty"` // create: close's errno, -1 when the open failed
	Signals int   `json:"signals"`         // signals sent while a call ran
}

// TestInterruptHelper is the helper process of TestInterruptStorm; run
// directly, it does nothing.
func TestInterruptHelper(t *testing.T) {
	var pid, tid int
	serveHelper(t, interruptHelperEnv, resultPrefix, func() { pid, tid = os.Getpid(), syscall.Gettid() }, func(b interruptBatch) interruptResult {
		res := interruptResult{Errnos: []int{}}
		window := b.Every
		for i, p := range b.Paths {
			// One signal per call, at a random point of a window about as
			// long as the calls take, so that signals land at every stage
			// of a call (before B2 is asked, while a change is in flight,
			// after it landed) however fast the machine is: a steady tick
			// would catch slow calls only at their start.
			fired := make(chan bool, 1)
			timer := time.AfterFunc(rand.N(window), func() {
				fired <- syscall.Tgkill(pid, tid, syscall.SIGALRM) == nil
			})
			start := time.Now()
			var err error
			switch b.Op {
			case "mkdir":
				err = syscall.Mkdir(p, 0o755)
			case "rmdir":
				err = syscall.Rmdir(p)
			case "unlink":
				err = syscall.Unlink(p)
			case "rename":
				err = syscall.Rename(p, b.To[i])
			case "create":
				var fd int
				fd, err = syscall.Open(p, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o644)
				closed := -1
				if err == nil {
					closed = errnoInt(syscall.Close(fd)) // the descriptor is gone even on EINTR
				}
				res.Close = append(res.Close, closed)
			default:
				t.Fatalf("unknown op %q", b.Op)
			}
			took := time.Since(start)
			res.Errnos = append(res.Errnos, errnoInt(err))
			// A signal already on its way is sent before the next call.
			if !timer.Stop() && <-fired {
				res.Signals++
				window += window / 4 // the call outlasted its signal
			} else {
				window = max(b.Every, 2*took)
			}
		}
		return res
	})
}

// interruptHelper is a running helper process.
type interruptHelper struct{ *helperProc }

func startInterruptHelper(t *testing.T) *interruptHelper {
	t.Helper()
	return &interruptHelper{startHelperProc(t, "interrupt helper", "TestInterruptHelper", interruptHelperEnv, resultPrefix, time.Minute)}
}

// do runs one batch in the helper and returns its result.
func (h *interruptHelper) do(b interruptBatch) interruptResult {
	h.t.Helper()
	h.send(b)
	// Each call is bounded by the mount's own deadlines; this bound only
	// keeps a hung mount from hanging the test.
	var res interruptResult
	if !h.recv(5*time.Minute, &res) {
		h.cmd.Process.Kill()
		h.t.Fatalf("interrupt helper: no answer to %s after 5 minutes", b.Op)
	}
	if len(res.Errnos) != len(b.Paths) {
		h.t.Fatalf("interrupt helper answered %d results for %d calls", len(res.Errnos), len(b.Paths))
	}
	return res
}
