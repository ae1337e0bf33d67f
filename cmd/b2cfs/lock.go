package main

// The lock tools: lock runs a command while holding a group's lock, locks
// lists the held locks and unlock --force clears one. The lock NAME is the
// object lockPrefix+NAME, the one a mount takes for flock on file NAME, so
// "b2cfs lock g f.lock" and "flock MOUNT/f.lock" exclude each other.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

func init() {
	for _, t := range []struct {
		name, summary string
		run           func(context.Context, cli, []string) error
	}{
		{"lock", "run a command while holding a group's lock (like flock(1))", runLock},
		{"locks", "list the held locks of a group", runLocks},
		{"unlock", "clear a lock (stale, or left by a crashed host)", runUnlock},
	} {
		run := t.run
		commands[t.name] = command{
			summary: t.summary,
			run:     func(ctx context.Context, args []string) error { return run(ctx, osCLI(), args) },
		}
	}
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

const lockHelp = `usage: b2cfs lock [options] BUCKET/GROUP NAME -- COMMAND [ARG...]

Runs COMMAND while holding lock NAME of the group, then releases it, as
flock(1) does. NAME is the lock of file NAME in a mount of the group: this
command and "flock MOUNTPOINT/NAME" on any host exclude each other, and so
does blazer's x/consistent Mutex on object ".b2cfs/locks/NAME".

The lock is a lease renewed in the background while COMMAND runs; a host that
dies stops renewing and the lock frees itself once the lease expires. If it
cannot be renewed until it expires, an error saying LOCK LOST is logged (the
command keeps running). No mount is needed.

Exit status: COMMAND's (128+N when killed by signal N); 1 when the lock is
busy with -n or still busy when -w runs out; 71 when B2 cannot be reached
(the lock could not be checked, as ENOLCK); 64 for bad arguments.
`

const lockExample = `
Example:
  b2cfs lock -w 60 my-bucket/deploy release.lock -- ./release.sh
  b2cfs lock -n -s my-bucket/deploy cache.lock -- make
`

// lockFlags are what lock's options ask for.
type lockFlags struct {
	nb     bool
	wait   time.Duration // 0: no limit
	mode   core.LockMode
	lease  time.Duration
	target target
	name   string
	argv   []string
}

func parseLockArgs(t *tool, args []string) (*lockFlags, error) {
	nb := t.flags.Bool("n", false, "fail (exit 1) at once if the lock is held")
	wait := t.flags.Float64("w", 0, "give up (exit 1) after `SECS` seconds of waiting")
	shared := t.flags.Bool("s", false, "take a shared lock")
	t.flags.Bool("x", true, "take an exclusive lock (the default)")
	lease := t.flags.Duration("lease", 0, "lease of the lock: how long it outlives a crashed holder (default 30s)")
	pos, err := t.parse(args, 3, 1<<20)
	if err != nil {
		return nil, err
	}
	tg, err := parseGroupTarget("lock", pos[0])
	if err != nil {
		return nil, err
	}
	lf := &lockFlags{nb: *nb, wait: time.Duration(*wait * float64(time.Second)), lease: *lease, target: tg, name: pos[1], argv: pos[2:]}
	if err := checkLockName(lf.name); err != nil {
		return nil, err
	}
	if *wait < 0 || *lease < 0 {
		return nil, errors.New("lock: -w and --lease must not be negative")
	}
	if *shared {
		lf.mode = core.Shared
	}
	return lf, nil
}

// checkLockName fails for a NAME that cannot name a lock object.
func checkLockName(name string) error {
	if err := core.CheckName(lockPrefix + name); err != nil || name == "" {
		return fmt.Errorf("lock name %q: %w", name, core.ErrBadName)
	}
	return nil
}

func runLock(ctx context.Context, c cli, args []string) error {
	t := newTool(c, "lock", lockHelp, lockExample)
	lf, err := parseLockArgs(t, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
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
	m := g.Mutex(mctx, lockPrefix+lf.name)
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
	if err := m.UnlockContext(uctx); err != nil {
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

// runLocked runs the command and returns its exit status. It logs loudly
// if the lock is lost meanwhile.
func runLocked(ctx context.Context, c cli, t *tool, m *core.Mutex, lf *lockFlags) int {
	cmd := exec.Command(lf.argv[0], lf.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.stdin, c.stdout, c.stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(c.stderr, "b2cfs: lock: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	lost := m.Lost()
	for {
		select {
		case err := <-done:
			return commandStatus(err)
		case <-lost:
			t.log.Error("LOCK LOST: the lease could not be renewed in time; another holder may now run alongside the command", "lock", lf.name, "pid", cmd.Process.Pid)
			lost = nil
		case <-ctx.Done():
			// SIGINT or SIGTERM reached this process; the command got it
			// too if it shares the terminal. Pass SIGTERM on, then wait.
			cmd.Process.Signal(syscall.SIGTERM)
			ctx = context.Background()
		}
	}
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

const locksHelp = `usage: b2cfs locks [options] BUCKET/GROUP

Lists the held locks of a group, one holder a line: the lock's name (the
file it locks in a mount, or the NAME given to "b2cfs lock"), mode, host
and pid of the holder, since when, and when its lease expires ("never" for
blazer's locks, "expired" for a lease nobody renewed: anyone may take it).
No mount is needed.
`

const locksExample = `
Example:
  b2cfs locks my-bucket/deploy
`

func runLocks(ctx context.Context, c cli, args []string) error {
	t := newTool(c, "locks", locksHelp, locksExample)
	pos, err := t.parse(args, 1, 1)
	if err != nil {
		return err
	}
	tg, err := parseGroupTarget("locks", pos[0])
	if err != nil {
		return err
	}
	defer t.close()
	g, err := t.group(ctx, tg)
	if err != nil {
		return err
	}
	entries, err := g.Entries(ctx)
	if err != nil {
		return err
	}
	var names []string
	for name := range entries {
		if strings.HasPrefix(name, lockPrefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tMODE\tHOST\tPID\tSINCE\tEXPIRES")
	now := time.Now()
	for _, name := range names {
		hs, err := g.Holders(ctx, name)
		if err != nil {
			return err
		}
		for _, h := range hs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", name[len(lockPrefix):], h.Mode, h.Host, pidString(h.PID), sinceString(h.Acquired), expiresString(h.Expires, now))
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

const unlockHelp = `usage: b2cfs unlock --force [options] BUCKET/GROUP NAME

Clears lock NAME whoever holds it, and logs who did: for a lock left by
blazer's x/consistent (it never expires by itself), or a lease you do not
want to wait for. A holder that is still running is not told: it goes on
as if it held the lock, so make sure it is gone. Without --force nothing
is changed. No mount is needed.
`

const unlockExample = `
Example:
  b2cfs locks my-bucket/deploy
  b2cfs unlock --force my-bucket/deploy release.lock
`

func runUnlock(ctx context.Context, c cli, args []string) error {
	t := newTool(c, "unlock", unlockHelp, unlockExample)
	force := t.flags.Bool("force", false, "clear the lock whoever holds it")
	pos, err := t.parse(args, 2, 2)
	if err != nil {
		return err
	}
	tg, err := parseGroupTarget("unlock", pos[0])
	if err != nil {
		return err
	}
	name := pos[1]
	if err := checkLockName(name); err != nil {
		return err
	}
	defer t.close()
	g, err := t.group(ctx, tg)
	if err != nil {
		return err
	}
	if !*force {
		hs, err := g.Holders(ctx, lockPrefix+name)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("unlock: lock %s is not held", name)
		}
		return fmt.Errorf("unlock: lock %s is held by %s; its holder keeps running as if it held it, so clear it only with --force", name, describeHolder(hs[0], time.Now()))
	}
	hs, err := g.ForceUnlock(ctx, lockPrefix+name)
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
