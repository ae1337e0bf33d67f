package core_test

import (
	"testing"

	"github.com/b2cfs/b2cfs/core"
)

func TestReserved(t *testing.T) {
	for name, want := range map[string]bool{
		".b2cfs": true, ".b2cfs/locks/f": true, core.LockPrefix + "a/b": true, core.DirMarkers + "d": true,
		".b2cfsx": false, "a/.b2cfs": false, "f": false, "": false,
	} {
		if got := core.Reserved(name); got != want {
			t.Errorf("Reserved(%q) = %v, want %v", name, got, want)
		}
	}
}
