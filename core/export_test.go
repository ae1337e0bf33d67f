package core

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// BulkCreate adds n objects "<prefix>f<i>" of size bytes to g with one
// commit, to build large groups quickly in tests.
func BulkCreate(ctx context.Context, g *Group, prefix string, n, size int) error {
	entries := make([]Entry, n)
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	data := bytes.Repeat([]byte("x"), size)
	for i := range entries {
		eg.Go(func() error {
			k := newKey()
			fi, err := g.store.Upload(ectx, g.file(fmt.Sprintf("%sf%d", prefix, i), k), bytes.NewReader(data), int64(size), g.name)
			entries[i] = Entry{Key: k, Size: int64(size), MTime: g.opts.Now().UnixNano(), Mode: 0o644, ID: fi.ID}
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	err := g.apply(ctx, func(idx *index) error {
		for i, e := range entries {
			idx.Entries[fmt.Sprintf("%sf%d", prefix, i)] = e
		}
		return nil
	})
	return err
}

// LogLen is how many commits the commit log of an index remembers.
const LogLen = logLen

// QueueLen returns how many waiters of g queue for lock name.
func (g *Group) QueueLen(name string) int {
	g.qmu.Lock()
	defer g.qmu.Unlock()
	if q := g.queues[name]; q != nil {
		return len(q.waiters)
	}
	return 0
}

// Queued returns how many changes of g wait for the next batch.
func (g *Group) Queued() int {
	g.batch.mu.Lock()
	defer g.batch.mu.Unlock()
	return len(g.batch.pending)
}
