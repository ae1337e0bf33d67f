package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// Stats are the cache's counters since New, for monitoring.
type Stats struct {
	Hits        int64 // Open found the version cached (or being filled)
	Misses      int64 // Open had to start a fill
	FilledBytes int64 // bytes written by fills (downloaded)
	UsedBytes   int64 // bytes of the versions cached now
}

// counters are updated without c.mu so that reading them never waits.
type counters struct {
	hits, misses, filled atomic.Int64
}

// Stats returns the counters. It is safe to call at any time.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:        c.stats.hits.Load(),
		Misses:      c.stats.misses.Load(),
		FilledBytes: c.stats.filled.Load(),
		UsedBytes:   c.Used(),
	}
}

// Kept describes changes kept in the recovery directory. KeepWith writes it
// beside the bytes, in a file of the same name plus KeptSuffix, so that
// the bytes can be found, restored or committed back later.
type Kept struct {
	Bucket string `json:"bucket,omitempty"`
	Group  string `json:"group,omitempty"`
	Name   string `json:"name"` // the object
	// Base is the key the changes started from; Current the key the object
	// had when they were kept ("" when it did not exist or was unknown, see
	// CurrentKnown).
	Base         string    `json:"base,omitempty"`
	Current      string    `json:"current,omitempty"`
	CurrentKnown bool      `json:"currentKnown,omitempty"`
	Reason       string    `json:"reason,omitempty"` // why they were not committed, e.g. "EBUSY: ..."
	Time         time.Time `json:"time"`
	Size         int64     `json:"size"`
}

// KeptSuffix ends the name of the description of kept bytes.
const KeptSuffix = ".json"

// KeepWith is Keep that also records k (Time and Size are filled in).
func (c *Cache) KeepWith(f *os.File, k Kept) (string, error) {
	if fi, err := f.Stat(); err == nil {
		k.Size = fi.Size()
	}
	k.Time = time.Now().UTC()
	path, err := c.Keep(f, k.Name)
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(k, "", "  ")
	if err == nil {
		err = os.WriteFile(path+KeptSuffix, append(b, '\n'), 0o600)
	}
	if err != nil {
		// The bytes are safe; only their description is missing.
		return path, fmt.Errorf("cache: describe %s: %w", path, err)
	}
	return path, nil
}
