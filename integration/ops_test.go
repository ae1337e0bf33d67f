package integration

// Tests of b2cfs as operators run it: the mount helper through mount(8),
// credentials files, the metrics endpoint and recovery after EBUSY.

import (
	"bufio"
	"encoding/json"
	"github.com/b2cfs/b2cfs/core/storetest"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// requireRoot skips a test that runs mount(8), which only root may use to
// mount what fstab does not list as "user".
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mount(8) with a helper needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("no mount(8)")
	}
}

// installHelper makes /sbin/mount.fuse.b2cfs the binary under test for
// the test's duration.
func installHelper(t *testing.T) {
	t.Helper()
	const link = "/sbin/mount.fuse.b2cfs"
	if _, err := os.Lstat(link); err == nil {
		t.Skipf("%s exists already; not replacing an installed helper", link)
	}
	if err := os.Symlink(binary, link); err != nil {
		t.Skipf("cannot install the helper: %v", err)
	}
	t.Cleanup(func() { os.Remove(link) })
}

// credsFile writes the emulator's credentials in a file of mode perm.
func credsFile(t *testing.T, dir, name string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	data := "# b2cfs test\nB2_APPLICATION_KEY_ID=" + b2emu.DefaultKeyID + "\nB2_APPLICATION_KEY=" + b2emu.DefaultKey + "\n"
	if err := os.WriteFile(p, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// daemonOf returns the pid and command line of the b2cfs process serving
// dir, or 0.
func daemonOf(dir string) (int, string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 1 && args[1] == "mount" && args[len(args)-1] == dir {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid, strings.Join(args, " ")
		}
	}
	return 0, ""
}

// helperUnmount unmounts dir with umount(8) and waits for its daemon to
// exit.
func helperUnmount(t *testing.T, dir string) {
	t.Helper()
	pid, _ := daemonOf(dir)
	for range 50 {
		if !isMounted(dir) {
			break
		}
		exec.Command("umount", dir).Run()
		time.Sleep(100 * time.Millisecond)
	}
	if isMounted(dir) {
		exec.Command("fusermount3", "-u", "-z", dir).Run()
		t.Errorf("%s still mounted after umount", dir)
	}
	if pid == 0 {
		return
	}
	for range 100 {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("b2cfs daemon %d still running after umount", pid)
}

// TestMountHelper mounts through the real mount(8) with the helper
// installed as /sbin/mount.fuse.b2cfs, as an fstab line would: a
// credentials file readable by others is refused with its reason and
// nothing mounted; a 0600 file mounts, in the background, with no
// credentials on any command line; umount ends the daemon.
func TestMountHelper(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	requireRoot(t)
	installHelper(t)
	base := t.TempDir()
	mnt := filepath.Join(base, "mnt")
	os.Mkdir(mnt, 0o755)
	logFile := filepath.Join(base, "b2cfs.log")
	opts := func(creds string) string {
		// What fstab holds, plus options mount(8) adds or keeps for itself.
		return strings.Join([]string{"_netdev", "nofail", "noauto", "x-systemd.automount", "comment=b2cfs-test", "allow_other",
			"credentials=" + creds, "endpoint=" + e.url, "cache_dir=" + filepath.Join(base, "cache"), "log=" + logFile}, ",")
	}
	// No credentials in the environment: mount(8) passes it on, and the
	// file must be what works.
	mountCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command("mount", args...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "B2_") && !strings.HasPrefix(kv, "B2CFS_") {
				env = append(env, kv)
			}
		}
		cmd.Env = env
		return cmd
	}

	bad := credsFile(t, base, "bad-creds", 0o644)
	out, err := mountCmd("-t", "fuse.b2cfs", bucket+"/helper", mnt, "-o", opts(bad)).CombinedOutput()
	if err == nil || isMounted(mnt) {
		t.Fatalf("mount with a 0644 credentials file succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "mode 0644") || !strings.Contains(string(out), "chmod 600") || strings.Contains(string(out), b2emu.DefaultKey) {
		t.Fatalf("refusal does not say why, or shows the key:\n%s", out)
	}

	good := credsFile(t, base, "creds", 0o600)
	start := time.Now()
	out, err = mountCmd("-t", "fuse.b2cfs", bucket+"/helper", mnt, "-o", opts(good)).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("mount -t fuse.b2cfs: %v\n%s\nlog:\n%s", err, out, log)
	}
	t.Cleanup(func() { helperUnmount(t, mnt) })
	t.Logf("mount -t fuse.b2cfs returned after %v", time.Since(start))
	// Ready when mount returned: no polling.
	if !isMounted(mnt) {
		t.Fatal("mount returned 0 but nothing is mounted")
	}
	sh(t, mnt, `echo from-helper > f; cat f >/dev/null`)
	if got, _ := object(t, e.group("helper"), "f"); got != "from-helper\n" {
		t.Fatalf("B2 has %q", got)
	}
	pid, cmdline := daemonOf(mnt)
	if pid == 0 {
		t.Fatal("no b2cfs process serving the mount")
	}
	if strings.Contains(cmdline, b2emu.DefaultKey) || strings.Contains(cmdline, b2emu.DefaultKeyID) {
		t.Fatalf("credentials on the daemon's command line: %s", cmdline)
	}
	if env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ"); err == nil && strings.Contains(string(env), b2emu.DefaultKey) {
		t.Fatal("credentials passed in the daemon's environment although they came from a file")
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// Field 6 is the session id; the comm field (2) has no spaces here.
		if f := strings.Fields(string(stat)); len(f) > 5 && f[5] != strconv.Itoa(pid) {
			t.Errorf("daemon %d is not in its own session (sid %s)", pid, f[5])
		}
	}
	log, _ := os.ReadFile(logFile)
	if !strings.Contains(string(log), "mounted ") || strings.Contains(string(log), b2emu.DefaultKey) {
		t.Fatalf("log:\n%s", log)
	}
	helperUnmount(t, mnt)
	if _, err := os.Stat(filepath.Join(base, "cache", "recovery")); err != nil {
		t.Error(err)
	}
}

// TestMountFuse3Style runs b2cfs as mount.fuse3 does for fuse.b2cfs
// without a helper of its own ("b2cfs SOURCE DIR -o OPTS", as found in
// PATH), with credentials from the environment: it returns once mounted,
// and the key is on no command line.
func TestMountFuse3Style(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	base := t.TempDir()
	mnt := filepath.Join(base, "mnt")
	os.Mkdir(mnt, 0o755)
	cmd := exec.Command(binary, bucket+"/fuse3", mnt, "-o", "rw,nofail,endpoint="+e.url+",cache_dir="+filepath.Join(base, "cache")+",log="+filepath.Join(base, "log"))
	cmd.Env = append(os.Environ(), "B2_APPLICATION_KEY_ID="+b2emu.DefaultKeyID, "B2_APPLICATION_KEY="+b2emu.DefaultKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { helperUnmount(t, mnt) })
	if !isMounted(mnt) {
		t.Fatal("not mounted after the helper returned")
	}
	sh(t, mnt, `echo x > f`)
	pid, cmdline := daemonOf(mnt)
	if pid == 0 || strings.Contains(cmdline, b2emu.DefaultKey) {
		t.Fatalf("daemon %d: %q", pid, cmdline)
	}
	// A second mount on the same directory fails with its reason.
	out, err = exec.Command(binary, bucket+"/fuse3", mnt, "-o", "endpoint="+e.url).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "busy") {
		t.Fatalf("second mount on %s: %v\n%s", mnt, err, out)
	}
}

var metricsURL = regexp.MustCompile(`url=(http://\S+/metrics)`)

// scrape returns the samples of a Prometheus text page, by series.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// forceEBUSY makes the next close of name on m fail with EBUSY: it opens
// the file for writing, lets another host (g) commit other bytes, then
// writes mine and closes.
func forceEBUSY(t *testing.T, m *mount, commit func(), mine string) {
	t.Helper()
	f, err := os.OpenFile(m.path("f"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	if _, err := f.WriteString(mine); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); errnoOf(err) != syscall.EBUSY {
		t.Fatalf("close after a commit elsewhere: %v, want EBUSY", err)
	}
}

// TestMetricsEndpoint scrapes --metrics-addr after a known workload:
// N files written and read back, one file another host wrote, one
// conflict, one flock.
func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("metrics", "metrics_addr=127.0.0.1:0")
	match := metricsURL.FindStringSubmatch(a.log.String())
	if match == nil {
		t.Fatalf("no metrics URL in the log:\n%s", a.log.String())
	}
	url := match[1]
	g := e.group("metrics")
	const n = 5
	// Files too large to be kept inline, so that each commit uploads.
	sh(t, a.dir, `for i in 1 2 3 4 5; do { echo "file $i"; head -c 8192 /dev/zero; } > f$i; done; cat f1 f2 f3 f4 f5 >/dev/null`)
	if _, err := g.Commit(t.Context(), "remote", "", strings.NewReader("from elsewhere\n"), 15); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		_, err := os.ReadFile(a.path("remote"))
		return err
	})
	sh(t, a.dir, `echo base > f`)
	forceEBUSY(t, a, func() {
		key, _ := storetest.Key(t.Context(), g, "f")
		if _, err := g.Commit(t.Context(), "f", key, strings.NewReader("theirs\n"), 7); err != nil {
			t.Fatal(err)
		}
	}, "mine\n")
	_, flockErr := shErr(a.dir, `flock f1 true`)

	s := scrape(t, url)
	atLeast := func(series string, min float64) {
		t.Helper()
		if v, ok := s[series]; !ok || v < min {
			t.Errorf("%s = %v (present %v), want at least %v", series, v, ok, min)
		}
	}
	atLeast(`b2cfs_commits_total{outcome="ok"}`, n+1)
	atLeast(`b2cfs_commits_total{outcome="conflict"}`, 1)
	atLeast(`b2cfs_b2_calls_total{call="b2_upload_file",class="A"}`, n+1)
	atLeast(`b2cfs_b2_calls_total{call="b2_update_bucket",class="C"}`, n+1)
	atLeast(`b2cfs_cache_misses_total`, 1)
	atLeast(`b2cfs_cache_hits_total`, 1)
	atLeast(`b2cfs_cache_filled_bytes_total`, 15)
	atLeast(`b2cfs_cache_bytes`, 1)
	atLeast(`b2cfs_fuse_op_duration_seconds_count{op="Write"}`, n)
	atLeast(`b2cfs_fuse_op_duration_seconds_count{op="Flush"}`, n)
	atLeast(`b2cfs_fuse_op_duration_seconds_count{op="Lookup"}`, 1)
	if _, ok := s[`b2cfs_cas_retries_total`]; !ok {
		t.Error("no b2cfs_cas_retries_total")
	}
	if flockErr == nil {
		atLeast(`b2cfs_lock_acquisitions_total{mode="exclusive"}`, 1)
		atLeast(`b2cfs_lock_wait_seconds_count{mode="exclusive"}`, 1)
	} else {
		t.Logf("flock unavailable, lock metrics not checked: %v", flockErr)
	}
	if t.Failed() {
		resp, _ := http.Get(url)
		b, _ := io.ReadAll(resp.Body)
		t.Logf("metrics:\n%s", b)
	}
	// One line per failed operation, with op, path, errno and cause.
	if !regexp.MustCompile(`level=WARN msg="operation failed" op=close path=/f errno=EBUSY err=".+"`).MatchString(a.log.String()) {
		t.Errorf("no log line for the failed close:\n%s", a.log.String())
	}
}

// recoverCmd runs "b2cfs recover" against the test's emulator.
func (e *env) recoverCmd(args ...string) (string, error) {
	cmd := exec.Command(binary, append([]string{"recover"}, args...)...)
	cmd.Env = append(os.Environ(), "B2_APPLICATION_KEY_ID="+b2emu.DefaultKeyID, "B2_APPLICATION_KEY="+b2emu.DefaultKey, "B2CFS_ENDPOINT="+e.url)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type keptJSON struct {
	ID   string
	Path string
	Kept struct {
		Bucket, Group, Name, Reason string
		Size                        int64
	}
}

func (e *env) keptList(t *testing.T, cacheDir string) []keptJSON {
	t.Helper()
	out, err := e.recoverCmd("--json", "--cache-dir", cacheDir)
	if err != nil {
		t.Fatalf("recover --json: %v\n%s", err, out)
	}
	var ks []keptJSON
	if err := json.Unmarshal([]byte(out), &ks); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return ks
}

// TestRecoverAfterEBUSY: bytes rejected with EBUSY are listed by "b2cfs
// recover" with their group, file and reason, restored intact, and
// committed back; a commit back is refused (until --force) when the
// object changed again after the bytes were kept.
func TestRecoverAfterEBUSY(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("recover")
	g := e.group("recover")
	sh(t, a.dir, `echo base > f`)
	theirs := func(data string) func() {
		return func() {
			key, _ := storetest.Key(t.Context(), g, "f")
			if _, err := g.Commit(t.Context(), "f", key, strings.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
		}
	}
	forceEBUSY(t, a, theirs("theirs\n"), "mine\n")

	out, err := e.recoverCmd("--cache-dir", a.cacheDir)
	if err != nil || !strings.Contains(out, bucket+"/recover") || !strings.Contains(out, "EBUSY") {
		t.Fatalf("recover: %v\n%s", err, out)
	}
	ks := e.keptList(t, a.cacheDir)
	if len(ks) != 1 || ks[0].Kept.Name != "f" || ks[0].Kept.Group != "recover" || ks[0].Kept.Bucket != bucket || ks[0].Kept.Size != 5 {
		t.Fatalf("kept: %+v", ks)
	}
	dst := filepath.Join(t.TempDir(), "mine")
	if out, err := e.recoverCmd("restore", "--cache-dir", a.cacheDir, ks[0].ID, dst); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(dst); string(b) != "mine\n" {
		t.Fatalf("restored %q", b)
	}
	if out, err := e.recoverCmd("commit", "--cache-dir", a.cacheDir, ks[0].ID); err != nil {
		t.Fatalf("commit: %v\n%s", err, out)
	}
	if got, _ := object(t, g, "f"); got != "mine\n" {
		t.Fatalf("after recover commit B2 has %q", got)
	}
	eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(a.path("f"))
		if err == nil && string(b) != "mine\n" {
			err = os.ErrInvalid
		}
		return err
	})

	// Changed again after the bytes were kept: refused, then forced.
	forceEBUSY(t, a, theirs("theirs 2\n"), "mine 2\n")
	theirs("theirs 3\n")()
	ks = e.keptList(t, a.cacheDir)
	if len(ks) != 1 {
		t.Fatalf("kept: %+v", ks)
	}
	out, err = e.recoverCmd("commit", "--cache-dir", a.cacheDir, ks[0].ID)
	if err == nil || !strings.Contains(out, "changed after the bytes were kept") {
		t.Fatalf("commit over a newer version: %v\n%s", err, out)
	}
	if got, _ := object(t, g, "f"); got != "theirs 3\n" {
		t.Fatalf("refused commit changed B2: %q", got)
	}
	if out, err := e.recoverCmd("commit", "--force", "--cache-dir", a.cacheDir, ks[0].ID); err != nil {
		t.Fatalf("commit --force: %v\n%s", err, out)
	}
	if got, _ := object(t, g, "f"); got != "mine 2\n" {
		t.Fatalf("after --force B2 has %q", got)
	}
}
