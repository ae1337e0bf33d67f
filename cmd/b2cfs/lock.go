package main

// The lock tools: lock runs a command while holding a group's lock, locks
// lists the held locks and unlock --force clears one. The lock NAME is the
// object namespace.LockName(NAME), the one a mount takes for flock on file NAME, so
// "b2cfs lock g f.lock" and "flock MOUNT/f.lock" exclude each other.
//
// The command runs under a guard process (lockguard.go) that ends it and
// the processes it started when the lock is lost or the tool dies.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newLockCmd(c cli, conn *connFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "lock [flags] BUCKET/GROUP NAME -- COMMAND [ARG...]",
		Short:   "run a command while holding a group's lock (like flock(1))",
		Long:    lockHelp,
		Example: lockExample,
		Args:    argsBetween(3, math.MaxInt),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLock(cmd.Context(), c, conn, cmd.Flags(), args)
		},
	}
	fl := cmd.Flags()
	fl.BoolP("nonblock", "n", false, "fail (exit 1) at once if the lock is held")
	fl.Float64P("wait", "w", 0, "give up (exit 1) after `SECS` seconds of waiting")
	fl.BoolP("shared", "s", false, "take a shared lock")
	fl.BoolP("exclusive", "x", true, "take an exclusive lock")
	fl.Duration("lease", 0, "lease of the lock: how long it outlives a crashed holder (default 30s)")
	fl.Duration("lost-grace", defaultLostGrace, "when the lock is lost or b2cfs dies, SIGKILL the command `DUR` after SIGTERM; by default at most a third of the lease, if given less than half of it")
	return usageStatus(cmd, exitUsage)
}

// Exit statuses of "b2cfs lock", as flock(1) has them.
const (
	exitBusy   = 1  // held elsewhere (-n), or still held when -w ran out
	exitUsage  = 64 // EX_USAGE: bad arguments
	exitNoLock = 71 // EX_OSERR: the lock could not be checked (B2 unreachable), as ENOLCK
)

// unlockTimeout bounds releasing the lock after the command; past it the
// lease is left to expire.
const unlockTimeout = 30 * time.Second

const (
	// defaultLease is core's default lease (Options.LeaseTTL).
	defaultLease = 30 * time.Second
	// defaultLostGrace is the time between SIGTERM and SIGKILL for a
	// command whose lock is lost or whose tool died; at most a third of
	// the lease.
	defaultLostGrace = 5 * time.Second
)

const lockHelp = `Runs COMMAND while holding lock NAME of the group, then releases it, as
flock(1) does. NAME is the lock of file NAME in a mount of the group: this
command and "flock MOUNTPOINT/NAME" on any host exclude each other, and so
does blazer's x/consistent Mutex on object ".b2cfs/locks/NAME".

The lock is a lease (--lease, default 30s) renewed in the background while
COMMAND runs; a host that dies stops renewing and the lock frees itself once
the lease expires. "b2cfs locks" shows the pid of this b2cfs process, its
host, the mode and when the lease expires. No mount is needed.

COMMAND does not go on for long without the lock. Its processes are COMMAND
and every process it starts (on Linux, daemons that detach included):
  - Lock lost: if the lease cannot be renewed before it expires, or the lock
    is cleared ("b2cfs unlock --force"), an error saying LOCK LOST is
    logged, COMMAND's processes get SIGTERM, and those still running after
    the grace period (--lost-grace, default 5s, or a third of the lease if
    that is shorter) get SIGKILL.
  - b2cfs dies (kill -9 included): the same, at once: SIGTERM, and SIGKILL
    after the grace period, so COMMAND's processes are gone within
    --lost-grace of b2cfs's death, before its lease lets another host in.
  - SIGINT or SIGTERM to b2cfs: passed on to COMMAND as SIGTERM; b2cfs
    waits for COMMAND to exit, then releases the lock.
COMMAND runs under a small guard process (b2cfs-lock-guard, this program
again) that does this; it keeps b2cfs's process group, standard streams and
terminal. What COMMAND leaves running in the background when it exits by
itself is not touched.

Exit status: COMMAND's (128+N when killed by signal N); 1 when the lock is
busy with -n or still busy when -w runs out; 71 when B2 cannot be reached
(the lock could not be checked, as ENOLCK); 64 for bad arguments. After
LOCK LOST that is 143 (128+SIGTERM) when COMMAND died of the SIGTERM, 137
(128+SIGKILL) when it was still running after the grace period, or its own
status when it caught SIGTERM and exited in time; so a script that must
know checks for LOCK LOST on stderr.
`

const lockExample = `  b2cfs lock -w 60 my-bucket/deploy release.lock -- ./release.sh
  b2cfs lock -n -s my-bucket/deploy cache.lock -- make`

// lockFlags are what lock's options ask for.
type lockFlags struct {
	nb     bool
	wait   time.Duration // 0: no limit
	mode   core.LockMode
	lease  time.Duration // 0: core's default, defaultLease
	grace  time.Duration // SIGTERM to SIGKILL when the lock is lost or the tool dies
	target target
	name   string
	argv   []string
}

// parseLockArgs reads lock's parsed flags fl and its arguments pos.
func parseLockArgs(fl *pflag.FlagSet, pos []string) (*lockFlags, error) {
	nb, _ := fl.GetBool("nonblock")
	wait, _ := fl.GetFloat64("wait")
	shared, _ := fl.GetBool("shared")
	lease, _ := fl.GetDuration("lease")
	grace, _ := fl.GetDuration("lost-grace")
	tg, err := parseGroupTarget("lock", pos[0])
	if err != nil {
		return nil, err
	}
	lf := &lockFlags{nb: nb, wait: time.Duration(wait * float64(time.Second)), lease: lease, target: tg, name: pos[1], argv: pos[2:]}
	if err := checkLockName(lf.name); err != nil {
		return nil, err
	}
	if wait < 0 || lease < 0 || grace < 0 {
		return nil, errors.New("lock: -w, --lease and --lost-grace must not be negative")
	}
	// The grace must end well before the lease of a dead tool lets another
	// holder in, two thirds of the lease after the tool died at the
	// earliest (it renewed every third of the lease).
	ttl := cmp.Or(lf.lease, defaultLease)
	lf.grace = grace
	switch {
	case !fl.Changed("lost-grace"):
		lf.grace = min(lf.grace, ttl/3)
	case lf.grace >= ttl/2:
		return nil, fmt.Errorf("lock: --lost-grace %v must be less than half the lease (%v)", lf.grace, ttl)
	}
	if shared {
		lf.mode = core.Shared
	}
	return lf, nil
}

// checkLockName fails for a NAME that cannot name a lock object.
func checkLockName(name string) error {
	if err := core.CheckName(namespace.LockName(name)); err != nil || name == "" {
		return fmt.Errorf("lock name %q: %w", name, core.ErrBadName)
	}
	return nil
}

func runLock(ctx context.Context, c cli, conn *connFlags, fl *pflag.FlagSet, args []string) error {
	if _, ok := c.stderr.(*os.File); !ok {
		// The log and the command's copied stderr meet in it.
		c.stderr = &syncWriter{w: c.stderr}
	}
	t := newTool(c, conn)
	lf, err := parseLockArgs(fl, args)
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	s, err := t.store(ctx, lf.target.Bucket)
	if err != nil {
		return &exitError{Code: exitNoLock, Err: err}
	}
	g, err := core.NewGroup(s, lf.target.Group, core.Options{Logger: t.log, LeaseTTL: lf.lease})
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	defer g.Close()

	// The lease is renewed until the lock is released or abandoned.
	mctx, stopRenewal := context.WithCancel(context.Background())
	defer stopRenewal()
	m := g.Mutex(mctx, namespace.LockName(lf.name))
	if err := acquire(ctx, m, lf); err != nil {
		// An attempt cut short (by -w, Ctrl-C or a slow B2) is undone in
		// the background: wait for that, so no lock record outlives us.
		sctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		m.Settle(sctx)
		cancel()
		return err
	}
	t.log.Debug("locked", "lock", lf.name, "mode", lf.mode)
	code := runLocked(ctx, c, t, m, lf)

	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	lost := false
	select {
	case <-m.Lost():
		lost = true // said already
	default:
	}
	if err := m.UnlockContext(uctx); err != nil && !lost {
		t.log.Warn("lock not released; it frees itself when its lease expires", "lock", lf.name, "err", err)
	}
	if code != 0 {
		return &exitError{Code: code}
	}
	return nil
}

// acquire takes the lock as lf asks, and turns failures into flock(1)'s
// exit statuses.
func acquire(ctx context.Context, m *core.Mutex, lf *lockFlags) error {
	var err error
	switch {
	case lf.nb:
		err = m.TryLock(ctx, lf.mode)
	case lf.wait > 0:
		wctx, cancel := context.WithTimeout(ctx, lf.wait)
		err = m.LockContext(wctx, lf.mode)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return &exitError{Code: exitBusy, Err: fmt.Errorf("lock %s: still held after %v", lf.name, lf.wait)}
		}
	default:
		err = m.LockContext(ctx, lf.mode)
	}
	var held *core.LockHeldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &held):
		return &exitError{Code: exitBusy, Err: fmt.Errorf("lock %s: %v", lf.name, held)}
	case ctx.Err() != nil:
		return &exitError{Code: 128 + int(syscall.SIGINT), Err: fmt.Errorf("lock %s: interrupted while waiting", lf.name)}
	}
	return &exitError{Code: exitNoLock, Err: fmt.Errorf("lock %s: %w", lf.name, err)}
}

// runLocked runs the command under its guard and returns its exit status.
// If the lock is lost meanwhile it logs loudly and has the guard end the
// command; should this process die, the guard ends it too (lockguard.go).
func runLocked(ctx context.Context, c cli, t *tool, m *core.Mutex, lf *lockFlags) int {
	guard, ctl, err := startGuard(c, lf.argv, lf.grace)
	if err != nil {
		fmt.Fprintf(c.stderr, "b2cfs: lock: start the command's guard: %v\n", err)
		return 126
	}
	defer ctl.Close()
	done := make(chan error, 1)
	go func() { done <- guard.Wait() }()
	lost := m.Lost()
	for {
		select {
		case err := <-done:
			return commandStatus(err)
		case <-lost:
			t.log.Error("LOCK LOST: another holder may now run alongside the command; it gets SIGTERM, then SIGKILL after the grace period", "lock", lf.name, "grace", lf.grace)
			ctl.Write([]byte{guardLost})
			lost = nil
		case <-ctx.Done():
			// SIGINT or SIGTERM reached this process; the command got it
			// too if it shares the terminal. Pass SIGTERM on, then wait.
			ctl.Write([]byte{guardTerm})
			ctx = context.Background()
		}
	}
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// commandStatus is a shell's $? for a finished command.
func commandStatus(err error) int {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return 126
		}
		return 0
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

func newLocksCmd(c cli, conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "locks [flags] BUCKET/GROUP",
		Short:   "list the held locks of a group",
		Long:    locksHelp,
		Example: locksExample,
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLocks(cmd.Context(), newTool(c, conn), args[0])
		},
	}
}

const locksHelp = `Lists the held locks of a group, one holder a line: the lock's name (the
file it locks in a mount, or the NAME given to "b2cfs lock"), mode
(exclusive or shared), host and pid of the holding process (for "b2cfs
lock", that b2cfs process; its command runs under it), since when, and when
its lease expires. Both times are the holder's own wall clock readings,
shown in local time: "never" for blazer's locks, which do not expire,
"expired" once the expiry has passed by this host's clock (the holder
stopped renewing, or the clocks differ). No mount is needed.
`

const locksExample = `  b2cfs locks my-bucket/deploy`

func runLocks(ctx context.Context, t *tool, arg string) error {
	c := t.c
	tg, err := parseGroupTarget("locks", arg)
	if err != nil {
		return err
	}
	defer t.close()
	g, v, err := t.view(ctx, tg)
	if err != nil {
		return err
	}
	names := namespace.Locks(v)
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tMODE\tHOST\tPID\tSINCE\tEXPIRES")
	now := time.Now()
	for _, name := range names {
		hs, err := g.Holders(ctx, name)
		if err != nil {
			return err
		}
		for _, h := range hs {
			p, _ := namespace.LockedPath(name)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p, h.Mode, h.Host, pidString(h.PID), sinceString(h.Acquired), expiresString(h.Expires, now))
		}
	}
	return w.Flush()
}

func pidString(pid int) string {
	if pid == 0 {
		return "-"
	}
	return fmt.Sprint(pid)
}

func sinceString(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func expiresString(t, now time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case !now.Before(t):
		return "expired " + t.Local().Format(time.DateTime)
	}
	return t.Local().Format(time.DateTime)
}

func newUnlockCmd(c cli, conn *connFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "unlock --force [flags] BUCKET/GROUP NAME",
		Short:   "clear a lock (stale, or left by a crashed host)",
		Long:    unlockHelp,
		Example: unlockExample,
		Args:    argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUnlock(cmd.Context(), newTool(c, conn), args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "clear the lock whoever holds it")
	return cmd
}

const unlockHelp = `Clears lock NAME whoever holds it, and logs who did: for a lock left by
blazer's x/consistent (it never expires by itself), or a lease you do not
want to wait for. A holder that is still running is not told: it goes on
as if it held the lock, so make sure it is gone. Without --force nothing
is changed. No mount is needed.
`

const unlockExample = `  b2cfs locks my-bucket/deploy
  b2cfs unlock --force my-bucket/deploy release.lock`

func runUnlock(ctx context.Context, t *tool, arg, name string, force bool) error {
	c := t.c
	tg, err := parseGroupTarget("unlock", arg)
	if err != nil {
		return err
	}
	if err := checkLockName(name); err != nil {
		return err
	}
	defer t.close()
	g, err := t.group(ctx, tg)
	if err != nil {
		return err
	}
	if !force {
		hs, err := g.Holders(ctx, namespace.LockName(name))
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("unlock: lock %s is not held", name)
		}
		return fmt.Errorf("unlock: lock %s is held by %s; its holder keeps running as if it held it, so clear it only with --force", name, describeHolder(hs[0], time.Now()))
	}
	hs, err := g.ForceUnlock(ctx, namespace.LockName(name))
	if err != nil {
		return err
	}
	now := time.Now()
	if len(hs) == 0 {
		fmt.Fprintf(c.stderr, "b2cfs: unlock: lock %s was not held\n", name)
	}
	for _, h := range hs {
		t.log.Warn("cleared lock", "lock", name, "mode", h.Mode, "host", h.Host, "pid", h.PID, "owner", h.Owner, "since", h.Acquired, "expires", h.Expires)
		fmt.Fprintf(c.stderr, "b2cfs: unlock: cleared lock %s: %s\n", name, describeHolder(h, now))
	}
	return nil
}
