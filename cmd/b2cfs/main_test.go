package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelpAndVersion: "b2cfs help CMD" shows that command's help on stdout
// and exits 0, an unknown one fails, and --version names the build.
func TestHelpAndVersion(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"help", "mount"}, &out, &errs); code != 0 || !strings.Contains(out.String(), "Usage:\n  b2cfs mount") {
		t.Errorf("help mount: exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}
	out.Reset()
	errs.Reset()
	if code := run(context.Background(), []string{"help", "nosuch"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), `no command "nosuch"`) {
		t.Errorf("help nosuch: exit %d, stderr %q", code, errs.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"--version"}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "b2cfs ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("--version: exit %d, %q", code, out.String())
	}
	if out.String() != version()+"\n" {
		t.Errorf("--version = %q, want %q", out.String(), version()+"\n")
	}
}

// TestUsageErrors: a bad command line prints one line, the error and where
// help is, and exits 1, or the command's own status for usage errors.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 1, "Available Commands:"},
		{[]string{"ls"}, 1, `b2cfs: ls: wrong number of arguments, want BUCKET/GROUP[/PATH] (run "b2cfs ls --help")`},
		{[]string{"ls", "--nosuch", "b/g"}, 1, `b2cfs: unknown flag: --nosuch (run "b2cfs ls --help")`},
		{[]string{"lock", "my-bucket/g"}, exitUsage, `(run "b2cfs lock --help")`},
		{[]string{"lock", "-q", "my-bucket/g", "n", "--", "true"}, exitUsage, "unknown shorthand flag: 'q'"},
		{[]string{"fsck"}, 2, `(run "b2cfs fsck --help")`},
		{[]string{"recover", "nosuch"}, 1, `recover: unknown subcommand "nosuch"`},
	} {
		var out, errs bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errs)
		if code != tc.code || !strings.Contains(errs.String(), tc.want) {
			t.Errorf("b2cfs %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errs.String(), tc.code, tc.want)
		}
	}
}
