package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

func init() {
	commands["completion"] = command{
		summary: "print a shell completion script",
		run: func(ctx context.Context, args []string) error {
			return runCompletion(ctx, osCLI(), args)
		},
	}
}

const completionHelp = `usage: b2cfs completion bash

Prints a bash completion script for b2cfs's commands and their options.
Load it in the current shell, or install it for every shell.

Example:
  source <(b2cfs completion bash)
  b2cfs completion bash | sudo tee /etc/bash_completion.d/b2cfs >/dev/null
`

func runCompletion(_ context.Context, c cli, args []string) error {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), completionHelp) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "bash" {
		return fmt.Errorf("completion: want \"bash\" (run \"b2cfs completion --help\")")
	}
	return writeBashCompletion(c.stdout)
}

// commandFlags returns the options to complete for each command: the
// connection flags every tool shares (taken from connFlags itself) and each
// command's own. Commands missing here complete --help only.
func commandFlags() map[string][]string {
	var conn connFlags
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	conn.register(fs)
	var shared []string
	fs.VisitAll(func(f *flag.Flag) { shared = append(shared, "--"+f.Name) })
	with := func(extra ...string) []string { return append(append([]string{"--help"}, shared...), extra...) }
	return map[string][]string{
		"ls":       with("-l"),
		"cat":      with(),
		"put":      with("--format", "-r"),
		"get":      with("-r", "--force"),
		"rm":       with(),
		"mv":       with(),
		"status":   with(),
		"gc":       with("--grace", "--dry-run"),
		"fsck":     with("--repair"),
		"mount":    {"--help", "--endpoint", "-o"},
		"emulator": {"--help", "--listen", "--dir", "--key-id", "--key", "--info-value-bytes", "--min-part-size", "-v", "--bucket", "--fault"},
	}
}

func writeBashCompletion(w io.Writer) error {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	flags := commandFlags()
	var cases strings.Builder
	for _, name := range names {
		f := flags[name]
		if len(f) == 0 {
			f = []string{"--help"}
		}
		fmt.Fprintf(&cases, "\t%s) opts=%q ;;\n", name, strings.Join(f, " "))
	}
	_, err := fmt.Fprintf(w, bashTemplate, strings.Join(append(names, "help"), " "), cases.String())
	return err
}

// bashTemplate completes the command name first, then its options; after
// --credentials and --dir, and for other arguments (put's FILE or DIR, get's
// destination), bash's default file-name completion applies; "completion"
// takes "bash".
const bashTemplate = `# bash completion for b2cfs
_b2cfs() {
    local cur prev cmd opts
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ ${COMP_CWORD} -eq 1 ]]; then
        COMPREPLY=( $(compgen -W "%s" -- "${cur}") )
        return 0
    fi
    cmd="${COMP_WORDS[1]}"
    case "${prev}" in
    --credentials|--dir|-credentials|-dir)
        COMPREPLY=( $(compgen -f -- "${cur}") )
        return 0 ;;
    --endpoint|--grace|--format|-o|--listen|--key-id|--key|--bucket|--fault|--info-value-bytes|--min-part-size)
        return 0 ;;
    esac
    opts=""
    case "${cmd}" in
%s    esac
    if [[ "${cmd}" == completion ]]; then
        COMPREPLY=( $(compgen -W "bash" -- "${cur}") )
        return 0
    fi
    if [[ "${cur}" == -* ]]; then
        COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
        return 0
    fi
    return 0
}
complete -o default -F _b2cfs b2cfs
`
