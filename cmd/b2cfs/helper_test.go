package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestHelperArgs(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want []string
	}{
		{[]string{"/sbin/mount.fuse.b2cfs", "b/g", "/mnt", "-o", "rw"}, []string{"mount-helper", "b/g", "/mnt", "-o", "rw"}},
		{[]string{"mount.b2cfs", "b/g", "/mnt"}, []string{"mount-helper", "b/g", "/mnt"}},
		// As mount.fuse3 runs it.
		{[]string{"b2cfs", "bucket-1/g", "/mnt", "-o", "ro"}, []string{"mount-helper", "bucket-1/g", "/mnt", "-o", "ro"}},
		{[]string{"b2cfs", "ls", "bucket-1/g"}, []string{"ls", "bucket-1/g"}},
		{[]string{"b2cfs", "mount", "bucket-1/g", "/mnt"}, []string{"mount", "bucket-1/g", "/mnt"}},
		{[]string{"b2cfs"}, []string{}},
	} {
		if got := helperArgs(tc.argv); !slices.Equal(got, tc.want) {
			t.Errorf("helperArgs(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

func TestParseHelperArgs(t *testing.T) {
	src, dir, opts, fake, err := parseHelperArgs([]string{
		"my-bucket/g", "/mnt/x", "-n", "-s",
		"-o", "rw,_netdev,nofail,allow_other,x-systemd.automount,comment=x,credentials=/etc/c,noatime,users",
		"-t", "fuse.b2cfs", "-oindex_ttl=2s", "-f",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"allow_other", "credentials=/etc/c", "index_ttl=2s"}
	if src != "my-bucket/g" || dir != "/mnt/x" || !slices.Equal(opts, want) || !fake {
		t.Fatalf("got %q %q %q %v, want options %q", src, dir, opts, fake, want)
	}
	for _, bad := range [][]string{
		{"b/g"},
		{"b/g", "/m", "-t", "ext4"},
		{"b/g", "/m", "-o"},
		{"b/g", "/m", "-N", "ns"},
	} {
		if _, _, _, _, err := parseHelperArgs(bad); err == nil {
			t.Errorf("parseHelperArgs(%q) accepted", bad)
		}
	}
}

func TestMountServiceOptions(t *testing.T) {
	t.Setenv(envEndpoint, "http://from-env")
	mc, err := parseMountArgs([]string{"-o", "credentials=creds,metrics_addr=:9100,log=syslog,verbose,_netdev,comment=x,x-systemd.requires=y,cache_dir=/tmp/c", "bucket/g", "/mnt"})
	if err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	if mc.svc.credentials != filepath.Join(cwd, "creds") || mc.svc.metricsAddr != ":9100" || mc.svc.logTo != "syslog" || !mc.svc.verbose {
		t.Errorf("service options: %+v", mc.svc)
	}
	if mc.endpoint != "http://from-env" {
		t.Errorf("endpoint %q, want $%s", mc.endpoint, envEndpoint)
	}
	mc, err = parseMountArgs([]string{"--credentials", "/c", "--metrics-addr", "localhost:1", "-v", "-o", "endpoint=http://e", "bucket/g", "/mnt"})
	if err != nil || mc.svc.credentials != "/c" || mc.svc.metricsAddr != "localhost:1" || !mc.svc.verbose || mc.endpoint != "http://e" {
		t.Errorf("flags: %v %+v %q", err, mc.svc, mc.endpoint)
	}
	if _, err := parseMountArgs([]string{"-o", "credentials=", "b/g", "/mnt"}); err == nil {
		t.Error("empty credentials= accepted")
	}
}

func TestMountLogTarget(t *testing.T) {
	mc := &mountConfig{cacheDir: "/c"}
	if got := mc.svc.logTarget(mc); got != "stderr" {
		t.Errorf("foreground logs to %s", got)
	}
	mc.svc.daemon = true
	if got := mc.svc.logTarget(mc); got != "syslog" && got != "/c/b2cfs.log" {
		t.Errorf("daemon logs to %s", got)
	}
	mc.svc.logTo = "/var/log/x"
	if got := mc.svc.logTarget(mc); got != "/var/log/x" {
		t.Errorf("log= ignored: %s", got)
	}
}

func TestReadyPipe(t *testing.T) {
	var p *readyPipe
	p.finish(nil) // no helper: nothing happens
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok\n"},
		{io.ErrUnexpectedEOF, "error: unexpected EOF\n"},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		p := &readyPipe{f: w}
		p.finish(tc.err)
		p.finish(io.EOF) // only the first report counts
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != tc.want {
			t.Errorf("reported %q, want %q", b, tc.want)
		}
	}
}

func TestInstallHelper(t *testing.T) {
	dir := t.TempDir()
	install := func(args ...string) error {
		c := cli{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv}
		return execute(context.Background(), c, append([]string{"install-helper", "--dir", dir}, args...))
	}
	if err := install(); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, helperName)
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if target != exe {
		t.Errorf("%s -> %s, want %s", link, target, exe)
	}
	if err := install(); err != nil {
		t.Errorf("second install: %v", err)
	}
	os.Remove(link)
	os.WriteFile(link, []byte("other"), 0o755)
	if err := install(); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("replaced another helper without --force: %v", err)
	}
	if err := install("--force"); err != nil {
		t.Error(err)
	}
	if err := install("--remove"); err != nil {
		t.Error(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("helper not removed: %v", err)
	}
}

// TestEveryCommandHelp runs "b2cfs CMD --help" and "b2cfs help CMD" for
// every command: each must exit 0 and show its usage and an example on
// stdout.
func TestEveryCommandHelp(t *testing.T) {
	for _, cmd := range newRootCmd(cli{}).Commands() {
		for _, args := range [][]string{{cmd.Name(), "--help"}, {"help", cmd.Name()}} {
			var out, errs bytes.Buffer
			code := run(context.Background(), args, &out, &errs)
			if code != 0 || !strings.Contains(out.String(), "Usage:\n  b2cfs "+cmd.Name()) || !strings.Contains(out.String(), "Examples:") {
				t.Errorf("b2cfs %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errs.String())
			}
		}
	}
}

// TestDefaultCacheDirPerMount: without cache_dir, mounts of one group on
// different mountpoints get different cache directories, named after the
// mountpoint, and the same mountpoint always the same one.
func TestDefaultCacheDirPerMount(t *testing.T) {
	tg := target{Bucket: "my-bucket", Group: "g"}
	a, b := defaultCacheDir("/c", tg, "/mnt/a/demo"), defaultCacheDir("/c", tg, "/mnt/b/demo")
	if a == b {
		t.Fatalf("two mountpoints share %s", a)
	}
	for _, d := range []string{a, b} {
		if !strings.HasPrefix(d, "/c/b2cfs/my-bucket/g/demo-") {
			t.Errorf("cache dir %s is not under /c/b2cfs/my-bucket/g/ named after the mountpoint", d)
		}
	}
	if again := defaultCacheDir("/c", tg, "/mnt/a/demo"); again != a {
		t.Errorf("the same mountpoint got %s, then %s", a, again)
	}
}
