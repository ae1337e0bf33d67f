package main

// The mount helper: how mount(8) and fstab mount a group.
//
// For "mount -t fuse.b2cfs SOURCE DIR -o OPTS" (or an fstab line of type
// fuse.b2cfs) mount(8) runs /sbin/mount.fuse.b2cfs SOURCE DIR -o OPTS; with
// no such helper it runs mount.fuse3, which runs "b2cfs SOURCE DIR -o OPTS"
// found in /usr/local/bin, /usr/bin or /bin. Either way b2cfs lands in
// runMountHelper (see helperArgs). The helper checks what it can at once
// (options, mountpoint, FUSE, credentials), then starts "b2cfs mount" again
// as a daemon with a pipe on which the daemon reports "ok" once the mount is
// ready, or why it failed. The helper exits 0 only after "ok", so mount(8)
// and systemd see a mount that works, or its error.
//
// mount(8) runs helpers without PATH and HOME, so both are defaulted here
// and the default cache directory of root is /var/cache/b2cfs (see
// defaultCacheBase).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const (
	// envReadyFD names the descriptor on which a daemonized mount reports
	// readiness to the helper that started it.
	envReadyFD = "B2CFS_READY_FD"
	// helperName is what mount(8) runs for file system type fuse.b2cfs.
	helperName = "mount.fuse.b2cfs"
	// defaultPath is used when mount(8) gives no PATH: fusermount3 must be
	// found.
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// helperTimeout bounds the wait for the daemon's mount.
	helperTimeout = 3 * time.Minute
)

// helperArgs returns the command line to dispatch for argv: the arguments
// as they are, or "mount-helper" and the arguments when b2cfs runs as a
// mount helper, i.e. under the name mount.fuse.b2cfs (or any "mount.*"
// name), or as mount.fuse3 runs it: "b2cfs BUCKET/GROUP DIR -o OPTS" (no
// command has a "/" in its name).
func helperArgs(argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	args := argv[1:]
	if strings.HasPrefix(filepath.Base(argv[0]), "mount.") {
		return append([]string{"mount-helper"}, args...)
	}
	if len(args) >= 2 && strings.Contains(args[0], "/") && !strings.HasPrefix(args[0], "-") {
		return append([]string{"mount-helper"}, args...)
	}
	return args
}

// newMountHelperCmd parses its own command line, mount(8)'s.
func newMountHelperCmd() *cobra.Command {
	return &cobra.Command{
		Use:                   "mount-helper BUCKET/GROUP MOUNTPOINT [-o OPTIONS]",
		Short:                 "what mount(8) runs for -t fuse.b2cfs (see install-helper)",
		Long:                  helperHelp,
		Example:               helperExample,
		DisableFlagParsing:    true,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runMountHelper(cmd.Context(), args)
			if errors.Is(err, pflag.ErrHelp) {
				return cmd.Help()
			}
			return err
		},
	}
}

const helperHelp = `  mount -t fuse.b2cfs BUCKET/GROUP MOUNTPOINT [-o OPTIONS]

What mount(8) runs, as /sbin/mount.fuse.b2cfs (see "b2cfs install-helper"),
for "mount -t fuse.b2cfs" and fstab lines of type fuse.b2cfs. It checks the
options, the mountpoint and the credentials, starts "b2cfs mount" in the
background and exits 0 once the mount is ready; otherwise it prints why and
exits 1, with nothing mounted.

Options are those of "b2cfs mount --help". Options only mount(8) or
systemd use (_netdev, nofail, auto, noauto, user, users, owner, group, rw,
defaults, x-*, comment=, atime options) are ignored. Credentials come from
credentials=FILE (mode 0600) or B2_APPLICATION_KEY_ID and
B2_APPLICATION_KEY in the environment; they are never passed on a command
line. The background mount logs to log=FILE, or by default to syslog (the
journal), or CACHE_DIR/b2cfs.log where there is no syslog.
`

const helperExample = `  # /etc/fstab
  my-bucket/deploy /mnt/deploy fuse.b2cfs _netdev,allow_other,credentials=/etc/b2cfs/creds 0 0
  # shell
  mount -t fuse.b2cfs my-bucket/deploy /mnt/deploy -o credentials=/etc/b2cfs/creds
  umount /mnt/deploy`

// helperIgnored are options meant for mount(8), fstab or systemd.
var helperIgnored = map[string]bool{
	"_netdev": true, "nofail": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "rw": true, "defaults": true,
	"atime": true, "noatime": true, "relatime": true, "norelatime": true, "strictatime": true,
	"nostrictatime": true, "diratime": true, "nodiratime": true, "lazytime": true, "nolazytime": true,
	"dev": true, "nodev": true, "suid": true, "nosuid": true, "exec": true, "noexec": true,
	"async": true, "loud": true, "silent": true,
}

// helperOption reports whether -o option o is for mount(8) only.
func helperOption(o string) bool {
	k, _, _ := strings.Cut(o, "=")
	switch {
	case helperIgnored[k], strings.HasPrefix(k, "x-"), k == "comment", k == "fsname", k == "subtype", k == "helper":
		return true
	}
	return false
}

// parseHelperArgs reads mount(8)'s helper command line: SOURCE DIR, -o
// OPTS (repeatable), -t TYPE, and the flags -f (fake), -n, -s, -v, -w.
func parseHelperArgs(args []string) (source, dir string, opts []string, fake bool, err error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help" || a == "-help":
			return "", "", nil, false, pflag.ErrHelp
		case a == "-o" || a == "-t":
			if i+1 == len(args) {
				return "", "", nil, false, fmt.Errorf("mount helper: %s needs a value", a)
			}
			i++
			if a == "-o" {
				opts = append(opts, strings.Split(args[i], ",")...)
			} else if t := args[i]; t != "fuse.b2cfs" && t != "b2cfs" {
				return "", "", nil, false, fmt.Errorf("mount helper: file system type %q is not fuse.b2cfs", t)
			}
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, strings.Split(a[2:], ",")...)
		case a == "-f":
			fake = true
		case a == "-n" || a == "-s" || a == "-v" || a == "-w":
		case strings.HasPrefix(a, "-"):
			return "", "", nil, false, fmt.Errorf("mount helper: unsupported flag %s", a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return "", "", nil, false, errors.New("mount helper: want BUCKET/GROUP MOUNTPOINT (see b2cfs mount-helper --help)")
	}
	var kept []string
	for _, o := range opts {
		if o != "" && !helperOption(o) {
			kept = append(kept, o)
		}
	}
	return pos[0], pos[1], kept, fake, nil
}

func runMountHelper(ctx context.Context, args []string) error {
	source, dir, opts, fake, err := parseHelperArgs(args)
	if err != nil {
		return err
	}
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", defaultPath)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	margs := []string{source, dir}
	if len(opts) > 0 {
		margs = append([]string{"-o", strings.Join(opts, ",")}, margs...)
	}
	// Check here what can be checked, so that mount(8) shows the reason.
	mc, err := parseMountArgs(margs)
	if err != nil {
		return err
	}
	if err := checkMountpoint(mc.dir); err != nil {
		return err
	}
	if err := checkFUSE(); err != nil {
		return err
	}
	if _, err := loadCredentials(mc.svc.credentials, os.Getenv); err != nil {
		return err
	}
	if fake {
		return nil
	}
	return daemonize(ctx, margs, mc)
}

// daemonize runs "b2cfs mount margs" in a new session, detached from the
// terminal, and waits until it reports that the mount is ready.
func daemonize(ctx context.Context, margs []string, mc *mountConfig) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("mount helper: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("mount helper: %w", err)
	}
	defer r.Close()
	// Credentials reach the daemon as they reached us: through the
	// environment or the credentials file it reads again, never argv.
	cmd := exec.Command(exe, append([]string{"mount"}, margs...)...)
	cmd.Env = append(os.Environ(), envReadyFD+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Standard streams stay /dev/null: the daemon logs elsewhere, and a
	// caller reading our output must not wait for the daemon.
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("mount helper: start b2cfs mount: %w", err)
	}
	w.Close()
	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
		msg <- strings.TrimSpace(string(b))
	}()
	var m string
	select {
	case m = <-msg:
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		return ctx.Err()
	case <-time.After(helperTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("mount of %s/%s on %s not ready after %v (log: %s)", mc.bucket, mc.group, mc.dir, helperTimeout, mc.svc.logTarget(mc))
	}
	if m == "ok" {
		return cmd.Process.Release()
	}
	werr := cmd.Wait()
	if m == "" {
		return fmt.Errorf("b2cfs mount exited before the mount was ready (%v); see its log: %s", werr, mc.svc.logTarget(mc))
	}
	return errors.New(strings.TrimPrefix(m, "error: "))
}

// readyPipe is how a daemonized mount tells its helper that the mount is
// ready or why it failed. A nil *readyPipe (not started by a helper) does
// nothing.
type readyPipe struct {
	f *os.File // nil once told
}

// readyPipeFromEnv returns the pipe named by $B2CFS_READY_FD, or nil.
func readyPipeFromEnv() *readyPipe {
	s := os.Getenv(envReadyFD)
	if s == "" {
		return nil
	}
	os.Unsetenv(envReadyFD)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil
	}
	syscall.CloseOnExec(fd) // not for fusermount3
	return &readyPipe{f: os.NewFile(uintptr(fd), "ready")}
}

// daemon reports whether the mount runs in the background for a helper.
func (p *readyPipe) daemon() bool { return p != nil }

// finish reports err, or readiness when err is nil, once.
func (p *readyPipe) finish(err error) {
	if p == nil || p.f == nil {
		return
	}
	if err != nil {
		fmt.Fprintf(p.f, "error: %v\n", err)
	} else {
		fmt.Fprintln(p.f, "ok")
	}
	p.f.Close()
	p.f = nil
}

// serviceConfig are the mount's options for running as a service:
// credentials, metrics and logging.
type serviceConfig struct {
	credentials string // credentials file; "": the environment
	metricsAddr string // "": no metrics
	logTo       string // "": stderr, or the daemon's default; "syslog"; "stderr"; a file
	verbose     bool
	daemon      bool // started by the mount helper
}

// set applies a service option; ok is false for options it does not know.
func (mc *mountConfig) setService(k, v string) (ok bool, err error) {
	s := &mc.svc
	switch k {
	case "credentials":
		if v == "" {
			return true, errors.New("want a file name")
		}
		s.credentials, err = filepath.Abs(v)
	case "metrics_addr":
		s.metricsAddr = v
	case "log":
		s.logTo = v
		if v != "syslog" && v != "stderr" && v != "" {
			s.logTo, err = filepath.Abs(v)
		}
	case "verbose":
		s.verbose = true
	case "endpoint":
		mc.endpoint = v
	default:
		if helperOption(k) {
			return true, nil
		}
		return false, nil
	}
	return true, err
}

// logTarget says where the mount logs.
func (s *serviceConfig) logTarget(mc *mountConfig) string {
	switch {
	case s.logTo != "":
		return s.logTo
	case !s.daemon:
		return "stderr"
	case syslogAvailable():
		return "syslog"
	default:
		return filepath.Join(mc.cacheDir, "b2cfs.log")
	}
}

func syslogAvailable() bool {
	fi, err := os.Stat("/dev/log")
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// logger opens the mount's log: informational messages (mount, unmount,
// failed operations) by default, debug messages with -v or -o verbose or
// -o debug. close flushes and closes it.
func (s *serviceConfig) logger(mc *mountConfig) (log *slog.Logger, close func(), err error) {
	level := slog.LevelInfo
	if s.verbose || mc.debug {
		level = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	close = func() {}
	switch target := s.logTarget(mc); target {
	case "stderr":
	case "syslog":
		sw, err := syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, "b2cfs")
		if err != nil {
			return nil, nil, fmt.Errorf("log: %w", err)
		}
		w, close = sw, func() { sw.Close() }
	default:
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return nil, nil, fmt.Errorf("log: %w", err)
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("log: %w", err)
		}
		w, close = f, func() { f.Close() }
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), close, nil
}

// defaultCacheBase is where cache directories go unless cache_dir says
// otherwise: the user's cache directory, or /var/cache for root when there
// is none (mount(8) runs helpers without HOME).
func defaultCacheBase() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil && os.Geteuid() == 0 {
		return "/var/cache", nil
	}
	return base, err
}

func newInstallHelperCmd(c cli) *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:     "install-helper [flags]",
		Short:   "install /sbin/mount.fuse.b2cfs for mount(8) and fstab",
		Long:    installHelp,
		Example: installExample,
		Args:    argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInstallHelper(c.stdout, f)
		},
	}
	cmd.Flags().StringVar(&f.dir, "dir", "/sbin", "install into `DIR`")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace an existing helper")
	cmd.Flags().BoolVar(&f.remove, "remove", false, "remove the helper instead")
	return cmd
}

// installFlags are install-helper's options.
type installFlags struct {
	dir           string
	force, remove bool
}

const installHelp = `Installs the mount helper DIR/mount.fuse.b2cfs (default /sbin), a symbolic
link to this b2cfs binary, so that "mount -t fuse.b2cfs" and fstab lines of
type fuse.b2cfs work. The same as:
  ln -s "$(command -v b2cfs)" /sbin/mount.fuse.b2cfs
`

const installExample = `  sudo b2cfs install-helper
  sudo mount -t fuse.b2cfs my-bucket/deploy /mnt/deploy -o credentials=/etc/b2cfs/creds`

func runInstallHelper(out io.Writer, f installFlags) error {
	link := filepath.Join(f.dir, helperName)
	if f.remove {
		if err := os.Remove(link); err != nil {
			return fmt.Errorf("install-helper: %w", err)
		}
		fmt.Fprintf(out, "removed %s\n", link)
		return nil
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fmt.Errorf("install-helper: %w", err)
	}
	if cur, err := os.Readlink(link); err == nil && cur == exe {
		fmt.Fprintf(out, "%s -> %s (already installed)\n", link, exe)
		return nil
	}
	if _, err := os.Lstat(link); err == nil {
		if !f.force {
			return fmt.Errorf("install-helper: %s exists; pass --force to replace it", link)
		}
		if err := os.Remove(link); err != nil {
			return fmt.Errorf("install-helper: %w", err)
		}
	}
	if err := os.Symlink(exe, link); err != nil {
		return fmt.Errorf("install-helper: %w", err)
	}
	fmt.Fprintf(out, "%s -> %s\n", link, exe)
	return nil
}
