package integration

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// outageFor is how long each kind of outage lasts: several times the
// mount's bound, so that an operation waiting for the outage's end shows.
// B2CFS_OUTAGE (a Go duration) overrides it.
func outageFor(t *testing.T) time.Duration {
	if v := os.Getenv("B2CFS_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("B2CFS_OUTAGE=%q: %v", v, err)
		}
		return d
	}
	return 60 * time.Second
}

// Bounds the mount promises by default: an operation that needs B2 gives
// up within timeout (mount option timeout=), flock within lockTimeout
// (lock_timeout=). slack is scheduling on a loaded machine, not a part of
// either bound.
const (
	timeout     = 10 * time.Second
	lockTimeout = 5 * time.Second
	slack       = 3 * time.Second
)

// opResult is what one kind of operation returned during an outage.
type opResult struct {
	results map[string]int // "ok", "EIO", "exit 71", ...
	worst   time.Duration
}

// outageOps are the operations tried again and again during an outage,
// each with the outcome it must have: cached reads, stat and readdir
// answer from the last view, everything that needs B2 fails with EIO
// (flock: ENOLCK, exit 71), and nothing waits past its bound.
type outageOps struct {
	t   *testing.T
	m   *mount
	mu  sync.Mutex
	res map[string]*opResult // GUARDED_BY(mu)
}

func (o *outageOps) record(name string, d time.Duration, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.res[name]
	if r == nil {
		r = &opResult{results: map[string]int{}}
		o.res[name] = r
	}
	r.results[result]++
	r.worst = max(r.worst, d)
}

// errResult names the errno of err, "ok" for nil.
func errResult(err error) string {
	if err == nil {
		return "ok"
	}
	if e := errnoOf(err); e != 0 {
		return errnoName(e)
	}
	return err.Error()
}

// run runs every operation again and again, each kind in a loop of its
// own (as independent users would), until d has passed.
func (o *outageOps) run(d time.Duration) {
	m := o.m
	ops := map[string]func(seq int) string{
		"cat cached": func(int) string {
			out, err := exec.Command("cat", m.path("cached")).CombinedOutput()
			if err != nil {
				return "cat: " + strings.TrimSpace(string(out))
			}
			if string(out) != "cached content\n" {
				return fmt.Sprintf("wrong content %q", out)
			}
			return "ok"
		},
		"stat": func(int) string {
			st, err := os.Stat(m.path("cached"))
			if err == nil && st.Size() != int64(len("cached content\n")) {
				return fmt.Sprintf("size %d", st.Size())
			}
			return errResult(err)
		},
		"ls -l": func(int) string {
			out, err := exec.Command("ls", "-l", m.path("d")).CombinedOutput()
			if err != nil {
				return "ls: " + strings.TrimSpace(string(out))
			}
			if !strings.Contains(string(out), "a.txt") || !strings.Contains(string(out), "b.txt") {
				return fmt.Sprintf("ls shows %q", out)
			}
			return "ok"
		},
		"flock -n": func(int) string {
			code, _, out := flockRun(o.t, "-n", m.path("lockfile"), "true")
			if code == 71 {
				return "ENOLCK"
			}
			return fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(out))
		},
		"read uncached": func(int) string {
			_, err := os.ReadFile(m.path("uncached"))
			return errResult(err)
		},
		"write new file": func(seq int) string {
			return errResult(os.WriteFile(m.path(fmt.Sprintf("new-%d", seq)), []byte("new\n"), 0o644))
		},
		"rewrite": func(seq int) string {
			return errResult(os.WriteFile(m.path("victim"), fmt.Appendf(nil, "rewritten %d\n", seq), 0o644))
		},
		"mkdir": func(seq int) string { return errResult(os.Mkdir(m.path(fmt.Sprintf("dir-%d", seq)), 0o755)) },
		"rm":    func(int) string { return errResult(os.Remove(m.path("d/a.txt"))) },
		"mv":    func(int) string { return errResult(os.Rename(m.path("d/b.txt"), m.path("d/c.txt"))) },
	}
	start := time.Now()
	var wg sync.WaitGroup
	for name, op := range ops {
		wg.Go(func() {
			for seq := 1; time.Since(start) < d; seq++ {
				t0 := time.Now()
				r := op(seq)
				o.record(name, time.Since(t0), r)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// The log lines that mark B2's going and return.
const (
	downLine = `msg="B2 unreachable: `
	upLine   = `msg="B2 reachable again"`
)

// want is the only outcome each operation may have during an outage.
var outageWant = map[string]string{
	"cat cached": "ok", "stat": "ok", "ls -l": "ok",
	"flock -n":      "ENOLCK",
	"read uncached": "EIO", "write new file": "EIO", "rewrite": "EIO", "mkdir": "EIO", "rm": "EIO", "mv": "EIO",
}

// TestOutage: B2 refuses connections for a while, then accepts them and
// never answers for as long. Throughout, cached files, stat and readdir
// answer from the last view; everything that needs B2 fails with EIO
// within the mount's timeout and keeps written bytes in recovery/; flock
// fails with ENOLCK within lock_timeout; one log line marks each change of
// B2's reachability; and a write succeeds within seconds of B2's return.
func TestOutage(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	m := e.mount("outage")
	sh(t, m.dir, `mkdir d && echo a > d/a.txt && echo b > d/b.txt && echo 'cached content' > cached && cat cached >/dev/null
		touch lockfile && echo before > victim && head -c 65536 /dev/urandom > uncached`)
	// A fresh mount knows every name but holds no bytes of "uncached"
	// (too large to be kept inline in the index, as small files are).
	m.unmount()
	m = e.mount("outage")
	sh(t, m.dir, `cat cached victim >/dev/null && ls -l d >/dev/null && stat lockfile uncached >/dev/null && flock -n lockfile true`)
	phase := outageFor(t)

	for _, mode := range []string{"refused", "black hole"} {
		before := strings.Count(m.log.String(), downLine)
		var hole *b2emu.BlackHole
		e.stop()
		if mode == "black hole" {
			var err error
			if hole, err = b2emu.ListenBlackHole(e.addr); err != nil {
				t.Fatal(err)
			}
		}
		ops := &outageOps{t: t, m: m, res: map[string]*opResult{}}
		ops.run(phase)
		if hole != nil {
			hole.Close()
		}
		e.start()
		back := time.Now()
		eventually(t, 30*time.Second, func() error {
			return os.WriteFile(m.path("after-"+strings.ReplaceAll(mode, " ", "-")), []byte("back\n"), 0o644)
		})
		recovered := time.Since(back)

		names := make([]string, 0, len(ops.res))
		for name := range ops.res {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			r := ops.res[name]
			t.Logf("%s: %-15s worst %6v  %v", mode, name, r.worst.Round(time.Millisecond), r.results)
			if want := outageWant[name]; len(r.results) != 1 || r.results[want] == 0 {
				t.Errorf("%s: %s returned %v, want only %s", mode, name, r.results, want)
			}
			bound := timeout
			if name == "flock -n" {
				bound = lockTimeout
			}
			if r.worst > bound+slack {
				t.Errorf("%s: %s took up to %v, past its bound %v", mode, name, r.worst, bound)
			}
		}
		t.Logf("%s for %v: a write succeeded %v after B2's return", mode, phase, recovered.Round(time.Millisecond))
		if recovered > 2*time.Second+slack {
			t.Errorf("%s: B2 back for %v before a write succeeded, want about 2 s", mode, recovered)
		}
		log := m.log.String()
		if n := strings.Count(log, downLine) - before; n != 1 {
			t.Errorf("%s: %d log lines say B2 is unreachable, want 1", mode, n)
		}
		if n := strings.Count(log, upLine); n != slices.Index([]string{"refused", "black hole"}, mode)+1 {
			t.Errorf("%s: %d log lines in all say B2 is back", mode, n)
		}
	}
	if !slices.ContainsFunc(m.recovery(), func(s string) bool { return strings.HasPrefix(s, "rewritten ") }) {
		t.Error("bytes written during the outage are not in the recovery directory")
	}
	g := e.group("outage")
	for name, want := range map[string]string{"victim": "before\n", "d/a.txt": "a\n", "d/b.txt": "b\n", "after-refused": "back\n", "after-black-hole": "back\n"} {
		if got, err := object(t, g, name); got != want {
			t.Errorf("after the outages B2 has %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := object(t, g, "new-1"); err == nil {
		t.Error("a file created during the outage is in B2")
	}
}
