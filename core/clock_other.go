//go:build !linux

package core

import "time"

// bootTime is the monotonic clock where CLOCK_BOOTTIME is not available.
func bootTime() time.Time { return time.Now() }
