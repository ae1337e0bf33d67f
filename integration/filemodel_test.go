package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// The file model through real mounts (DESIGN.md, "What a file operation
// means"): processes on one host share a file's state, hosts meet through
// compare-and-swap, appends merge, open descriptors keep their version and
// a rename over a file changed elsewhere is refused. Each test prints its
// figures.
//
// The processes are this test binary run again with
// B2CFS_FILEMODEL_HELPER set to a job (TestFileModelHelper), which makes raw
// system calls and reports what it read, wrote and was refused.

const fileModelHelperEnv = "B2CFS_FILEMODEL_HELPER"

// fileModelPrefix starts the helper's result line.
const fileModelPrefix = "filemodel-helper: "

// fmJob is what one helper process does.
type fmJob struct {
	// Op is "rmw" (N read-modify-write increments of the number in Path:
	// open O_RDWR, read, seek 0, ftruncate 0, write, close; on EBUSY open
	// again and retry) or "append" (N times: open O_WRONLY|O_APPEND, write
	// one line, close).
	Op   string
	Path string
	N    int
	// Lock takes flock(LOCK_EX) on the descriptor after the open, before
	// reading.
	Lock bool
	// Width pads the numbers written with zeros to that many digits.
	Width int
	// Line starts each appended line.
	Line string
	// Start is when to begin (Unix nanoseconds), so that helpers started
	// one after the other run at the same time.
	Start int64
}

// fmResult is what a helper reports.
type fmResult struct {
	Done   int      // increments or lines whose close returned 0
	EBUSY  int      // closes that returned EBUSY
	Empty  int      // reads that found the file empty (between another process's truncate and write)
	Zeros  int      // reads that found only NUL bytes (the kernel's zero-filled short read, see rmw)
	Reads  []string // every value read
	Writes []string // every value written
	// MaxWait is the longest flock(LOCK_EX) wait, in nanoseconds.
	MaxWait int64
	Err     string // what stopped the helper, if anything
}

// TestFileModelHelper is the helper process of the file model tests; run
// directly, it does nothing.
func TestFileModelHelper(t *testing.T) {
	spec := os.Getenv(fileModelHelperEnv)
	if spec == "" {
		return
	}
	var job fmJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(0, job.Start)))
	var res fmResult
	var err error
	switch job.Op {
	case "rmw":
		err = helperIncrements(job, &res)
	case "append":
		err = helperAppends(job, &res)
	default:
		err = fmt.Errorf("unknown op %q", job.Op)
	}
	if err != nil {
		res.Err = err.Error()
	}
	line, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", fileModelPrefix, line)
}

func helperIncrements(job fmJob, res *fmResult) error {
	deadline := time.Now().Add(90 * time.Second)
	for res.Done < job.N {
		if res.EBUSY > 100*job.N || time.Now().After(deadline) {
			return fmt.Errorf("%d increments made, %d refused with EBUSY, %d empty reads: giving up", res.Done, res.EBUSY, res.Empty)
		}
		if err := helperIncrement(job, res); err != nil {
			return err
		}
	}
	return nil
}

// helperIncrement makes one attempt at an increment.
func helperIncrement(job fmJob, res *fmResult) error {
	fd, err := noEINTR(func() (int, error) { return syscall.Open(job.Path, syscall.O_RDWR|syscall.O_CLOEXEC, 0) })
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	open := true
	defer func() {
		if open {
			syscall.Close(fd)
		}
	}()
	if job.Lock {
		start := time.Now()
		if _, err := noEINTR(func() (int, error) { return 0, syscall.Flock(fd, syscall.LOCK_EX) }); err != nil {
			return fmt.Errorf("flock: %w", err)
		}
		res.MaxWait = max(res.MaxWait, int64(time.Since(start)))
	}
	var buf []byte
	chunk := make([]byte, 256)
	for {
		n, err := noEINTR(func() (int, error) { return syscall.Read(fd, chunk) })
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			break
		}
		buf = append(buf, chunk[:n]...)
	}
	s := string(buf)
	if s == "" {
		res.Empty++
		return nil // the open closes it; no increment made
	}
	if strings.Trim(s, "\x00") == "" {
		// What the kernel's page cache would show for a page answered
		// short while another process truncated and rewrote the file.
		res.Zeros++
		return nil
	}
	res.Reads = append(res.Reads, s)
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("read %q, not a number", s)
	}
	out := fmt.Sprintf("%0*d\n", job.Width, v+1)
	if _, err := syscall.Seek(fd, 0, io.SeekStart); err != nil {
		return fmt.Errorf("seek: %w", err)
	}
	if _, err := noEINTR(func() (int, error) { return 0, syscall.Ftruncate(fd, 0) }); err != nil {
		return fmt.Errorf("ftruncate: %w", err)
	}
	if n, err := noEINTR(func() (int, error) { return syscall.Write(fd, []byte(out)) }); err != nil || n != len(out) {
		return fmt.Errorf("write: %d bytes, %v", n, err)
	}
	res.Writes = append(res.Writes, out)
	open = false
	switch err := syscall.Close(fd); {
	case err == syscall.EBUSY:
		res.EBUSY++
	case err != nil:
		return fmt.Errorf("close: %w", err)
	default:
		res.Done++
	}
	return nil
}

// noEINTR repeats call while it fails with EINTR, as package os does: the
// helpers are not signalled, but a stray signal must not count as a
// refusal.
func noEINTR[T any](call func() (T, error)) (T, error) {
	for {
		v, err := call()
		if err != syscall.EINTR {
			return v, err
		}
	}
}

func helperAppends(job fmJob, res *fmResult) error {
	for i := range job.N {
		fd, err := noEINTR(func() (int, error) {
			return syscall.Open(job.Path, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CLOEXEC, 0)
		})
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		line := fmt.Sprintf("%s %02d\n", job.Line, i)
		if n, err := noEINTR(func() (int, error) { return syscall.Write(fd, []byte(line)) }); err != nil || n != len(line) {
			syscall.Close(fd)
			return fmt.Errorf("write: %d bytes, %v", n, err)
		}
		res.Writes = append(res.Writes, line)
		switch err := syscall.Close(fd); {
		case err == syscall.EBUSY:
			res.EBUSY++
		case err != nil:
			return fmt.Errorf("close of line %d: %w", i, err)
		default:
			res.Done++
		}
	}
	return nil
}

// runHelpers runs one helper process per job at the same time and returns
// their results, failing the test if one does not report.
func runHelpers(t *testing.T, jobs []fmJob) []fmResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(500 * time.Millisecond).UnixNano()
	res := make([]fmResult, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		job.Start = start
		spec, err := json.Marshal(job)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "-test.run=^TestFileModelHelper$", "-test.count=1")
			// No preemption signals: a signal interrupts a FUSE request
			// (EINTR), which a close cannot simply repeat.
			cmd.Env = append(os.Environ(), fileModelHelperEnv+"="+string(spec), "GODEBUG=asyncpreemptoff=1")
			cmd.Dir = filepath.Dir(exe) // TestMain's build of the command fails quickly there; the helper does not need it
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			err := cmd.Run()
			sc := bufio.NewScanner(&out)
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				if l, ok := strings.CutPrefix(sc.Text(), fileModelPrefix); ok {
					errs[i] = json.Unmarshal([]byte(l), &res[i])
					return
				}
			}
			errs[i] = fmt.Errorf("no result (%v):\n%s%s", err, out.String(), stderr.String())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("helper %d (%s %s): %v", i, jobs[i].Op, jobs[i].Path, err)
		}
	}
	return res
}

// readsAs waits until path reads as want (another host's view may be up
// to index_ttl old).
func readsAs(t *testing.T, path, want string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if string(b) != want {
			return fmt.Errorf("%s reads %q, want %q", path, b, want)
		}
		return nil
	})
}

// TestFileModelIncrementsTwoHosts: one process on each of two mounts makes
// 50 read-modify-write increments of one small file, opening it again
// after each EBUSY: the counter ends at exactly 100. Ten rounds, each on
// its own file, with the default index_ttl.
func TestFileModelIncrementsTwoHosts(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a, b := e.mount("rmw"), e.mount("rmw")
	g := e.group("rmw")
	const rounds, each = 10, 50
	for r := range rounds {
		if err := os.WriteFile(a.path(fmt.Sprintf("c%d", r)), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for r := range rounds {
		readsAs(t, b.path(fmt.Sprintf("c%d", r)), "0\n")
	}
	totalBusy := 0
	for r := range rounds {
		name := fmt.Sprintf("c%d", r)
		start := time.Now()
		res := runHelpers(t, []fmJob{
			{Op: "rmw", Path: a.path(name), N: each},
			{Op: "rmw", Path: b.path(name), N: each},
		})
		got, err := object(t, g, name)
		if err != nil || got != fmt.Sprintf("%d\n", 2*each) {
			t.Errorf("round %d: B2 holds %q (%v), want %d", r, got, err, 2*each)
		}
		t.Logf("round %d: %d increments in %v; EBUSY (retried) on A %d, on B %d", r, res[0].Done+res[1].Done, time.Since(start).Round(time.Millisecond), res[0].EBUSY, res[1].EBUSY)
		totalBusy += res[0].EBUSY + res[1].EBUSY
	}
	t.Logf("%d rounds of %d increments: %d EBUSY retried", rounds, 2*each, totalBusy)
}

// TestFileModelIncrementsFlock: two processes on each of two mounts make
// 25 increments each under flock(LOCK_EX) taken on the descriptor they
// read and write through, opened before the lock: the counter ends at
// exactly 100 and no close fails, since taking the lock brings the file's
// state up to the previous holder's commit.
func TestFileModelIncrementsFlock(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a, b := e.mount("rmwlock"), e.mount("rmwlock")
	g := e.group("rmwlock")
	if err := os.WriteFile(a.path("c"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	readsAs(t, b.path("c"), "0\n")
	const each = 25
	start := time.Now()
	var jobs []fmJob
	for _, m := range []*mount{a, a, b, b} {
		jobs = append(jobs, fmJob{Op: "rmw", Path: m.path("c"), N: each, Lock: true})
	}
	res := runHelpers(t, jobs)
	busy := 0
	for i, r := range res {
		if r.Err != "" {
			t.Errorf("process %d: %s", i, r.Err)
		}
		busy += r.EBUSY
	}
	got, err := object(t, g, "c")
	if err != nil || got != fmt.Sprintf("%d\n", 4*each) {
		t.Errorf("B2 holds %q (%v), want %d", got, err, 4*each)
	}
	t.Logf("%d increments under flock from 2+2 processes in %v; EBUSY %d", 4*each, time.Since(start).Round(time.Millisecond), busy)
	if busy > 0 {
		t.Errorf("%d closes under flock failed with EBUSY: taking the lock did not show the previous holder's commit", busy)
	}
}

// TestFileModelIncrementsOneHostUnlocked: two processes on one mount make
// 25 read-modify-write increments each without a lock. Increments may be
// lost, as on a local file system, but every value read is one that a
// process wrote (or the initial one), no close fails (the processes share
// one state), and afterwards both mounts and "b2cfs cat" show one of the
// values written.
func TestFileModelIncrementsOneHostUnlocked(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a, b := e.mount("rmwfree"), e.mount("rmwfree")
	const width, each = 8, 25
	initial := fmt.Sprintf("%0*d\n", width, 0)
	if err := os.WriteFile(a.path("c"), []byte(initial), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := runHelpers(t, []fmJob{
		{Op: "rmw", Path: a.path("c"), N: each, Width: width},
		{Op: "rmw", Path: a.path("c"), N: each, Width: width},
	})
	written := map[string]bool{initial: true}
	busy, empty, zeros, reads := 0, 0, 0, 0
	for i, r := range res {
		if r.Err != "" {
			t.Errorf("process %d: %s", i, r.Err)
		}
		for _, w := range r.Writes {
			written[w] = true
		}
		busy += r.EBUSY
		empty += r.Empty
		zeros += r.Zeros
		reads += len(r.Reads)
	}
	if zeros > 0 {
		// Descriptors open for writing do direct I/O so that the
		// kernel never zero-fills a page answered short while another
		// process truncates and rewrites the file.
		t.Errorf("%d reads saw only NUL bytes, which no process wrote", zeros)
	}
	var foreign []string
	for _, r := range res {
		for _, v := range r.Reads {
			if !written[v] {
				foreign = append(foreign, v)
			}
		}
	}
	if len(foreign) > 0 {
		t.Errorf("%d values read were never written: %q", len(foreign), foreign[:min(len(foreign), 10)])
	}
	if busy > 0 {
		t.Errorf("%d closes failed with EBUSY between two processes of one host", busy)
	}
	final, err := os.ReadFile(a.path("c"))
	if err != nil {
		t.Fatal(err)
	}
	if !written[string(final)] {
		t.Errorf("the counter ends as %q, which no process wrote", final)
	}
	readsAs(t, b.path("c"), string(final))
	out, err := e.tool("cat", bucket+"/rmwfree/c").Output()
	if err != nil || string(out) != string(final) {
		t.Errorf("b2cfs cat: %q (%v), mount A: %q", out, err, final)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(final)))
	t.Logf("2 unlocked processes, %d increments each, in %v: counter %d (%d lost, as without a lock anywhere), %d reads, %d found the file between a truncate and a write, EBUSY %d",
		each, time.Since(start).Round(time.Millisecond), n, 2*each-n, reads, empty, busy)
}

// checkLines checks that content holds each of want once, whole, and
// nothing else.
func checkLines(t *testing.T, where, content string, want []string) {
	t.Helper()
	got := strings.SplitAfter(content, "\n")
	if got[len(got)-1] == "" {
		got = got[:len(got)-1]
	}
	count := map[string]int{}
	for _, l := range got {
		count[l]++
	}
	var missing, extra []string
	for _, l := range want {
		if count[l] == 0 {
			missing = append(missing, strings.TrimSpace(l))
		}
		count[l]--
	}
	for l, n := range count {
		if n != 0 {
			extra = append(extra, fmt.Sprintf("%q×%d", l, n))
		}
	}
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: %d lines, want %d: missing %q; torn, repeated or unknown: %v", where, len(got), len(want), missing, extra)
	}
}

// TestFileModelAppendTwoHosts: one process on each of two mounts appends
// 20 lines with O_APPEND, one open, write and close each: every close
// returns 0 (appends merge) and all 40 lines are there.
func TestFileModelAppendTwoHosts(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a, b := e.mount("append"), e.mount("append")
	g := e.group("append")
	if err := os.WriteFile(a.path("log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	readsAs(t, b.path("log"), "")
	const each = 20
	start := time.Now()
	res := runHelpers(t, []fmJob{
		{Op: "append", Path: a.path("log"), N: each, Line: "A"},
		{Op: "append", Path: b.path("log"), N: each, Line: "B"},
	})
	var want []string
	for i, r := range res {
		if r.Err != "" {
			t.Errorf("process %d: %s", i, r.Err)
		}
		if r.EBUSY > 0 {
			t.Errorf("process %d: %d of %d closes failed with EBUSY", i, r.EBUSY, each)
		}
		want = append(want, r.Writes...)
	}
	t.Logf("%d O_APPEND lines from 2 hosts in %v; closes that returned 0: A %d, B %d; EBUSY: A %d, B %d",
		len(want), time.Since(start).Round(time.Millisecond), res[0].Done, res[1].Done, res[0].EBUSY, res[1].EBUSY)
	got, err := object(t, g, "log")
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, "B2", got, want)
	readsAs(t, a.path("log"), got)
	readsAs(t, b.path("log"), got)
}

// TestFileModelShellAppendThreeHosts: the shell's "echo line >> log",
// which ignores what close returns, 20 times on each of three mounts at
// once: all 60 lines are there, each whole.
func TestFileModelShellAppendThreeHosts(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	ms := []*mount{e.mount("shappend"), e.mount("shappend"), e.mount("shappend")}
	g := e.group("shappend")
	if err := os.WriteFile(ms[0].path("log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		readsAs(t, m.path("log"), "")
	}
	const each = 20
	var want []string
	for h := range ms {
		for i := 1; i <= each; i++ {
			want = append(want, fmt.Sprintf("host%d line %02d\n", h, i))
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for h, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			script := fmt.Sprintf(`for i in $(seq -w 1 %d); do echo "host%d line $i" >> log; done`, each, h)
			if out, err := shErr(m.dir, script); err != nil {
				errs[h] = fmt.Errorf("%v\n%s", err, out)
			}
		}()
	}
	wg.Wait()
	for h, err := range errs {
		if err != nil {
			t.Errorf("host %d: %v", h, err)
		}
	}
	took := time.Since(start)
	got, err := object(t, g, "log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(got, "\n")
	t.Logf("%d hosts × %d \"echo >> log\" in %v: B2 holds %d of %d lines", len(ms), each, took.Round(time.Millisecond), lines, len(want))
	checkLines(t, "B2", got, want)
	for _, m := range ms {
		readsAs(t, m.path("log"), got)
	}
}

// TestFileModelSnapshotRead: a descriptor on host A reads the version it
// opened, whole, while host B shrinks, grows and then deletes the file,
// even though new opens on A read each of B's versions in between (which
// fill A's kernel caches with them) and A asks for the descriptor's
// attributes (fstat) each time.
func TestFileModelSnapshotRead(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a, b := e.mount("snap"), e.mount("snap")
	v1 := randomBytes(4 << 20)
	short := []byte("short\n")
	long := randomBytes(6<<20 + 1)
	if err := os.WriteFile(b.path("f"), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if st, err := os.Stat(a.path("f")); err != nil || st.Size() != int64(len(v1)) {
			return fmt.Errorf("A sees %v, %v", st, err)
		}
		return nil
	})
	r, err := os.Open(a.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []byte
	readChunk := func(n int) {
		t.Helper()
		buf := make([]byte, n)
		k, err := io.ReadFull(r, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Fatalf("read through the open descriptor: %v", err)
		}
		got = append(got, buf[:k]...)
	}
	readChunk(1 << 20)
	var sizes []string
	for _, step := range []struct {
		what string
		do   func() error
		now  []byte // nil: gone
	}{
		{"shrinks", func() error { return os.WriteFile(b.path("f"), short, 0o644) }, short},
		{"grows", func() error { return os.WriteFile(b.path("f"), long, 0o644) }, long},
		{"deletes", func() error { return os.Remove(b.path("f")) }, nil},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("B %s f: %v", step.what, err)
		}
		// A new open on A sees B's version once A's view has caught up.
		eventually(t, 10*time.Second, func() error {
			b, err := os.ReadFile(a.path("f"))
			switch {
			case step.now == nil && errors.Is(err, os.ErrNotExist):
				return nil
			case err != nil:
				return err
			case !bytes.Equal(b, step.now):
				return fmt.Errorf("a new open on A reads %d bytes, not B's %d", len(b), len(step.now))
			}
			return nil
		})
		st, err := r.Stat()
		if err != nil {
			t.Fatalf("fstat after B %s f: %v", step.what, err)
		}
		sizes = append(sizes, fmt.Sprintf("after B %s f: %d", step.what, st.Size()))
		if step.now == nil {
			readChunk(len(v1)) // the rest
		} else {
			readChunk(1 << 20)
		}
	}
	t.Logf("read %d of %d bytes through one descriptor; its fstat sizes: %s", len(got), len(v1), strings.Join(sizes, ", "))
	if !bytes.Equal(got, v1) {
		i := 0
		for i < len(got) && i < len(v1) && got[i] == v1[i] {
			i++
		}
		t.Fatalf("the descriptor read %d bytes that are not the version it opened (%d bytes): they differ from offset %d", len(got), len(v1), i)
	}
}

// TestFileModelSedRace: "sed -i" on host A races an append on host B
// (which opens again and retries after EBUSY). Either both changes
// survive, or sed fails (its rename over a file changed since sed read
// it is refused) and B's change survives; never does sed succeed while
// B's change is lost.
func TestFileModelSedRace(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a, b := e.mount("sed"), e.mount("sed")
	g := e.group("sed")
	const rounds = 12
	const base = "one\ntwo\n"
	for i := range rounds {
		if err := os.WriteFile(a.path(fmt.Sprintf("f%d", i)), []byte(base), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range rounds {
		readsAs(t, b.path(fmt.Sprintf("f%d", i)), base)
	}
	both, refused, busyB := 0, 0, 0
	start := time.Now()
	for i := range rounds {
		name := fmt.Sprintf("f%d", i)
		var wg sync.WaitGroup
		var sedOut string
		var sedErr, bErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			sedOut, sedErr = shErr(a.dir, "sed -i s/one/ONE/ "+name)
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
			for try := 0; ; try++ {
				f, err := os.OpenFile(b.path(name), os.O_WRONLY|os.O_APPEND, 0)
				if err == nil {
					_, err = f.WriteString("three\n")
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if errnoOf(err) == syscall.EBUSY && try < 50 {
					busyB++
					time.Sleep(50 * time.Millisecond)
					continue
				}
				bErr = err
				return
			}
		}()
		wg.Wait()
		if bErr != nil {
			t.Fatalf("round %d: B's append: %v", i, bErr)
		}
		got, err := object(t, g, name)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case sedErr == nil && got == "ONE\ntwo\nthree\n":
			both++
		case sedErr != nil && got == base+"three\n":
			refused++
			if !strings.Contains(sedOut, "busy") {
				t.Logf("round %d: sed failed for another reason than EBUSY: %s", i, sedOut)
			}
		default:
			t.Errorf("round %d: sed: %v %s; B2 holds %q", i, sedErr, strings.TrimSpace(sedOut), got)
		}
	}
	ents, _ := os.ReadDir(a.dir)
	left := 0
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), "sed") {
			left++
		}
	}
	t.Logf("%d rounds in %v: both changes kept %d, sed refused (B's change kept) %d; B retried after EBUSY %d times; sed temporary files left %d",
		rounds, time.Since(start).Round(time.Millisecond), both, refused, busyB, left)
}

// TestFileModelTruncateByPath: truncate(2) of a path commits at once, also
// beside a read-only descriptor, which then reads the file as truncated
// (shorter, then longer with zeros).
func TestFileModelTruncateByPath(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("trunc")
	g := e.group("trunc")
	if err := os.WriteFile(a.path("f"), []byte("hello world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Truncate(a.path("f"), 5); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	if got, err := object(t, g, "f"); err != nil || got != "hello" {
		t.Errorf("after truncate(2) to 5, B2 holds %q (%v)", got, err)
	}
	r, err := os.Open(a.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := syscall.Truncate(a.path("f"), 2); err != nil {
		t.Fatalf("truncate beside a read-only descriptor: %v", err)
	}
	if got, err := object(t, g, "f"); err != nil || got != "he" {
		t.Errorf("after truncate(2) to 2 beside a read-only descriptor, B2 holds %q (%v)", got, err)
	}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "he" {
		t.Errorf("the read-only descriptor reads %q (%v) after truncate(2) to 2", b, err)
	}
	// Growing shows zeros, not the bytes of the version it opened.
	if err := syscall.Truncate(a.path("f"), 4); err != nil {
		t.Fatalf("truncate to 4 beside a read-only descriptor: %v", err)
	}
	buf := make([]byte, 16)
	n, err := r.ReadAt(buf, 0)
	if (err != nil && err != io.EOF) || string(buf[:n]) != "he\x00\x00" {
		t.Errorf("the read-only descriptor reads %q (%v) after truncate(2) to 4", buf[:n], err)
	}
	if got, err := object(t, g, "f"); err != nil || got != "he\x00\x00" {
		t.Errorf("after truncate(2) to 4 beside a read-only descriptor, B2 holds %q (%v)", got, err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("close of the read-only descriptor: %v", err)
	}
	if got, err := object(t, g, "f"); err != nil || got != "he\x00\x00" {
		t.Errorf("after the close, B2 holds %q (%v)", got, err)
	}

	// Beside an idle writable descriptor, truncate(2) to 0 looks to the
	// file system like the kernel's O_TRUNC after an open: it may wait for
	// that descriptor's close. Only the outcome after the close is checked.
	w, err := os.OpenFile(a.path("f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Truncate(a.path("f"), 0); err != nil {
		t.Fatalf("truncate beside a writable descriptor: %v", err)
	}
	before, _ := object(t, g, "f")
	if err := w.Close(); err != nil {
		t.Errorf("close of the writable descriptor: %v", err)
	}
	after, err := object(t, g, "f")
	if err != nil || after != "" {
		t.Errorf("after truncate(2) to 0 and the close of a writable descriptor, B2 holds %q (%v)", after, err)
	}
	t.Logf("truncate(2) committed at once alone and beside a read-only descriptor; beside an idle writable descriptor B2 held %q before its close", before)
}
