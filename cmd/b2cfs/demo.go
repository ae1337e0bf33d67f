package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/spf13/cobra"
)

func newDemoCmd(c cli) *cobra.Command {
	return &cobra.Command{
		Use:     "demo [MOUNTPOINT]",
		Short:   "mount a group to try b2cfs (on the built-in emulator without a B2 account)",
		Long:    demoHelp,
		Example: demoExample,
		Args:    argsBetween(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "b2cfs-demo"
			if len(args) == 1 {
				dir = args[0]
			}
			return runDemo(cmd.Context(), dir, c.stdout)
		},
	}
}

const demoHelp = `Mounts a group on MOUNTPOINT (default ./b2cfs-demo) and prints things to try,
until interrupted (Ctrl-C unmounts).

With B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY and B2CFS_DEMO=BUCKET/GROUP
set, the group is on real B2. Otherwise b2cfs starts its built-in B2
emulator, keeping its data in ~/.cache/b2cfs/demo, and mounts group "demo"
of bucket "demo-bucket". The emulator keeps its port from one demo to the
next, so that a second mount started from the printed command works again
once the demo is back; while the demo is stopped, that mount fails with
EIO.
`

const demoExample = `  go run ./cmd/b2cfs demo
  B2_APPLICATION_KEY_ID=... B2_APPLICATION_KEY=... B2CFS_DEMO=my-bucket/scratch b2cfs demo /mnt/scratch`

// runDemo mounts the demo group on dir and prints what to try on out.
func runDemo(ctx context.Context, dir string, out io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := ensureFUSE(out); err != nil {
		return err
	}
	self := "go run ./cmd/b2cfs"
	if exe, err := os.Executable(); err == nil && !strings.Contains(exe, "go-build") {
		self = exe
	}

	target := os.Getenv("B2CFS_DEMO")
	var endpoint string
	if os.Getenv("B2_APPLICATION_KEY_ID") != "" && target != "" {
		endpoint = resolveEndpoint("", os.Getenv)
		fmt.Fprintf(out, "Mounting %s from %s on %s.\n", target, endpoint, dir)
	} else {
		home, err := os.UserCacheDir()
		if err != nil {
			home = os.TempDir()
		}
		data := filepath.Join(home, "b2cfs", "demo")
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		srv, err := b2emu.New(b2emu.Config{Dir: data})
		if err != nil {
			return err
		}
		if endpoint, err = listenKept(srv, filepath.Join(data, "listen"), out); err != nil {
			return err
		}
		defer func() {
			srv.Close()
			fmt.Fprintf(out, "The emulator at %s stopped with the demo: other mounts of it fail with EIO until \"b2cfs demo\" runs again (on the same port).\n", endpoint)
		}()
		target = "demo-bucket/demo"
		if err := srv.CreateBucket("demo-bucket"); err != nil {
			return err
		}
		os.Setenv("B2_APPLICATION_KEY_ID", b2emu.DefaultKeyID)
		os.Setenv("B2_APPLICATION_KEY", b2emu.DefaultKey)
		fmt.Fprintf(out, "No B2 account configured (B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY, B2CFS_DEMO):\n"+
			"using the built-in B2 emulator at %s, data kept in %s.\n", endpoint, data)
	}
	second := dir + "-2"
	key := "<your key>"
	if os.Getenv("B2_APPLICATION_KEY_ID") == b2emu.DefaultKeyID {
		key = b2emu.DefaultKey // the emulator's, not a secret
	}
	fmt.Fprintf(out, `
Mounting %[1]s on %[2]s. Things to try in another terminal:

  cd %[2]s
  echo hello > greeting; cat greeting; ls -l
  mkdir -p notes/2026 && cp /etc/hostname notes/2026/ && mv notes archive
  sed -i s/hello/bonjour/ greeting
  flock counter.lock sh -c 'n=$(cat counter 2>/dev/null || echo 0); echo $((n+1)) > counter'

The group tools and a second mount (a second host: changes cross over within
index_ttl, 1 s by default, and conflicting writes fail with EBUSY):

  export B2CFS_ENDPOINT=%[6]s B2_APPLICATION_KEY_ID=%[5]s B2_APPLICATION_KEY=%[7]s
  %[3]s ls -l %[1]s
  %[3]s status %[1]s
  mkdir -p %[4]s && %[3]s mount --endpoint %[6]s %[1]s %[4]s

Ctrl-C here unmounts.

`, target, dir, self, second, os.Getenv("B2_APPLICATION_KEY_ID"), endpoint, key)
	mc, err := parseMountArgs([]string{"--endpoint", endpoint, target, dir})
	if err != nil {
		return err
	}
	return runMount(ctx, mc, nil)
}

// listenKept starts srv on the address saved in file by an earlier demo,
// so that mounts started from what it printed find it again, or on a new
// port (saved for the next demo) when there is none or it is taken.
func listenKept(srv *b2emu.Server, file string, out io.Writer) (string, error) {
	if b, err := os.ReadFile(file); err == nil {
		addr := strings.TrimSpace(string(b))
		url, err := srv.Listen(addr)
		if err == nil {
			return url, nil
		}
		fmt.Fprintf(out, "The emulator's port of the last demo (%s) is taken (%v): using a new one; mounts started from the last demo's commands need the new endpoint.\n", addr, err)
	}
	url, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(strings.TrimPrefix(url, "http://")+"\n"), 0o600); err != nil {
		return "", err
	}
	return url, nil
}

// ensureFUSE installs fuse3 when fusermount3 is missing and this is a
// Debian-like system run by root; otherwise it says what to do.
func ensureFUSE(out io.Writer) error {
	if _, err := exec.LookPath("fusermount3"); err == nil {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return fmt.Errorf("fusermount3 is missing: install FUSE 3 (Debian/Ubuntu: sudo apt-get install fuse3)")
	}
	fmt.Fprintln(out, "fusermount3 is missing: installing fuse3 with apt-get")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "fuse3"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("installing fuse3: %w (install it by hand: apt-get install fuse3)", err)
		}
	}
	return nil
}
