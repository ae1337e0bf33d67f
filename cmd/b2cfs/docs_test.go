package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite "+cliDocs+" from the commands")

// cliDocs holds the checked-in markdown reference of the commands.
const cliDocs = "../../docs/cli"

// genDocs writes the markdown reference of every command into dir.
func genDocs(dir string) error {
	root := newRootCmd(cli{})
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag()
	var prepare func(*cobra.Command)
	prepare = func(c *cobra.Command) {
		c.DisableAutoGenTag = true // no date: the files change only with the commands
		if c.Long != "" {
			// The long help is laid out for a terminal: keep its layout.
			c.Long = "```\n" + strings.TrimRight(c.Long, "\n") + "\n```"
		}
		for _, sub := range c.Commands() {
			prepare(sub)
		}
	}
	prepare(root)
	return doc.GenMarkdownTree(root, dir)
}

// readDocs returns the markdown files in dir by name.
func readDocs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(f)] = b
	}
	return docs
}

// TestCLIDocs fails when docs/cli is not what the commands generate; with
// -update-docs (go generate ./cmd/b2cfs) it rewrites docs/cli.
func TestCLIDocs(t *testing.T) {
	if *updateDocs {
		for name := range readDocs(t, cliDocs) {
			if err := os.Remove(filepath.Join(cliDocs, name)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(cliDocs, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := genDocs(cliDocs); err != nil {
			t.Fatal(err)
		}
		return
	}
	dir := t.TempDir()
	if err := genDocs(dir); err != nil {
		t.Fatal(err)
	}
	want, got := readDocs(t, dir), readDocs(t, cliDocs)
	var stale []string
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			stale = append(stale, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			stale = append(stale, name)
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		t.Errorf("docs/cli is out of date (%s); regenerate it with: go generate ./cmd/b2cfs", strings.Join(stale, ", "))
	}
}
