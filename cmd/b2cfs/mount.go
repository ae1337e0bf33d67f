package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"bazil.org/fuse"
	"github.com/docker/go-units"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/fs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newMountCmd(conn *connFlags) *cobra.Command {
	var f mountFlags
	cmd := &cobra.Command{
		Use:     "mount [flags] BUCKET/GROUP MOUNTPOINT",
		Short:   "mount a group as a directory (FUSE)",
		Long:    mountHelp,
		Example: mountExample,
		Args:    argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ready := readyPipeFromEnv() // set when the mount helper started us
			defer func() { ready.finish(err) }()
			mc, err := newMountConfig(conn, &f, args[0], args[1])
			if err != nil {
				return err
			}
			mc.svc.daemon = ready.daemon()
			return runMount(cmd.Context(), mc, ready)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

const mountHelp = `Mounts the consistent group GROUP of bucket BUCKET on MOUNTPOINT and serves
it in the foreground until SIGINT, SIGTERM or "fusermount3 -u MOUNTPOINT".
Credentials come from B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY, or from
a credentials file (mode 0600). To mount in the background, at boot or from
fstab, use "mount -t fuse.b2cfs" (see "b2cfs install-helper --help").

Options (-o, comma-separated, repeatable):
  ro               read-only mount
  allow_other      let other users use the mount
  uid=N, gid=N     owner of every file (default: the caller)
  umask=OCTAL      mode mask of objects whose group records no mode
                   (default 022); given, it also masks the mode of every
                   file and directory created (besides the process's umask)
  index_ttl=T      how stale the index may be: seconds or a Go duration,
                   0 = check B2 on every access (default 1s)
  cache_dir=DIR    local copies and the recovery directory, one per mount
                   (default: the user cache dir, b2cfs/BUCKET/GROUP/MOUNT,
                   MOUNT named after the mountpoint)
  cache_size=N     bytes of cached versions, with K, M, G or T suffixes
                   (binary: 1K = 1024; default 1G)
  format=F         on-bucket format if the group is new: b2cfs (default)
                   or blazer (blazer's x/consistent, a few dozen names)
  lease=T          how long a lock taken with flock or fcntl stays held
                   without renewal, e.g. after a crash (default 30s)
  timeout=T        how long an operation that needs B2 waits for an answer
                   before it fails with EIO (default: --timeout, 10s); while
                   B2 is unreachable such operations fail at once, and
                   cached files, stat and readdir answer from the last
                   index read
  lock_timeout=T   how long flock and fcntl wait without an answer from B2
                   before ENOLCK (default 5s); a lock contended by other
                   hosts' commits is answered, and waits its turn
  debug            log every FUSE request
  credentials=FILE B2 credentials file (mode 0600), as --credentials
  endpoint=URL     B2 API URL, as --endpoint
  metrics_addr=A   serve Prometheus metrics on A (host:port) at /metrics
  verbose          log debug messages, as -v
  log=WHERE        log to a file, syslog or stderr (default: stderr; in
                   the background: syslog, else CACHE_DIR/b2cfs.log)
Changes that cannot be committed are kept in CACHE_DIR/recovery/ ("b2cfs
recover" lists them). Only a mount's start and end and failed operations
(op, path, errno, cause) are logged unless -v.
`

const mountExample = `  b2cfs mount --credentials /etc/b2cfs/creds --metrics-addr localhost:9877 \
      -o index_ttl=1s my-bucket/deploy /mnt/deploy`

// mountConfig is what the command line asks for.
type mountConfig struct {
	endpoint      string
	bucket, group string
	dir           string
	ro            bool
	allowOther    bool
	uid, gid      uint32
	umask         os.FileMode
	umaskSet      bool          // umask= given: it masks created modes too
	ttl           time.Duration // < 0: always check
	cacheDir      string
	cacheSize     int64
	format        string
	lease         time.Duration // lock lease TTL; 0: core's default
	timeout       time.Duration // bound of an operation that needs B2
	lockTimeout   time.Duration // bound of one lock attempt; 0: core's default
	debug         bool
	svc           serviceConfig // credentials, metrics, logging (helper.go)
}

// mountFlags are mount's own flags; the connection flags (--credentials,
// --endpoint, --timeout, -v) are the root's.
type mountFlags struct {
	metricsAddr string
	opts        []string // -o, each comma-separated
}

func (f *mountFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on `ADDR` (host:port) at /metrics; also -o metrics_addr=ADDR")
	fl.StringArrayVarP(&f.opts, "options", "o", nil, "mount `OPTIONS`, comma-separated (repeatable)")
}

// parseMountArgs parses a whole mount command line, flags included, as
// "b2cfs mount" does: for the mount helper, which checks it before it
// starts "b2cfs mount" with it.
func parseMountArgs(args []string) (*mountConfig, error) {
	fl := pflag.NewFlagSet("mount", pflag.ContinueOnError)
	var conn connFlags
	var f mountFlags
	conn.register(fl)
	f.register(fl)
	if err := fl.Parse(args); err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	if fl.NArg() != 2 {
		return nil, fmt.Errorf("mount: want BUCKET/GROUP MOUNTPOINT (see b2cfs mount --help)")
	}
	return newMountConfig(&conn, &f, fl.Arg(0), fl.Arg(1))
}

// newMountConfig resolves the flags and -o options of a mount of source
// (BUCKET/GROUP) on dir.
func newMountConfig(conn *connFlags, f *mountFlags, source, dir string) (*mountConfig, error) {
	tg, err := parseGroupTarget("mount", source)
	if err != nil {
		return nil, err
	}
	mc := &mountConfig{
		endpoint: resolveEndpoint(conn.endpoint, os.Getenv), bucket: tg.Bucket, group: tg.Group, dir: dir,
		svc: serviceConfig{credentials: conn.credentials, metricsAddr: f.metricsAddr, verbose: conn.verbose},
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid()), umask: 0o022,
		ttl: time.Second, cacheSize: 1 << 30, timeout: conn.timeout,
	}
	for _, o := range strings.Split(strings.Join(f.opts, ","), ",") {
		if err := mc.set(o); err != nil {
			return nil, fmt.Errorf("mount: option %q: %w", o, err)
		}
	}
	if mc.cacheDir == "" {
		base, err := defaultCacheBase()
		if err != nil {
			return nil, fmt.Errorf("mount: no cache_dir given and %w", err)
		}
		dir, err := filepath.Abs(mc.dir)
		if err != nil {
			return nil, err
		}
		mc.cacheDir = defaultCacheDir(base, tg, dir)
	}
	return mc, nil
}

// defaultCacheDir is the cache directory of a mount of tg on mountpoint
// (an absolute path) when cache_dir is not given: one per group and
// mountpoint under base, so that two mounts of one group on one machine
// (a second "host" for trying things) each have their own. The mountpoint's
// last element names it; a hash of its whole path keeps it unique.
func defaultCacheDir(base string, tg target, mountpoint string) string {
	sum := sha256.Sum256([]byte(mountpoint))
	name := strings.Trim(filepath.Base(mountpoint), ".")
	if name == "" || name == "/" {
		name = "root"
	}
	return filepath.Join(base, "b2cfs", tg.Bucket, tg.Group, name+"-"+hex.EncodeToString(sum[:4]))
}

// set applies one -o option.
func (mc *mountConfig) set(o string) error {
	k, v, _ := strings.Cut(o, "=")
	var err error
	switch k {
	case "", "rw", "defaults", "auto", "noauto", "user", "nouser", "_netdev", "nofail", "dev", "nodev", "suid", "nosuid", "exec", "noexec":
	case "ro":
		mc.ro = true
	case "allow_other":
		mc.allowOther = true
	case "debug":
		mc.debug = true
	case "uid", "gid":
		var n uint64
		n, err = strconv.ParseUint(v, 10, 32)
		if k == "uid" {
			mc.uid = uint32(n)
		} else {
			mc.gid = uint32(n)
		}
	case "umask":
		var n uint64
		n, err = strconv.ParseUint(v, 8, 32)
		mc.umask = os.FileMode(n) & 0o777
		mc.umaskSet = true
	case "index_ttl":
		mc.ttl, err = parseTTL(v)
	case "cache_dir":
		mc.cacheDir, err = filepath.Abs(v)
	case "cache_size":
		mc.cacheSize, err = parseSize(v)
	case "lease":
		mc.lease, err = parsePositive(v)
	case "timeout":
		mc.timeout, err = parsePositive(v)
	case "lock_timeout":
		mc.lockTimeout, err = parsePositive(v)
	case "format":
		mc.format = v
		if v != core.FormatB2cfs && v != core.FormatBlazer {
			err = fmt.Errorf("want %s or %s", core.FormatB2cfs, core.FormatBlazer)
		}
	default:
		if ok, err := mc.setService(k, v); ok {
			return err
		}
		if strings.HasPrefix(k, "x-") {
			return nil // fstab/systemd annotations
		}
		return errors.New("unknown option")
	}
	return err
}

// parsePositive reads a positive Go duration.
func parsePositive(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = errors.New("want a positive duration such as 10s")
	}
	return d, err
}

// parseTTL reads seconds ("1", "0.5") or a Go duration ("500ms"); zero
// means always check, which core spells as a negative IndexTTL.
func parseTTL(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		s, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, fmt.Errorf("want seconds or a duration: %w", err)
		}
		d = time.Duration(s * float64(time.Second))
	}
	if d < 0 {
		return 0, errors.New("negative")
	}
	if d == 0 {
		return -1, nil
	}
	return d, nil
}

// parseSize reads a byte count: a number, optionally followed by K, M, G,
// T or P, binary multiples (512M is 512 MiB; 512m, 512MB and 512MiB say
// the same).
func parseSize(v string) (int64, error) {
	n, err := units.RAMInBytes(v)
	if err != nil || n < 0 {
		return 0, errors.New("want a byte count such as 1073741824, 512M or 2G")
	}
	return n, nil
}

// checkMountpoint fails unless dir is an existing directory with nothing
// mounted on it.
func checkMountpoint(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return fmt.Errorf("mountpoint %s is a dead FUSE mount; run: fusermount3 -u %s", dir, dir)
	case err != nil:
		return fmt.Errorf("mountpoint: %w", err)
	case !st.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", dir)
	}
	parent, err := os.Stat(filepath.Join(dir, ".."))
	if err == nil && os.SameFile(st, parent) {
		return fmt.Errorf("mountpoint %s is the root directory", dir)
	}
	if err == nil && st.Sys().(*syscall.Stat_t).Dev != parent.Sys().(*syscall.Stat_t).Dev {
		return fmt.Errorf("mountpoint %s is busy: something is already mounted there", dir)
	}
	return nil
}

// checkFUSE fails when this machine cannot mount FUSE file systems.
func checkFUSE() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("FUSE unavailable: %w", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return fmt.Errorf("FUSE unavailable: fusermount3 not found (install the fuse3 package)")
	}
	return nil
}

// lockDir takes an exclusive lock on dir for this process's lifetime, so
// two mounts never share a cache directory.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache_dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("cache_dir %s is used by another b2cfs mount: give this mount a directory of its own with -o cache_dir=DIR", dir)
	}
	return f, nil
}

// runMount mounts and serves as mc says until ctx ends or the mount is
// unmounted, telling ready (nil unless the mount helper started this
// process) once the mount is ready.
func runMount(ctx context.Context, mc *mountConfig, ready *readyPipe) (err error) {
	if os.Getenv("GOGC") == "" {
		// Every FUSE read and write allocates its 128 KiB buffer while the
		// live heap stays small, so the default target collects very often:
		// sequential reads run about a third faster with this.
		debug.SetGCPercent(400)
	}
	log, closeLog, err := mc.svc.logger(mc)
	if err != nil {
		return err
	}
	defer closeLog()
	if mc.dir, err = filepath.Abs(mc.dir); err != nil {
		return err
	}
	if err := checkMountpoint(mc.dir); err != nil {
		return err
	}
	if err := checkFUSE(); err != nil {
		return err
	}
	creds, err := loadCredentials(mc.svc.credentials, os.Getenv)
	if err != nil {
		return err
	}
	met, err := startMetrics(ctx, mc.svc.metricsAddr, log)
	if err != nil {
		return err
	}
	defer met.stop()
	lock, err := lockDir(mc.cacheDir)
	if err != nil {
		return err
	}
	defer lock.Close()

	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	g, store, err := openGroup(octx, groupOptions{
		storeOptions: storeOptions{Bucket: mc.bucket, Credentials: creds, Endpoint: mc.endpoint, Logger: log,
			Observe: met.b2Hook(), Timeout: mc.timeout},
		Group: mc.group,
		// While B2 is unreachable the mount reads from its last view;
		// a commit's outcome is settled, or reported unknown, within the
		// same bound as any call.
		Core: core.Options{IndexTTL: mc.ttl, Format: mc.format, LeaseTTL: mc.lease, LockTimeout: mc.lockTimeout,
			StaleOnOutage: true, CommitTimeout: mc.timeout, Metrics: met.coreHook()},
	})
	if err != nil {
		return err
	}
	defer store.Close()
	defer g.Close()
	met.registerStore(store)
	if _, err := g.View(octx); err != nil {
		return fmt.Errorf("read index of %s/%s: %w", mc.bucket, mc.group, err)
	}
	c, err := cache.New(mc.cacheDir, mc.cacheSize)
	if err != nil {
		return err
	}
	defer c.Close()
	met.registerCache(c)

	ttl := max(mc.ttl, 0)
	fsys := fs.New(fs.Config{
		Group: g, Cache: c, ReadOnly: mc.ro,
		UID: mc.uid, GID: mc.gid, Umask: mc.umask, CreateUmask: createUmask(mc), TTL: ttl, Logger: log,
		Bucket: mc.bucket, ObserveOp: met.opHook(),
	})
	opts := []fuse.MountOption{
		fuse.FSName(mc.bucket + "/" + mc.group),
		fuse.Subtype("b2cfs"),
		fuse.DefaultPermissions(),
		fuse.MaxReadahead(1 << 20),
		// More requests in flight at once (the kernel's default is 12):
		// sequential reads and writes keep the daemon busy instead of
		// waiting on the kernel's queue; BenchmarkSequential measures it.
		fuse.MaxBackground(64),
		fuse.CongestionThreshold(48),
		fuse.AsyncRead(),
		// flock and fcntl locks become the group's distributed locks
		// (package fs), never host-local ones.
		fuse.LockingFlock(),
		fuse.LockingPOSIX(),
	}
	if mc.ro {
		opts = append(opts, fuse.ReadOnly())
	}
	if mc.allowOther {
		opts = append(opts, fuse.AllowOther())
	}
	if mc.debug {
		fuse.Debug = func(msg any) { log.Debug("fuse", "msg", fmt.Sprint(msg)) }
	}
	conn, err := fuse.Mount(mc.dir, opts...)
	if err != nil {
		return fmt.Errorf("mount %s: %w", mc.dir, err)
	}
	served := make(chan error, 1)
	go func() { served <- fsys.Serve(conn) }()
	log.Info(fmt.Sprintf("mounted %s/%s on %s", mc.bucket, mc.group, mc.dir), "cache_dir", mc.cacheDir)
	ready.finish(nil)

	var serveErr error
	select {
	case serveErr = <-served:
		log.Info("unmounted", "dir", mc.dir)
		conn.Close()
	case <-ctx.Done():
		log.Info("unmounting", "dir", mc.dir)
		fsys.Shutdown(context.Background())
		unmount(mc.dir, log)
		select {
		case serveErr = <-served:
			conn.Close()
		case <-time.After(5 * time.Second):
			// Files are still open on the detached mount. Serve holds the
			// connection, so it is not closed here: exiting closes it and
			// the remaining users get ENOTCONN.
			log.Warn("files still open after unmount; their changes were committed or kept", "recovery", c.RecoveryDir())
		}
	}
	// Catch changes made while unmounting.
	if n := fsys.Shutdown(context.Background()); n > 0 {
		return fmt.Errorf("%d changed files could not be committed; kept in %s", n, c.RecoveryDir())
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// unmount unmounts dir, lazily if files are still open. A failure with
// dir no longer mounted is success: fusermount3 may have unmounted it and
// been stopped before it said so (a second Ctrl-C reaches it too).
func unmount(dir string, log *slog.Logger) {
	var err error
	for range 5 {
		if err = fuse.Unmount(dir); err == nil || !mounted(dir) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	log.Info("mount busy, detaching it", "dir", dir, "err", err)
	if out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput(); err != nil {
		log.Warn("lazy unmount failed", "dir", dir, "err", err, "output", strings.TrimSpace(string(out)))
	}
}

// mounted reports whether dir is a mount point of this process's mount
// namespace (true when that cannot be read: then unmount goes on trying).
// mountinfo names mount points with symlinks resolved; dir itself is not
// resolved, since that would ask the mount it names.
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(dir))
	if err != nil {
		return true
	}
	resolved := filepath.Join(parent, filepath.Base(dir))
	for line := range strings.Lines(string(b)) {
		// Field 5 is the mount point, with spaces and the like octal-escaped.
		if f := strings.Fields(line); len(f) > 4 {
			if p := unescapeMountinfo(f[4]); p == dir || p == resolved {
				return true
			}
		}
	}
	return false
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo field.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// createUmask is the mask for created modes: umask= when given, else none
// (the creating process's own umask applies in any case).
func createUmask(mc *mountConfig) os.FileMode {
	if mc.umaskSet {
		return mc.umask
	}
	return 0
}
