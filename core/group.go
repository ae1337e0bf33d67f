package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jonboulle/clockwork"
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
	// LockTimeout bounds how long one attempt to take a lock goes without
	// an answer from B2: an attempt for which no compare-and-swap of the
	// Group has been answered (applied or refused) for that long (B2 slow
	// or unreachable) fails with ErrUnavailable. An attempt whose swaps
	// keep being refused because other hosts commit is contended, not
	// unanswered: it goes on, up to CommitTimeout. Default 5 s.
	LockTimeout time.Duration
	// StaleOnOutage lets reads answer from the last view while B2 is
	// unreachable: when the store declares an outage (a Store with the
	// method Outage() <-chan struct{}, as core/b2's, whose channel is
	// closed while B2 does not answer) or a reload fails with
	// ErrUnavailable, a view of any age serves reads, and versions whose
	// bytes are cached stay readable. Commits still need B2. Reads are
	// then no longer linearizable: a mount wants this, a program that
	// must not act on stale state does not. Default off.
	StaleOnOutage bool
	// InlineMax is the largest version kept inline, in the index itself
	// (FormatB2cfs; see InlineDefault): default InlineDefault, negative
	// means never.
	InlineMax int
	// Limits are B2's bucket-info limits; zero fields take B2's values.
	Limits Limits
	// Format is the on-bucket format of a group that does not exist yet:
	// FormatB2cfs (the default, any size) or FormatBlazer (blazer's
	// x/consistent, a few dozen names). An existing group keeps its own.
	Format string
	// LoadTimeout bounds a shared index reload: default 1 minute.
	LoadTimeout time.Duration
	// CommitTimeout bounds a commit once its update has been sent to B2:
	// from then on the caller's context no longer cuts it short, so that
	// an interrupt cannot leave its outcome unknown. Default 1 minute.
	CommitTimeout time.Duration
	// Host and PID go into lock records; default os.Hostname and os.Getpid.
	Host string
	PID  int
	// Now is the wall clock, for modification times and the times lock
	// records show people; default time.Now. Nothing is measured on it.
	Now func() time.Time
	// Clock is what the Group measures and waits on: leases and their
	// renewal, view age (IndexTTL), lock polling and backoff, the batch
	// committer's linger and backoff, the grace period, and the deadlines
	// the Group sets itself (CommitTimeout, LoadTimeout, LockTimeout).
	// Readings of it are only compared with each other. The caller's
	// contexts, the wall times of Now and what the Store does within one
	// call (core/b2's per-call HTTP deadlines and retries) stay on real
	// time. Nil means the system's clock, whose readings (for leases and
	// view age) count time while the machine is suspended (Linux:
	// CLOCK_BOOTTIME). A clockwork.FakeClock, or the time package inside a
	// testing/synctest bubble (clockwork.NewRealClock), simulates time in
	// tests.
	Clock clockwork.Clock
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
	if o.InlineMax == 0 {
		o.InlineMax = InlineDefault
	}
	if o.LoadTimeout == 0 {
		o.LoadTimeout = time.Minute
	}
	if o.CommitTimeout == 0 {
		o.CommitTimeout = time.Minute
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
	if o.Clock == nil {
		o.Clock = bootClock{clockwork.NewRealClock()}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	o.Limits = o.Limits.WithDefaults()
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

	ids     *lru.Cache[string, string]     // "<name>/<key>" -> B2 file id; versions are immutable
	records *lru.Cache[string, lockRecord] // "<name>/<key>" -> lock record
	seen    *lru.Cache[string, time.Time]  // lock record entry -> Clock reading when first seen (Group.live)
	attrs   *lru.Cache[string, FileInfo]   // "<name>/<key>" -> size and time of the version
	small   *lru.Cache[string, []byte]     // "<name>/<key>" -> content of versions up to smallMax bytes
	inline  *lru.Cache[string, []byte]     // "<name>/<key>" -> content of inline versions this Group wrote or saw replaced
	del     *deleter

	batch    batcher      // changes waiting for their compare-and-swap (batch.go)
	answered atomic.Int64 // Clock reading (UnixNano) when B2 last answered an update: applied or refused

	qmu    sync.Mutex
	queues map[string]*lockQueue // GUARDED_BY(qmu); waiters by lock name

	mu   sync.Mutex
	view *view // GUARDED_BY(mu); only ever replaced by a view of a higher revision
}

// view is one decoded state of the bucket. Immutable once built.
type view struct {
	rev    int64
	info   map[string]string
	format indexFormat
	idx    *index    // nil when err != nil
	err    error     // why the index could not be decoded (ErrCorrupt)
	at     time.Time // Clock reading when the read of it began

	inlineBytes int64 // what its inline versions take; see inlined
	inlineOnce  sync.Once
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
	records, _ := lru.New[string, lockRecord](1024)
	seen, _ := lru.New[string, time.Time](4096)
	attrs, _ := lru.New[string, FileInfo](1 << 16)
	small, _ := lru.New[string, []byte](smallEntries)
	inline, _ := lru.New[string, []byte](inlineEntries)
	g := &Group{
		store:   store,
		name:    name,
		opts:    opts,
		formats: formats,
		ids:     ids,
		records: records,
		seen:    seen,
		queues:  map[string]*lockQueue{},
		batch:   batcher{arrived: make(chan struct{}, 1)},
		attrs:   attrs,
		small:   small,
		inline:  inline,
	}
	g.del = newDeleter(store, opts.Grace, opts.Clock, opts.Logger)
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

// current returns a view younger than maxAge (0: a view read after the
// call began; negative: any age, loading only when there is none), or
// with Options.StaleOnOutage the last view while B2 is unreachable. Age is
// strictly less than maxAge: on a simulated Clock, which stands still
// while goroutines run, a view read "now" must not pass for one read
// after the call.
func (g *Group) current(ctx context.Context, maxAge time.Duration) (*view, error) {
	g.mu.Lock()
	v := g.view
	g.mu.Unlock()
	if v != nil && (maxAge < 0 || g.opts.Clock.Since(v.at) < maxAge) {
		return v, nil
	}
	if v == nil || !g.opts.StaleOnOutage {
		return g.reload(ctx)
	}
	nv, err := g.reloadUntil(ctx, g.outage())
	if errors.Is(err, ErrUnavailable) {
		return v, nil
	}
	return nv, err
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
	return g.reloadUntil(ctx, nil)
}

// outage returns a channel closed while the store declares B2
// unreachable, or nil if the store does not tell.
func (g *Group) outage() <-chan struct{} {
	if o, ok := g.store.(interface{ Outage() <-chan struct{} }); ok {
		return o.Outage()
	}
	return nil
}

// errOutage ends a reload when the store declares B2 unreachable.
var errOutage = fmt.Errorf("%w: B2 unreachable", ErrUnavailable)

// reloadUntil is reload, but gives up with errOutage when outage is
// closed first (the load goes on for its other callers).
func (g *Group) reloadUntil(ctx context.Context, outage <-chan struct{}) (*view, error) {
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
	case <-outage:
		return nil, &OpError{Op: "load index", Group: g.name, Err: errOutage}
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
	ctx, cancel := withTimeout(l.ctx, g.opts.Clock, g.opts.LoadTimeout)
	at := g.opts.Clock.Now()
	bi, err := g.store.BucketInfo(ctx)
	if err != nil {
		l.err = err
	} else {
		l.v, l.err = g.install(ctx, bi, at)
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

// install decodes bi and makes it the view unless a newer one is there,
// and returns the view. An index that could not be read for a passing
// reason (a download failed) is not installed: only a corrupt one becomes
// a view, with its error.
func (g *Group) install(ctx context.Context, bi BucketInfo, at time.Time) (*view, error) {
	v := &view{rev: bi.Revision, info: bi.Info, at: at}
	v.format, v.idx, v.err = g.decode(ctx, bi.Info)
	if v.err != nil && !errors.Is(v.err, ErrCorrupt) {
		return nil, v.err
	}
	return g.installView(v), nil
}

// installLanded installs bi, read after attempt a (in format) landed. When
// bi still holds a's value, and no other format's (which decode would
// refuse), and the format gave a's index (change.decoded), that index is
// installed as it is; otherwise (bi was read back with later changes on
// top) bi is decoded.
func (g *Group) installLanded(ctx context.Context, bi BucketInfo, format indexFormat, a *attempt, at time.Time) (*view, error) {
	key := format.infoKey()
	if a.ch.decoded == nil || bi.Info[key] != a.info[key] || g.otherFormat(bi.Info, format) {
		return g.install(ctx, bi, at)
	}
	return g.installView(&view{rev: bi.Revision, info: bi.Info, at: at, format: format, idx: a.ch.decoded}), nil
}

// otherFormat reports whether info holds the group's index in a format
// other than format.
func (g *Group) otherFormat(info map[string]string, format indexFormat) bool {
	for _, f := range g.formats {
		if _, ok := info[f.infoKey()]; ok && f.infoKey() != format.infoKey() {
			return true
		}
	}
	return false
}

// installView makes v the Group's view unless the view is newer, and
// returns the Group's view.
func (g *Group) installView(v *view) *view {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.view == nil || v.rev > g.view.rev || (v.rev == g.view.rev && v.at.After(g.view.at)) {
		g.keepReplaced(g.view, v)
		g.view = v
	}
	return g.view
}

// keepReplaced remembers the bytes and attributes of the inline versions
// of old that new no longer has, for the readers still reading them: they
// have no data file to read or stat.
func (g *Group) keepReplaced(old, new *view) {
	if old == nil || old.idx == nil || new.idx == nil || old.idx == new.idx || old.inlined() == 0 {
		return // nothing inline to remember: no pass over every entry
	}
	for n, e := range old.idx.Entries {
		if !e.Inline {
			continue
		}
		if ne, ok := new.idx.Entries[n]; ok && ne.Key == e.Key {
			continue
		}
		fn := old.format.file(n, e.Key)
		if b, err := e.inlineBytes(); err == nil {
			g.inline.Add(fn, b)
		}
		if !g.attrs.Contains(fn) {
			g.attrs.Add(fn, FileInfo{Name: fn, Size: e.Size, Modified: time.Unix(0, e.MTime)})
		}
	}
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

// maxSwaps bounds the compare-and-swap loops of lock records (mutex.go),
// maxSends the sends of one update whose outcome is still open (send).
const (
	maxSwaps = 64
	maxSends = 8
)

// errMoved: B2 refused an update because the bucket revision had moved.
var errMoved = errors.New("the bucket revision moved")

// attempt is one update of the bucket info, built from one view.
type attempt struct {
	rev    int64             // the revision it replaces (ifRevisionIs)
	info   map[string]string // the bucket info it sends
	serial int64             // the serial of the index it saves
	id     string            // its id in the commit log
	ch     *change
	sent   bool // an update carrying it may have reached B2
}

// send sends a's update until its outcome is known. It returns landed
// true with the state B2 answered (or was read back) when a is in the
// bucket, and landed false with a nil error and the current state when a
// is known not to be there and never to land later (the revision moved
// past a.rev), or with errMoved when B2 refused it for that reason
// (nothing read back: the caller decides when to read). Any error means a
// did not land, except one matching ErrUnknownOutcome: B2 could not be
// read back within ctx.
func (g *Group) send(ctx context.Context, a *attempt) (bi BucketInfo, landed bool, err error) {
	for sends := 0; sends < maxSends; sends++ {
		if sends > 0 && !sleep(ctx, g.opts.Clock, casBackoff(sends)) {
			break
		}
		var o outcome
		bi, o, err = g.update(ctx, a)
		switch {
		case o == outcomeLost:
			return bi, false, nil
		case o == outcomeLanded || err == nil:
			return bi, true, nil
		case !a.sent && errors.Is(err, ErrRevisionMismatch):
			// B2 refused this update: the revision had moved before it.
			return bi, false, errMoved
		case !a.sent && !errors.Is(err, ErrUnknownOutcome):
			return bi, false, err // refused or never reached B2
		}
		// The update may have been applied (its reply lost, late or a
		// 5xx), or an earlier sending of it was and this one found the
		// revision moved: read the bucket back and look for it.
		a.sent = true
		if bi, err = g.readBack(ctx); err != nil {
			g.opts.Metrics.UnknownOutcome("unresolved")
			break
		}
		o = g.resolve(bi, a)
		g.opts.Metrics.UnknownOutcome(o.String())
		switch o {
		case outcomeLanded:
			return bi, true, nil
		case outcomeLost:
			return bi, false, nil
		case outcomeGone:
			return bi, false, fmt.Errorf("%w: %w: the bucket info of group %q moved on and no longer shows whether commit %s (serial %d) landed",
				ErrUnavailable, ErrUnknownOutcome, g.name, a.id, a.serial)
		}
		// outcomePending: not applied yet, and it still could be: send it
		// again, which lands it or settles it.
	}
	if err == nil {
		err = ctx.Err()
	}
	return bi, false, fmt.Errorf("%w: %w: commit %s of group %q: could not learn whether it landed: %v",
		ErrUnavailable, ErrUnknownOutcome, a.id, g.name, err)
}

// While an update gets no answer, the bucket is read back every
// watchEvery: a reply that comes late (or never) lets other commits pile
// up on top of the update, and the commit log only remembers logLen of
// them. B2 answers an update in well under a second, so only a stuck one
// costs these reads.
const watchEvery = 500 * time.Millisecond

// update sends a's update once. It returns B2's answer, or, when reading
// the bucket back while the answer is slow shows a landed or lost for
// good, that outcome (the request is then abandoned: it either landed or
// can no longer land). Otherwise the outcome is outcomePending and err is
// the answer's.
func (g *Group) update(ctx context.Context, a *attempt) (BucketInfo, outcome, error) {
	type answer struct {
		bi  BucketInfo
		err error
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan answer, 1)
	go func() {
		start := g.opts.Clock.Now()
		bi, err := g.store.UpdateBucketInfo(rctx, a.rev, a.info)
		if err == nil || errors.Is(err, ErrRevisionMismatch) {
			g.batch.observe(g.opts.Clock.Since(start))
			g.answered.Store(g.opts.Clock.Now().UnixNano())
		}
		done <- answer{bi, err}
	}()
	watch := g.opts.Clock.NewTicker(watchEvery)
	defer watch.Stop()
	for {
		select {
		case r := <-done:
			return r.bi, outcomePending, r.err
		case <-watch.Chan():
			bi, err := g.store.BucketInfo(rctx)
			if err != nil {
				continue
			}
			if o := g.resolve(bi, a); o == outcomeLanded || o == outcomeLost {
				a.sent = true
				g.opts.Metrics.UnknownOutcome(o.String())
				return bi, o, nil
			}
		}
	}
}

// readBack reads the bucket info, retrying failures until ctx ends or the
// store declares B2 unreachable. The sooner it reads, the fewer commits
// can have come after the one it looks for, so the first retry does not
// wait.
func (g *Group) readBack(ctx context.Context) (BucketInfo, error) {
	for tries := 0; ; tries++ {
		bi, err := g.store.BucketInfo(ctx)
		if err == nil {
			return bi, nil
		}
		if ctx.Err() != nil || isClosed(g.outage()) || tries > 0 && !sleep(ctx, g.opts.Clock, casBackoff(tries-1)) {
			return bi, err
		}
	}
}

// isClosed reports whether ch is closed (false for nil).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// outcome is what the bucket says of an update whose reply was lost.
type outcome int

const (
	outcomePending outcome = iota // not applied, and it still may be
	outcomeLanded                 // applied
	outcomeLost                   // not applied, and it never will be
	outcomeGone                   // the evidence was overwritten
)

func (o outcome) String() string {
	return [...]string{"pending", "landed", "lost", "gone"}[o]
}

// resolve tells from bi what became of a. Only an update whose revision is
// still current can land, so once the revision has moved the answer is
// final; the commit log (index.stamp) then says whether the index of a's
// serial is a's own. Ids are random, so another commit with the same id at
// the same serial has a chance of 2^-32.
func (g *Group) resolve(bi BucketInfo, a *attempt) outcome {
	if bi.Revision == a.rev {
		return outcomePending
	}
	var serial int64
	var log string
	f := g.format()
	value, ok := bi.Info[f.infoKey()]
	if ok {
		var err error
		if serial, log, err = f.stamp(value); err != nil {
			return outcomeGone
		}
	}
	if serial < a.serial {
		return outcomeLost // the group has not reached a's serial
	}
	id, ok := logged(serial, log, a.serial)
	switch {
	case !ok:
		return outcomeGone
	case id == a.id:
		return outcomeLanded
	}
	return outcomeLost
}

// forget deletes the files a uploaded for itself, once a is known not to
// have landed.
func (g *Group) forget(a *attempt) {
	for _, f := range a.ch.created {
		g.discard(f.name, f.id)
	}
}

// casBackoff is the pause before retry n (0: the first) of a loop that
// waits for B2 or for other writers: jittered, doubling from 10 ms to 1 s.
func casBackoff(n int) time.Duration {
	d := 10 * time.Millisecond << min(n, 7)
	d = min(d, time.Second)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
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
// no older than IndexTTL: View's Names, under the name and signature of
// blazer's x/consistent Group.List.
func (g *Group) List(ctx context.Context) ([]string, error) {
	v, err := g.View(ctx)
	if err != nil {
		return nil, err
	}
	return v.Names(), nil
}

// Small versions (lock records, counters, manifests of tools) are kept in
// memory by key, so reading back what was just read or written costs no
// download: at most smallEntries x smallMax bytes.
const (
	smallMax     = 64 << 10
	smallEntries = 128
	// inlineEntries bounds the inline versions remembered beside the
	// view: at most inlineEntries x Options.InlineMax bytes.
	inlineEntries = 4096
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
		if e.HasFile() {
			out = append(out, v.format.file(n, e.Key))
		}
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
