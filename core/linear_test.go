package core_test

import (
	"testing"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

func TestLinearizable(t *testing.T) { bothFormats(t, testLinearizable) }

func testLinearizable(t *testing.T, format string) {
	s := memstore.New()
	var groups []*core.Group
	for i := 0; i < 3; i++ {
		groups = append(groups, newGroup(t, s, format, core.Options{IndexTTL: -1, Grace: -1}))
	}
	storetest.Linearizable(t, groups, 40)
}
