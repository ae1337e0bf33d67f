package core_test

import (
	"strings"
	"testing"

	"github.com/b2cfs/b2cfs/core"
)

func TestLimitsUse(t *testing.T) {
	l := core.Limits{}.WithDefaults()
	if l.MaxPairs != 10 || l.MaxValueBytes != 2048 || l.MaxTotalBytes != 10000 {
		t.Fatalf("default limits %+v, want B2's 10 pairs, 2048 and 10000 bytes", l)
	}
	info := map[string]string{"k": strings.Repeat("x", 100), "other": strings.Repeat("y", 9000)}
	if used, limit := l.Use(info, "k"); used != 100 || limit != 1000 {
		t.Errorf("Use = %d, %d; want 100, 1000 (what the total leaves)", used, limit)
	}
	if used, limit := l.Use(map[string]string{}, "k"); used != 0 || limit != 2048 {
		t.Errorf("Use of an empty bucket info = %d, %d; want 0, 2048", used, limit)
	}
	if _, limit := (core.Limits{MaxValueBytes: 500}).Use(info, "k"); limit != 500 {
		t.Errorf("Use under a 500-byte value limit: %d, want 500", limit)
	}
}
