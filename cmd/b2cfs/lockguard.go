package main

// The guard of "b2cfs lock": what makes the command die with the lock.
//
// "b2cfs lock" does not start COMMAND itself. It starts its own executable
// again (guardExecutable) as a guard, marked by $B2CFS_LOCK_GUARD (the
// grace period), and the guard starts COMMAND. Guard and command stay in
// the tool's process group and session, with the tool's standard streams,
// so the terminal, its foreground group and Ctrl-C work as they do for any
// command. The tool keeps the write end of a pipe whose read end is the
// guard's descriptor 3, and tells the guard through it:
//
//   - 'T': the tool got SIGINT or SIGTERM; the guard passes SIGTERM on to
//     COMMAND (the process) and goes on waiting, as the tool did before.
//   - 'L': the lock was lost; the guard ends COMMAND's processes (below).
//   - end of file: the tool is gone, however it died (kill -9 included):
//     the kernel closes the pipe as it dies, at once and on any thread, so
//     this needs neither PR_SET_PDEATHSIG nor a locked OS thread in the
//     tool. The guard ends COMMAND's processes.
//
// Ending COMMAND's processes: SIGTERM (and SIGCONT, for stopped ones) to
// COMMAND and every process descended from it, then, --lost-grace later,
// SIGKILL to those still there, until none is left (or for at most
// guardKillWait, for processes stuck in the kernel); then the guard exits
// with COMMAND's status. On Linux the guard is a child subreaper
// (PR_SET_CHILD_SUBREAPER), so processes whose parent died, daemons that
// double-forked or called setsid included, are reparented to the guard and
// stay its descendants, found in /proc. Elsewhere only COMMAND itself is
// signalled.
//
// The guard exits with COMMAND's status (128+N when a signal N killed it;
// 127 or 126 when it could not be started), which "b2cfs lock" exits with.
// When COMMAND exits normally the guard exits at once and leaves alone
// what COMMAND left running in the background, as the tool always did.
// The guard ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to it (a
// terminal sends them to the whole group; the tool decides), and COMMAND
// starts with their default handling, but for one ignored from the start
// (nohup's SIGHUP), which stays ignored. Should the guard itself be
// killed, COMMAND gets SIGKILL (PR_SET_PDEATHSIG, set by the guard's main
// thread, which lives as long as the guard).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// envLockGuard marks a process started as the guard of "b2cfs lock"; its
// value is the grace period between SIGTERM and SIGKILL.
const envLockGuard = "B2CFS_LOCK_GUARD"

// Messages of the tool to its guard.
const (
	guardTerm = 'T' // pass SIGTERM on to the command
	guardLost = 'L' // the lock is lost: end the command's processes
)

const (
	// guardPoll is how often a guard that ends processes looks for those
	// left.
	guardPoll = 50 * time.Millisecond
	// guardKillWait bounds the wait for processes after SIGKILL.
	guardKillWait = 5 * time.Second
)

// The guard runs before main (and before a test binary's tests, which is
// how the tests' "b2cfs lock" runs have one).
func init() {
	v, ok := os.LookupEnv(envLockGuard)
	if !ok {
		return
	}
	os.Exit(runLockGuard(v, os.Args[1:]))
}

// startGuard starts the guard of argv, with the command's standard streams
// from c. The guard reads ctl's other end; closing ctl (or dying) tells it
// that the tool is gone.
func startGuard(c cli, argv []string, grace time.Duration) (cmd *exec.Cmd, ctl *os.File, err error) {
	exe, err := guardExecutable()
	if err != nil {
		return nil, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	cmd = exec.Command(exe)
	cmd.Args = append([]string{"b2cfs-lock-guard"}, argv...)
	cmd.Env = append(os.Environ(), envLockGuard+"="+grace.String())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.stdin, c.stdout, c.stderr
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, nil, err
	}
	return cmd, w, nil
}

// runLockGuard is the guard: it runs argv and returns the exit status.
func runLockGuard(graceEnv string, argv []string) int {
	// Init runs on the main thread; keep it, for COMMAND's PDEATHSIG.
	runtime.LockOSThread()
	grace, err := time.ParseDuration(graceEnv)
	if err != nil || len(argv) == 0 {
		fmt.Fprintf(os.Stderr, "b2cfs: lock guard: bad %s=%q or no command\n", envLockGuard, graceEnv)
		return exitUsage
	}
	// Caught, these get their default handling back in the command; those
	// ignored (nohup's SIGHUP) stay ignored, here and in the command.
	sigs := make(chan os.Signal, 1)
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		if !signal.Ignored(sig) {
			signal.Notify(sigs, sig)
		}
	}
	syscall.CloseOnExec(3)
	ctlFile := os.NewFile(3, "lock-guard-ctl")
	setSubreaper()

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envLockGuard+"=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = guardSysProcAttr()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "b2cfs: lock: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	pid := cmd.Process.Pid

	// Children are reaped here, not by cmd.Wait: orphans reparented to the
	// subreaper are children too. reaped is closed once none is left.
	type exit struct{ pid, status int }
	reaped := make(chan exit, 16)
	go func() {
		defer close(reaped)
		for {
			var ws syscall.WaitStatus
			p, err := syscall.Wait4(-1, &ws, 0, nil)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case err != nil:
				return // ECHILD: no child is left, so no descendant either
			}
			status := ws.ExitStatus()
			if ws.Signaled() {
				status = 128 + int(ws.Signal())
			}
			reaped <- exit{p, status}
		}
	}()
	ctl := make(chan byte)
	go func() {
		defer close(ctl)
		b := make([]byte, 1)
		for {
			if n, err := ctlFile.Read(b); n == 1 {
				ctl <- b[0]
			} else if err != nil {
				return
			}
		}
	}()

	status, running := 0, true
	ending := false             // ending COMMAND's processes
	var killAt <-chan time.Time // SIGKILL when it fires
	var poll <-chan time.Time   // while ending: look for processes left
	var giveUp <-chan time.Time // stop waiting for processes SIGKILL does not end
	end := func() {
		if ending {
			return
		}
		ending = true
		signalTree(pid, running, syscall.SIGTERM)
		signalTree(pid, running, syscall.SIGCONT)
		killAt = time.After(grace)
	}
	ctlc := ctl
	for {
		select {
		case e, ok := <-reaped:
			if !ok {
				return status
			}
			if e.pid == pid {
				status, running = e.status, false
				if !ending {
					return status
				}
			}
		case b, ok := <-ctlc:
			switch {
			case !ok:
				ctlc = nil
				end()
			case b == guardTerm && running:
				syscall.Kill(pid, syscall.SIGTERM)
			case b == guardLost:
				end()
			}
		case <-killAt:
			killAt = nil
			signalTree(pid, running, syscall.SIGKILL)
			poll = time.After(guardPoll)
			giveUp = time.After(guardKillWait)
		case <-poll:
			// Processes forked meanwhile escaped the last round.
			signalTree(pid, running, syscall.SIGKILL)
			poll = time.After(guardPoll)
		case <-giveUp:
			// Stuck in the kernel (a dead NFS or FUSE server): they die
			// as soon as they return, without running their code again.
			fmt.Fprintf(os.Stderr, "b2cfs: lock: processes of the command still there %v after SIGKILL; not waiting for them\n", guardKillWait)
			if running {
				return 128 + int(syscall.SIGKILL)
			}
			return status
		}
	}
}

// signalTree sends sig to the guard's descendants, and to the command pid
// if it is still running where descendants cannot be listed.
func signalTree(pid int, running bool, sig syscall.Signal) {
	pids := descendants(os.Getpid())
	if pids == nil && running {
		pids = []int{pid}
	}
	for _, p := range pids {
		syscall.Kill(p, sig)
	}
}
