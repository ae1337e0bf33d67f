package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// The tests in this package mount groups for real: the b2cfs binary, built
// once by TestMain, runs as a subprocess against an emulator running in the
// test process. Two b2cfs processes on one emulator stand for two hosts.
//
// B2CFS_BINARY names a prebuilt binary to test instead.
//
// They need /dev/fuse and fusermount3 and are skipped without them, unless
// B2CFS_REQUIRE_FUSE=1 (as in CI), which turns the skip into a failure.

const bucket = "b2cfs-test"

// binary is the b2cfs command built by TestMain ("" if the build failed).
var (
	binary   string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "b2cfs-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, "b2cfs")
	out, err := exec.Command("go", "build", "-o", binary, "../cmd/b2cfs").CombinedOutput()
	if prebuilt := os.Getenv("B2CFS_BINARY"); prebuilt != "" {
		binary, err = prebuilt, nil // for debugging a given build
	}
	if err != nil {
		buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		binary = ""
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var trackOnce sync.Once

// trackSources stats every Go file of the module, so that "go test" caches
// a result of this package only as long as the sources of the binary it
// builds (which it does not import) are unchanged: the test cache records
// the files a test consults.
func trackSources(root string) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			os.Stat(p)
		}
		return nil
	})
}

// requireFUSE skips (or, with B2CFS_REQUIRE_FUSE=1, fails) a test that
// needs to mount.
func requireFUSE(tb testing.TB) {
	tb.Helper()
	trackOnce.Do(func() { trackSources("..") }) // after m.Run began: logged
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	var why string
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "no /dev/fuse: " + err.Error()
	} else if _, err := exec.LookPath("fusermount3"); err != nil {
		why = "no fusermount3 (package fuse3)"
	}
	if why == "" {
		return
	}
	if os.Getenv("B2CFS_REQUIRE_FUSE") == "1" {
		tb.Fatalf("FUSE required (B2CFS_REQUIRE_FUSE=1) but unavailable: %s", why)
	}
	tb.Skip("FUSE unavailable: " + why)
}

// env is one emulated B2 account with bucket "b2cfs-test".
type env struct {
	tb     testing.TB
	format string // on-bucket format of the groups mounts create ("": the default)
	emu    *b2emu.Server
	url    string
	addr   string
	seq    atomic.Int64
}

func newEnv(tb testing.TB, cfg b2emu.Config) *env {
	tb.Helper()
	requireFUSE(tb)
	emu, err := b2emu.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := emu.CreateBucket(bucket); err != nil {
		tb.Fatal(err)
	}
	url, err := emu.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { emu.Close() })
	return &env{tb: tb, emu: emu, url: url, addr: strings.TrimPrefix(url, "http://")}
}

// eachFormat runs f with an environment whose mounts create groups in
// each on-bucket format.
func eachFormat(t *testing.T, cfg b2emu.Config, f func(t *testing.T, e *env)) {
	for _, format := range []string{core.FormatB2cfs, core.FormatBlazer} {
		t.Run(format, func(t *testing.T) {
			e := newEnv(t, cfg)
			e.format = format
			f(t, e)
		})
	}
}

// stop makes B2 unreachable; start brings it back on the same address.
func (e *env) stop() {
	e.tb.Helper()
	if err := e.emu.Close(); err != nil {
		e.tb.Fatal(err)
	}
}

func (e *env) start() {
	e.tb.Helper()
	var err error
	for range 50 { // the port may linger briefly
		if _, err = e.emu.Listen(e.addr); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.tb.Fatal(err)
}

// calls returns the emulator's call counters.
func (e *env) calls() map[string]int64 { return e.emu.Stats().Calls }

// group opens group name directly, bypassing any mount, with a view that
// is always reloaded.
func (e *env) group(name string) *core.Group {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := b2.Open(ctx, b2.Config{Endpoint: e.url, KeyID: b2emu.DefaultKeyID, Key: b2emu.DefaultKey, Bucket: bucket})
	if err != nil {
		e.tb.Fatal(err)
	}
	g, err := core.NewGroup(st, name, core.Options{IndexTTL: -1})
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { g.Close() })
	return g
}

// object returns the content of name in group g as B2 has it.
func object(tb testing.TB, g *core.Group, name string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := g.NewReader(ctx, name)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

// mount is one running "b2cfs mount" process: one host.
type mount struct {
	tb       testing.TB
	dir      string
	cacheDir string
	cmd      *exec.Cmd
	log      *syncBuffer
	exited   chan struct{}
	exitErr  error
}

// mount starts b2cfs on group with the given -o options and waits until
// the mount is ready. It is unmounted at the end of the test.
func (e *env) mount(group string, opts ...string) *mount {
	e.tb.Helper()
	m, err := e.startMount(group, opts...)
	if err != nil {
		e.tb.Fatal(err)
	}
	return m
}

func (e *env) startMount(group string, opts ...string) (*mount, error) {
	e.tb.Helper()
	if e.format != "" {
		opts = append([]string{"format=" + e.format}, opts...)
	}
	base := e.tb.TempDir()
	n := e.seq.Add(1)
	m := &mount{
		tb:       e.tb,
		dir:      filepath.Join(base, fmt.Sprintf("mnt%d", n)),
		cacheDir: filepath.Join(base, fmt.Sprintf("cache%d", n)),
		log:      &syncBuffer{},
		exited:   make(chan struct{}),
	}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		return nil, err
	}
	opts = append([]string{"cache_dir=" + m.cacheDir}, opts...)
	m.cmd = exec.Command(binary, "mount", "--endpoint", e.url, "-o", strings.Join(opts, ","), bucket+"/"+group, m.dir)
	m.cmd.Env = append(os.Environ(), "B2_APPLICATION_KEY_ID="+b2emu.DefaultKeyID, "B2_APPLICATION_KEY="+b2emu.DefaultKey)
	m.cmd.Stderr = m.log
	m.cmd.Stdout = m.log
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		m.exitErr = m.cmd.Wait()
		close(m.exited)
	}()
	e.tb.Cleanup(func() {
		m.unmount()
		if strings.Contains(m.log.String(), "DATA RACE") || strings.Contains(m.log.String(), "panic:") {
			e.tb.Errorf("b2cfs mount %s crashed or raced", m.dir)
		}
		if e.tb.Failed() {
			e.tb.Logf("log of mount %s:\n%s", m.dir, m.log.String())
		}
	})
	deadline := time.After(30 * time.Second)
	for !strings.Contains(m.log.String(), "mounted ") {
		select {
		case <-m.exited:
			return nil, fmt.Errorf("b2cfs mount exited: %v\n%s", m.exitErr, m.log.String())
		case <-deadline:
			return nil, fmt.Errorf("mount not ready after 30s:\n%s", m.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !isMounted(m.dir) {
		return nil, fmt.Errorf("%s is not in /proc/self/mountinfo after the ready line", m.dir)
	}
	return m, nil
}

// path returns the path of name inside the mount.
func (m *mount) path(name string) string { return filepath.Join(m.dir, name) }

// recovery returns the contents of the files in the recovery directory.
func (m *mount) recovery() []string {
	m.tb.Helper()
	ents, err := os.ReadDir(filepath.Join(m.cacheDir, "recovery"))
	if err != nil {
		m.tb.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(m.cacheDir, "recovery", e.Name()))
		if err != nil {
			m.tb.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// signal sends sig to the b2cfs process and waits for it to exit.
func (m *mount) stop(sig os.Signal) error {
	m.tb.Helper()
	select {
	case <-m.exited:
		return m.exitErr
	default:
	}
	m.cmd.Process.Signal(sig)
	select {
	case <-m.exited:
	case <-time.After(60 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
		m.tb.Errorf("b2cfs did not exit within 60s of %v", sig)
	}
	return m.exitErr
}

// unmount stops the mount if it is running and makes sure nothing stays
// mounted.
func (m *mount) unmount() {
	m.stop(syscall.SIGTERM)
	for range 50 {
		if !isMounted(m.dir) {
			return
		}
		exec.Command("fusermount3", "-u", "-z", m.dir).Run()
		time.Sleep(100 * time.Millisecond)
	}
}

// isMounted reports whether dir is a mount point of this mount namespace.
func isMounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

// sh runs a bash script in dir and returns its combined output; it fails
// the test if the script fails.
func sh(tb testing.TB, dir, script string) string {
	tb.Helper()
	out, err := shErr(dir, script)
	if err != nil {
		tb.Fatalf("in %s: %s\n%v\n%s", dir, script, err, out)
	}
	return out
}

// shTimeout bounds one script: against hangs only, so generous enough for
// 300 MiB through a mount under the race detector on a loaded machine
// (about 2 minutes on 2 idle cores).
const shTimeout = 10 * time.Minute

func shErr(dir, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), shTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// eventually retries f until it returns nil or d has passed.
func eventually(tb testing.TB, d time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// errnoOf returns the errno inside err, or 0.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer = storetest.SyncBuffer
