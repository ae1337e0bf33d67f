package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// TestLostReplies: two mounts of one group (two hosts) write files and
// rename some while B2 applies every state-changing call and then loses 30%
// of the replies (the connection dropped, a 500 or 503 instead of the
// answer, or the answer late). Every file whose close returned 0 must read
// back exactly from a third, fresh view; a file whose close failed must
// hold its previous content or not exist; a rename that returned 0 moved
// the file and one that failed did not; and the group stays readable
// throughout, read back from B2 while the hosts write. The test fails if
// the emulator injected no lost reply.
func TestLostReplies(t *testing.T) { eachFormat(t, b2emu.Config{}, testLostReplies) }

// changingCalls are the B2 calls that change what a bucket holds.
var changingCalls = []string{
	"b2_update_bucket", "b2_upload_file", "b2_copy_file", "b2_delete_file_version", "b2_hide_file",
	"b2_start_large_file", "b2_upload_part", "b2_finish_large_file", "b2_cancel_large_file",
}

// Sizes of the lost-reply run: each host writes its own files (and the
// shared ones) once per round; a group in blazer's format holds a few
// dozen names.
const (
	lostRounds = 3
	lostFiles  = 6 // per host
	lostShared = 2
)

func testLostReplies(t *testing.T, e *env) {
	const group = "lost"
	hosts := []*lostHost{
		{name: "a", m: e.mount(group)},
		{name: "b", m: e.mount(group)},
	}
	g := e.group(group)
	// A late reply arrives within the client's deadline; the other three
	// ways lose it for good.
	lost := b2emu.Fault{LostRate: 0.3, LostAs: b2emu.LostMixed, LateWait: 300 * time.Millisecond}
	for _, c := range changingCalls {
		e.emu.SetFault(c, lost)
	}

	// While the hosts write, read the group back from B2 over and over:
	// its index and every object it names.
	stop := make(chan struct{})
	var polls int
	var pollErrs []string
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			polls++
			if err := readGroup(g); err != nil && len(pollErrs) < 10 {
				pollErrs = append(pollErrs, err.Error())
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	shared := &sharedLog{ok: map[string]bool{}, failed: map[string]bool{}}
	var wg sync.WaitGroup
	for _, h := range hosts {
		h.files = map[string]*lostFile{}
		for i := range lostFiles {
			h.order = append(h.order, fmt.Sprintf("%s%d", h.name, i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.run(shared)
		}()
	}
	wg.Wait()
	close(stop)
	<-polled

	st := e.emu.Stats()
	var injected int64
	var byCall []string
	for c, n := range st.Lost {
		injected += n
		byCall = append(byCall, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(byCall)
	for _, h := range hosts {
		t.Logf("host %s: %s", h.name, h.counts())
	}
	t.Logf("shared files: %d closes returned 0, %d failed", len(shared.ok), len(shared.failed))
	t.Logf("lost replies injected: %d (%s); faults injected: %d; group read back %d times while writing",
		injected, strings.Join(byCall, ", "), sum(st.Faults), polls)
	if injected == 0 {
		t.Errorf("the emulator lost no reply: the test did not test anything")
	}
	for _, err := range pollErrs {
		t.Errorf("group unreadable while the hosts wrote: %s", err)
	}

	// The third view: a new mount, with B2 answering normally again.
	for _, c := range changingCalls {
		e.emu.SetFault(c, b2emu.Fault{})
	}
	c := e.mount(group)
	var want []string
	for _, h := range hosts {
		for _, name := range slices.Sorted(maps.Keys(h.files)) {
			lf := h.files[name]
			got, err := os.ReadFile(c.path(name))
			switch {
			case !lf.exists && err == nil:
				t.Errorf("%s: %s exists with %q; every change to it failed (%s)", h.name, name, got, lf.history())
			case !lf.exists && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("%s: reading %s, which should not exist: %v", h.name, name, err)
			case lf.exists && err != nil:
				t.Errorf("%s: %s: %v; want %q (%s)", h.name, name, err, lf.content, lf.history())
			case lf.exists && string(got) != lf.content:
				t.Errorf("%s: %s holds %q, want %q (%s)", h.name, name, got, lf.content, lf.history())
			}
			if lf.exists {
				want = append(want, name)
			}
		}
	}
	for i := range lostShared {
		name := fmt.Sprintf("s%d", i)
		got, err := os.ReadFile(c.path(name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if shared.created[name] {
				t.Errorf("shared %s does not exist, but an open created it", name)
			}
			continue
		case err != nil:
			t.Errorf("shared %s: %v", name, err)
		case shared.failed[string(got)]:
			t.Errorf("shared %s holds %q, whose close failed", name, got)
		case !shared.ok[string(got)] && (len(got) > 0 || shared.anyOK(name)):
			t.Errorf("shared %s holds %q, which no successful close wrote", name, got)
		}
		want = append(want, name)
	}
	sort.Strings(want)
	if got, w := sh(t, c.dir, `ls -A`), strings.Join(want, "\n")+"\n"; got != w {
		t.Errorf("the new mount lists\n%q\nwant\n%q", got, w)
	}
	if err := readGroup(g); err != nil {
		t.Errorf("group unreadable at the end: %v", err)
	}
	e.toolOutput("ls", "-l", bucket+"/"+group)
}

// readGroup reads the group's index from B2 and every object it names.
func readGroup(g *core.Group) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	entries, err := storetest.Keys(ctx, g)
	if err != nil {
		return err
	}
	for name, key := range entries {
		// The version the index names: superseded versions stay readable
		// for the grace period, far longer than this test.
		r := g.OpenVersion(ctx, name, key)
		_, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s at %s: %w", name, key, err)
		}
	}
	return nil
}

// lostHost is one host of the lost-reply run: its mount and what it
// believes of its own files, from the results of its calls.
type lostHost struct {
	name  string
	m     *mount
	order []string             // its files by number, under their current names
	files map[string]*lostFile // by every name one of its files had

	writes, closed, renames, renamed int
	errs                             map[string]int // failed calls by errno
}

// lostFile is what the results of one host's calls say a name holds.
type lostFile struct {
	exists  bool
	content string
	log     []string
}

func (f *lostFile) history() string { return strings.Join(f.log, "; ") }

func (h *lostHost) file(name string) *lostFile {
	f := h.files[name]
	if f == nil {
		f = &lostFile{}
		h.files[name] = f
	}
	return f
}

func (h *lostHost) failed(err error) {
	if h.errs == nil {
		h.errs = map[string]int{}
	}
	name := "?"
	if e := errnoOf(err); e != 0 {
		name = errnoName(e)
	}
	h.errs[name]++
}

func (h *lostHost) counts() string {
	var errs []string
	for e, n := range h.errs {
		errs = append(errs, fmt.Sprintf("%s %d", e, n))
	}
	sort.Strings(errs)
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	return fmt.Sprintf("%d writes, %d closes returned 0; %d renames, %d returned 0; failures: %s",
		h.writes, h.closed, h.renames, h.renamed, strings.Join(errs, ", "))
}

// run writes every file of h and the shared files once per round, and
// renames half of h's files after the first round.
func (h *lostHost) run(shared *sharedLog) {
	for r := range lostRounds {
		for i, name := range h.order {
			content := fmt.Sprintf("%s round %d of %s\n", h.name, r, h.order[i])
			h.write(name, content)
		}
		for i := range lostShared {
			name := fmt.Sprintf("s%d", i)
			content := fmt.Sprintf("%s round %d of %s\n", h.name, r, name)
			created, err := write(h.m.path(name), content)
			shared.record(name, content, created, err)
		}
		if r != 0 {
			continue
		}
		for i, name := range h.order {
			if i%2 != 0 {
				continue
			}
			to := name + ".moved"
			h.renames++
			err := os.Rename(h.m.path(name), h.m.path(to))
			from, dest := h.file(name), h.file(to)
			if err != nil {
				h.failed(err)
				from.log = append(from.log, fmt.Sprintf("rename to %s: %v", to, errnoOf(err)))
				continue
			}
			h.renamed++
			*dest = lostFile{exists: from.exists, content: from.content, log: append(from.log, "renamed from "+name)}
			*from = lostFile{log: append(slices.Clone(from.log), "renamed to "+to)}
			h.order[i] = to
		}
	}
}

// write replaces name with content through h's mount and records what
// the results say it holds now.
func (h *lostHost) write(name, content string) {
	f := h.file(name)
	h.writes++
	created, err := write(h.m.path(name), content)
	if created && !f.exists {
		f.exists, f.content = true, "" // the open created it, empty
	}
	if err != nil {
		h.failed(err)
		f.log = append(f.log, fmt.Sprintf("write %q: %v", content, err))
		return
	}
	h.closed++
	f.exists, f.content = true, content
	f.log = append(f.log, fmt.Sprintf("wrote %q", content))
}

// write opens path with O_CREAT|O_TRUNC, writes content and closes it. It
// reports whether the open succeeded, and the first error.
func write(path, content string) (opened bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return false, err
	}
	_, werr := f.WriteString(content)
	cerr := f.Close()
	if werr != nil {
		return true, werr
	}
	return true, cerr
}

// sharedLog records the writes of both hosts to the shared files.
type sharedLog struct {
	mu      sync.Mutex
	ok      map[string]bool // contents whose close returned 0
	failed  map[string]bool // contents whose write or close failed
	created map[string]bool // names an open succeeded on
	okNames map[string]bool // names with a close that returned 0
}

func (s *sharedLog) record(name, content string, opened bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.created == nil {
		s.created, s.okNames = map[string]bool{}, map[string]bool{}
	}
	if opened {
		s.created[name] = true
	}
	switch {
	case err == nil:
		s.ok[content] = true
		s.okNames[name] = true
	case opened:
		s.failed[content] = true
	}
}

func (s *sharedLog) anyOK(name string) bool { return s.okNames[name] }

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
