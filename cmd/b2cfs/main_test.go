package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// TestHelpAndVersion: "b2cfs help CMD" shows that command's help and
// exits 0, an unknown one fails, and --version names the build.
func TestHelpAndVersion(t *testing.T) {
	var out, errs bytes.Buffer
	// The commands' own flag sets print their help to the process's
	// stderr.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	code := run(context.Background(), []string{"help", "mount"}, &out, &errs)
	os.Stderr = stderr
	w.Close()
	help, _ := io.ReadAll(r)
	if code != 0 || !strings.Contains(out.String()+errs.String()+string(help), "usage: b2cfs mount") {
		t.Errorf("help mount: exit %d, stdout %q, stderr %q", code, out.String(), string(help)+errs.String())
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
}
