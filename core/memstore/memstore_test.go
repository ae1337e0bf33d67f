package memstore_test

import (
	"testing"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store { return memstore.New() })
}
