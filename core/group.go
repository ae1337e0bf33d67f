package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Options tune a Group. The zero value gives the defaults.
type Options struct {
	// IndexTTL is how old the view may be before reads reload it: default
	// 1 s; negative means reload on every read. Commits never wait for a
	// reload: a stale view only costs a failed compare-and-swap.
	IndexTTL time.Duration
	// Grace is how long a superseded version stays readable before it is
	// deleted: default 1 minute; negative means keep it (never delete).
	Grace time.Duration
	// LeaseTTL is how long a lock stays held without renewal: default 30 s.
	// Holders renew every LeaseTTL/3.
	LeaseTTL time.Duration
	// LockTimeout bounds one attempt to take a lock: an attempt without a
	// verdict by then (B2 slow or unreachable) fails with ErrUnavailable.
	// Default 5 s.
	LockTimeout time.Duration
	// Limits are B2's bucket-info limits; zero fields take B2's values.
	Limits Limits
	// Format is the on-bucket format of a group that does not exist yet:
	// FormatB2cfs (the default, any size) or FormatBlazer (blazer's
	// x/consistent, a few dozen names). An existing group keeps its own.
	Format string
	// LoadTimeout bounds a shared index reload: default 1 minute.
	LoadTimeout time.Duration
	// Host and PID go into lock records; default os.Hostname and os.Getpid.
	Host string
	PID  int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives events nobody else can report (lost leases, failed
	// background deletions). Default: discard.
	Logger *slog.Logger
	// Metrics receives commits, retries and lock events. Default: none.
	Metrics Metrics
}

func (o Options) withDefaults() Options {
	if o.IndexTTL == 0 {
		o.IndexTTL = time.Second
	}
	if o.Grace == 0 {
		o.Grace = time.Minute
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = 5 * time.Second
	}
	if o.LoadTimeout == 0 {
		o.LoadTimeout = time.Minute
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	o.Limits = o.Limits.withDefaults()
	return o
}

// Group is a consistent group of objects in one bucket. It is safe for
// concurrent use; all users of a Group share its view of the index. Call
// Close when done to stop its background work.
type Group struct {
	store   Store
	name    string
	opts    Options
	formats []indexFormat // the one for new groups first

	lmu     sync.Mutex
	running *load // GUARDED_BY(lmu); the load under way, if any
	next    *load // GUARDED_BY(lmu); the load not started yet, that callers join

	ids     *lru.Cache[string, string]   // "<name>/<key>" -> B2 file id; versions are immutable
	records *lru.Cache[string, []Holder] // "<name>/<key>" -> lock record holders
	attrs   *lru.Cache[string, FileInfo] // "<name>/<key>" -> size and time of the version
	small   *lru.Cache[string, []byte]   // "<name>/<key>" -> content of versions up to smallMax bytes
	del     *deleter

	mu   sync.Mutex
	view *view // GUARDED_BY(mu); only ever replaced by a view of a higher revision
}

// view is one decoded state of the bucket. Immutable once built.
type view struct {
	rev    int64
	info   map[string]string
	format indexFormat
	idx    *index // nil when err != nil
	err    error  // why the index could not be decoded (ErrCorrupt)
	at     time.Time
	keys   map[string]string // name -> key, built on first use
	once   sync.Once
}

// Formats of Options.Format.
const (
	FormatB2cfs  = "b2cfs"
	FormatBlazer = "blazer"
)

// NewGroup returns the group called name in the bucket behind store. The
// name must keep the bucket-info key within B2's rules (ErrBadName). No B2
// call is made until the group is used.
func NewGroup(store Store, name string, opts Options) (*Group, error) {
	if err := checkGroupName(name); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	blazer, manifest := indexFormat(blazerFormat{group: name}), indexFormat(newManifestFormat(name, store))
	formats := []indexFormat{manifest, blazer}
	switch opts.Format {
	case "", FormatB2cfs:
	case FormatBlazer:
		formats = []indexFormat{blazer, manifest}
	default:
		return nil, fmt.Errorf("unknown group format %q (want %q or %q)", opts.Format, FormatB2cfs, FormatBlazer)
	}
	ids, _ := lru.New[string, string](4096)
	records, _ := lru.New[string, []Holder](1024)
	attrs, _ := lru.New[string, FileInfo](1 << 16)
	small, _ := lru.New[string, []byte](smallEntries)
	g := &Group{
		store:   store,
		name:    name,
		opts:    opts,
		formats: formats,
		ids:     ids,
		records: records,
		attrs:   attrs,
		small:   small,
	}
	g.del = newDeleter(store, opts.Grace, opts.Logger)
	return g, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Close stops background work. Versions still waiting for their grace
// period are not deleted; they are left as unreferenced files in the bucket.
func (g *Group) Close() error {
	g.del.close()
	return nil
}

// current returns a view no older than maxAge (negative: any age, loading
// only when there is none).
func (g *Group) current(ctx context.Context, maxAge time.Duration) (*view, error) {
	g.mu.Lock()
	v := g.view
	g.mu.Unlock()
	if v != nil && (maxAge < 0 || g.opts.Now().Sub(v.at) <= maxAge) {
		return v, nil
	}
	return g.reload(ctx)
}

// fresh returns a view within IndexTTL.
func (g *Group) fresh(ctx context.Context) (*view, error) {
	ttl := g.opts.IndexTTL
	if ttl < 0 {
		ttl = 0
	}
	return g.current(ctx, ttl)
}

// load is one reading of the bucket info, shared by the callers that join
// it before it starts.
type load struct {
	ctx  context.Context // of the caller that asked first, without its cancellation
	done chan struct{}
	v    *view // set before done is closed
	err  error
}

// reload returns a view read after the call began, sharing one
// b2_list_buckets among concurrent callers. A caller joins a load only if
// that load has not started yet: joining one already under way could
// return a state older than a commit that finished before the caller
// began, and reads would not be linearizable. Callers that arrive while a
// load runs share the next one, which starts when the running one ends, so
// concurrent callers cost at most two loads. A load runs on its own
// deadline, so one caller giving up does not fail the others; each caller
// still returns when its own ctx ends.
func (g *Group) reload(ctx context.Context) (*view, error) {
	g.lmu.Lock()
	l := g.next
	if l == nil {
		l = &load{ctx: context.WithoutCancel(ctx), done: make(chan struct{})}
		g.next = l
		if g.running == nil {
			g.startLoadLocked()
		}
	}
	g.lmu.Unlock()
	select {
	case <-l.done:
		if l.err != nil {
			return nil, &OpError{Op: "load index", Group: g.name, Err: l.err}
		}
		return l.v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startLoadLocked starts the pending load. LOCKS_REQUIRED(lmu)
func (g *Group) startLoadLocked() {
	l := g.next
	g.running, g.next = l, nil // callers from now on wait for the next load
	go g.runLoad(l)
}

// runLoad reads the bucket info for l and the callers that joined it, then
// starts the load that callers joined meanwhile, if any.
func (g *Group) runLoad(l *load) {
	ctx, cancel := context.WithTimeout(l.ctx, g.opts.LoadTimeout)
	at := g.opts.Now()
	bi, err := g.store.BucketInfo(ctx)
	if err != nil {
		l.err = err
	} else {
		l.v = g.install(ctx, bi, at)
	}
	cancel()
	close(l.done)
	g.lmu.Lock()
	g.running = nil
	if g.next != nil {
		g.startLoadLocked()
	}
	g.lmu.Unlock()
}

// install decodes bi and makes it the view unless a newer one is there.
func (g *Group) install(ctx context.Context, bi BucketInfo, at time.Time) *view {
	v := &view{rev: bi.Revision, info: bi.Info, at: at}
	v.format, v.idx, v.err = g.decode(ctx, bi.Info)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.view == nil || v.rev > g.view.rev || (v.rev == g.view.rev && v.at.After(g.view.at)) {
		g.view = v
	}
	return g.view
}

// decode finds the group's format in the bucket info and decodes its index.
// A group in neither format is empty, in the format for new groups.
func (g *Group) decode(ctx context.Context, info map[string]string) (indexFormat, *index, error) {
	var found indexFormat
	var value string
	for _, f := range g.formats {
		if v, ok := info[f.infoKey()]; ok {
			if found != nil {
				return found, nil, fmt.Errorf("%w: group %q is in two formats (bucket-info keys %q and %q); remove one",
					ErrCorrupt, g.name, found.infoKey(), f.infoKey())
			}
			found, value = f, v
		}
	}
	if found == nil {
		return g.formats[0], &index{Entries: map[string]Entry{}}, nil
	}
	idx, err := found.decode(ctx, value)
	return found, idx, err
}

// format returns the format of the group as last seen.
func (g *Group) format() indexFormat {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.view != nil {
		return g.view.format
	}
	return g.formats[0]
}

// file is the B2 file of version key of name.
func (g *Group) file(name, key string) string { return g.format().file(name, key) }

// Format returns the group's on-bucket format, FormatB2cfs or FormatBlazer,
// as last seen (before the first load: the format for new groups).
func (g *Group) Format() string {
	if _, ok := g.format().(blazerFormat); ok {
		return FormatBlazer
	}
	return FormatB2cfs
}

// mutation changes a clone of the index. It returns ErrConflict when the
// index shows that an object changed under the caller.
type mutation func(idx *index) error

// apply commits mut with a compare-and-swap on the bucket revision. It
// starts from the view it has, however old: a stale view fails the swap, and
// the view is then reloaded and mut applied again. A conflict found on a
// view that was not loaded by this call is checked again on a fresh one.
func (g *Group) apply(ctx context.Context, mut mutation) error {
	err := g.applyCAS(ctx, mut)
	switch {
	case err == nil:
		g.opts.Metrics.Committed("ok")
	case errors.Is(err, ErrConflict):
		g.opts.Metrics.Committed("conflict")
	case errors.Is(err, ErrGroupFull):
		g.opts.Metrics.Committed("full")
	default:
		g.opts.Metrics.Committed("error")
	}
	return err
}

func (g *Group) applyCAS(ctx context.Context, mut mutation) error {
	v, err := g.current(ctx, -1)
	if err != nil {
		return err
	}
	loaded := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if v.err != nil {
			return v.err
		}
		idx := v.idx.clone()
		if err := mut(idx); err != nil {
			if errors.Is(err, ErrConflict) && !loaded {
				if v, err = g.reload(ctx); err != nil {
					return err
				}
				loaded = true
				continue
			}
			return err
		}
		idx.Serial++
		info, ch, err := g.encode(ctx, v, idx)
		if err != nil {
			return err
		}
		at := g.opts.Now()
		bi, err := g.store.UpdateBucketInfo(ctx, v.rev, info)
		if err != nil {
			for _, f := range ch.created {
				g.discard(f.name, f.id)
			}
		}
		switch {
		case err == nil:
			for _, f := range ch.obsolete {
				g.del.later(f.name, f.id)
			}
			g.install(ctx, bi, at)
			return nil
		case errors.Is(err, ErrRevisionMismatch):
			g.opts.Metrics.CASRetried()
			if v, err = g.reload(ctx); err != nil {
				return err
			}
			loaded = true
		case errors.Is(err, ErrInfoRejected):
			return fmt.Errorf("%w: %v", ErrGroupFull, err)
		default:
			return err
		}
	}
}

// encode returns the bucket info that stores idx, derived from v's index,
// and checks it against B2's limits before anything is uploaded.
func (g *Group) encode(ctx context.Context, v *view, idx *index) (map[string]string, *change, error) {
	key := v.format.infoKey()
	info := maps.Clone(v.info)
	if info == nil {
		info = map[string]string{}
	}
	if _, ok := info[key]; !ok && len(info)+1 > g.opts.Limits.MaxPairs {
		return nil, nil, fmt.Errorf("%w: the bucket info already holds %d pairs, B2 allows %d", ErrGroupFull, len(info), g.opts.Limits.MaxPairs)
	}
	budget := g.opts.Limits.MaxTotalBytes
	for k, val := range info {
		if k != key {
			budget -= len(val)
		}
	}
	value, ch, err := v.format.encode(ctx, v.idx, idx, min(budget, g.opts.Limits.MaxValueBytes))
	if err != nil {
		return nil, nil, err
	}
	info[key] = value
	if err := g.opts.Limits.check(info); err != nil {
		for _, f := range ch.created {
			g.discard(f.name, f.id)
		}
		return nil, nil, err
	}
	return info, ch, nil
}

// List returns the names of the group's objects in byte order, from a view
// no older than IndexTTL.
func (g *Group) List(ctx context.Context) ([]string, error) {
	v, err := g.fresh(ctx)
	if err != nil {
		return nil, err
	}
	if v.err != nil {
		return nil, &OpError{Op: "list", Group: g.name, Err: v.err}
	}
	return v.idx.names(), nil
}

// Entries returns the group's index (name -> key) from a view no older than
// IndexTTL. The map must not be modified.
func (g *Group) Entries(ctx context.Context) (map[string]string, error) {
	v, err := g.fresh(ctx)
	if err != nil {
		return nil, err
	}
	if v.err != nil {
		return nil, &OpError{Op: "list", Group: g.name, Err: v.err}
	}
	v.once.Do(func() {
		v.keys = make(map[string]string, len(v.idx.Entries))
		for n, e := range v.idx.Entries {
			v.keys[n] = e.Key
		}
	})
	return v.keys, nil
}

// Snapshot returns the group's index with each entry's attributes (in
// FormatB2cfs; only keys in FormatBlazer) from a view no older than
// IndexTTL. The map must not be modified.
func (g *Group) Snapshot(ctx context.Context) (map[string]Entry, error) {
	v, err := g.fresh(ctx)
	if err != nil {
		return nil, err
	}
	if v.err != nil {
		return nil, &OpError{Op: "list", Group: g.name, Err: v.err}
	}
	return v.idx.Entries, nil
}

// Key returns the current key of name from a view no older than IndexTTL,
// or ErrNotExist.
func (g *Group) Key(ctx context.Context, name string) (string, error) {
	entries, err := g.Entries(ctx)
	if err != nil {
		return "", err
	}
	k, ok := entries[name]
	if !ok {
		return "", &OpError{Op: "read", Group: g.name, Name: name, Err: ErrNotExist}
	}
	return k, nil
}

// Small versions (lock records, counters, manifests of tools) are kept in
// memory by key, so reading back what was just read or written costs no
// download: at most smallEntries x smallMax bytes.
const (
	smallMax     = 64 << 10
	smallEntries = 128
)

// GroupRef names a group found in a bucket's info.
type GroupRef struct {
	Name   string
	Format string // FormatBlazer or FormatB2cfs
}

// GroupsIn returns the groups whose index or pointer is in the bucket info,
// sorted by name (a group in both formats, which is corrupt, appears twice).
func GroupsIn(info map[string]string) []GroupRef {
	var out []GroupRef
	for k := range info {
		if name, ok := strings.CutPrefix(k, blazerMetaKey); ok {
			out = append(out, GroupRef{Name: name, Format: FormatBlazer})
		} else if name, ok := strings.CutPrefix(k, manifestInfoPrefix); ok {
			out = append(out, GroupRef{Name: name, Format: FormatB2cfs})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].Format < out[j].Format
	})
	return out
}

// Files returns the B2 file names the group's current state needs: the
// version of every object and, in FormatB2cfs, the manifests of the index.
// Anything else a group wrote is garbage once older than the grace period.
func (g *Group) Files(ctx context.Context) ([]string, error) {
	v, err := g.reload(ctx)
	if err != nil {
		return nil, err
	}
	if v.err != nil {
		return nil, &OpError{Op: "list", Group: g.name, Err: v.err}
	}
	out := make([]string, 0, len(v.idx.Entries)+2)
	for n, e := range v.idx.Entries {
		out = append(out, v.format.file(n, e.Key))
	}
	if st, ok := v.idx.state.(*manifestState); ok {
		f := v.format.(*manifestFormat)
		for _, k := range []string{st.ptr.Base, st.ptr.Delta} {
			if k != "" {
				out = append(out, f.manifest(k))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// InfoKey returns the bucket-info key that holds group's index (FormatBlazer)
// or pointer (FormatB2cfs).
func InfoKey(format, group string) string {
	if format == FormatBlazer {
		return blazerMetaKey + group
	}
	return manifestInfoPrefix + group
}
