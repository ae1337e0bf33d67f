package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

// complete runs "b2cfs __complete ARGS..." (what the shell scripts run)
// and returns the words offered.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := run(context.Background(), append([]string{"__complete"}, args...), &out, &errs); code != 0 {
		t.Fatalf("__complete %q: exit %d, %s", args, code, errs.String())
	}
	var words []string
	for _, line := range strings.Split(out.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, ":") { // ":4" is the directive
			word, _, _ := strings.Cut(line, "\t") // then the description
			words = append(words, word)
		}
	}
	return words
}

// TestCompletion: every shell gets a script for b2cfs, and completion
// offers every command, then each command's flags.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o default -F __start_b2cfs b2cfs",
		"zsh":  "#compdef b2cfs",
		"fish": "complete -c b2cfs",
	} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), []string{"completion", shell}, &out, &errs); code != 0 || !strings.Contains(out.String(), want) {
			t.Errorf("completion %s: exit %d, script lacks %q (stderr %q)", shell, code, want, errs.String())
		}
	}
	cmds := complete(t, "")
	for _, cmd := range newRootCmd(cli{}).Commands() {
		if !slices.Contains(cmds, cmd.Name()) {
			t.Errorf("__complete offers %q, not %s", cmds, cmd.Name())
		}
	}
	if got := complete(t, "g"); !slices.Equal(got, []string{"gc", "get"}) {
		t.Errorf(`__complete g = %q, want gc get`, got)
	}
	if got := complete(t, "gc", "--d"); !slices.Equal(got, []string{"--dry-run"}) {
		t.Errorf(`__complete gc --d = %q, want --dry-run`, got)
	}
	for _, want := range []string{"bash", "zsh", "fish"} {
		if got := complete(t, "completion", ""); !slices.Contains(got, want) {
			t.Errorf(`__complete completion "" = %q, lacks %s`, got, want)
		}
	}
	flags := complete(t, "ls", "--")
	for _, want := range []string{"--credentials", "--endpoint", "--timeout", "--verbose", "--long"} {
		if !slices.Contains(flags, want) {
			t.Errorf("__complete ls -- = %q, lacks %s", flags, want)
		}
	}
	if got := complete(t, "recover", ""); !slices.Equal(got, []string{"list", "restore", "commit", "discard"}) {
		t.Errorf(`__complete recover "" = %q`, got)
	}
}
