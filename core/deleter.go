package core

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// deleter deletes superseded versions once their grace period is over on
// its clock, so readers that captured them elsewhere can finish. Safe for
// concurrent use.
type deleter struct {
	store  Store
	grace  time.Duration
	clock  clockwork.Clock
	log    *slog.Logger
	mu     sync.Mutex
	timers map[clockwork.Timer]struct{} // GUARDED_BY(mu); nil once closed
	wg     sync.WaitGroup
}

func newDeleter(s Store, grace time.Duration, c clockwork.Clock, log *slog.Logger) *deleter {
	return &deleter{store: s, grace: grace, clock: c, log: log, timers: map[clockwork.Timer]struct{}{}}
}

// later deletes file name at version id after the grace period. An empty id
// is looked up with one Stat first (the version was written elsewhere and
// never read here).
func (d *deleter) later(name, id string) {
	if d.grace < 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timers == nil {
		return
	}
	var t clockwork.Timer
	d.wg.Add(1)
	t = d.clock.AfterFunc(d.grace, func() {
		defer d.wg.Done()
		d.mu.Lock()
		_, live := d.timers[t]
		delete(d.timers, t)
		d.mu.Unlock()
		if live {
			d.now(name, id)
		}
	})
	d.timers[t] = struct{}{}
}

// now deletes file name at version id with a bounded deadline. Failures are
// logged: the file is then an orphan that garbage collection removes.
func (d *deleter) now(name, id string) {
	ctx, cancel := withTimeout(context.Background(), d.clock, time.Minute)
	defer cancel()
	if id == "" {
		fi, err := d.store.Stat(ctx, name)
		if errors.Is(err, ErrNotExist) {
			return
		}
		if err != nil {
			d.log.Warn("superseded version not deleted", "file", name, "err", err)
			return
		}
		id = fi.ID
	}
	if err := d.store.Delete(ctx, name, id); err != nil && !errors.Is(err, ErrNotExist) {
		d.log.Warn("superseded version not deleted", "file", name, "id", id, "err", err)
	}
}

// close cancels pending deletions and waits for running ones.
func (d *deleter) close() {
	d.mu.Lock()
	for t := range d.timers {
		if t.Stop() {
			d.wg.Done()
		}
	}
	d.timers = nil
	d.mu.Unlock()
	d.wg.Wait()
}
