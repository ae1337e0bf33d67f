package core

import (
	"time"

	"golang.org/x/sys/unix"
)

// bootTime reads CLOCK_BOOTTIME, which runs on while the machine is
// suspended (CLOCK_MONOTONIC, behind time.Now, does not).
func bootTime() time.Time {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return time.Now()
	}
	return time.Unix(0, ts.Nano())
}
