package core

// Checking and repairing a group.
//
// A group whose index names files that are gone cannot be read at all: a
// missing manifest makes every read of a b2cfs-format group fail with
// ErrCorrupt, and a missing data file makes its object, and listings with
// attributes, fail. Fsck finds what is missing and, on request, writes an
// index that names only what is still there, so that the group is readable
// again with every object whose data survived.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"
)

// FsckOptions tune Fsck. The zero value only checks.
type FsckOptions struct {
	// Repair writes a new index that keeps every object whose data file
	// exists, then checks again. Without it Fsck changes nothing.
	Repair bool
	// Attempts bounds the compare-and-swaps of a repair that loses the
	// race against other writers: default 5.
	Attempts int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// IsLock reports whether an object name is a lock object (the
	// namespace's convention, not the engine's). An index rebuilt from a
	// blazer-format group's files leaves lock records out: a restored one
	// would only hold a stale lock. Nil restores every name.
	IsLock func(name string) bool
}

// Kinds of FsckProblem.
const (
	FsckInfo     = "info"     // the bucket-info value (pointer or index) is unreadable
	FsckFormats  = "formats"  // the group is in both formats
	FsckBase     = "base"     // the base manifest is missing or unreadable
	FsckDelta    = "delta"    // the delta manifest is missing, unreadable or against another base
	FsckEntry    = "entry"    // an entry of the index is malformed
	FsckData     = "data"     // the data file of an object is missing
	FsckManifest = "manifest" // no readable manifest to rebuild from
)

// FsckProblem is one thing wrong with a group.
type FsckProblem struct {
	Kind string // one of the Fsck* kinds
	Name string // the object concerned, if any
	File string // the B2 file concerned, if any
	Text string // one line saying what is wrong
}

func (p FsckProblem) String() string { return p.Text }

// FsckReport is what Fsck found, and what a repair does or did.
type FsckReport struct {
	Group   string
	Format  string // FormatB2cfs or FormatBlazer
	InfoKey string // the bucket-info key of the index or pointer
	Serial  int64  // serial of the index as read; 0 when unreadable

	// Objects is how many entries the index names, as far as it can be
	// read (when it cannot be read whole: what a repair can rebuild);
	// Intact of them have their data file, Missing (sorted) have not.
	Objects int
	Intact  int
	Missing []string
	// Manifests describes the manifests of a b2cfs-format group.
	Manifests string
	// Unreferenced counts the data files of a b2cfs-format group that no
	// entry kept by a repair names: superseded versions not yet deleted,
	// or the data of names the index lost. gc deletes them.
	Unreferenced int

	// Problems lists what is wrong, one line each; none when the group is
	// intact.
	Problems []FsckProblem
	// Plan lists what a repair does (or did), one line each.
	Plan []string
	// CannotRepair says why a repair must not be attempted; "" if it can.
	CannotRepair string
	// Repaired is set when a repair replaced the index.
	Repaired bool
	// After is the check made after a repair.
	After *FsckReport
}

// Damaged reports whether the check found a problem.
func (r *FsckReport) Damaged() bool { return len(r.Problems) > 0 }

func (r *FsckReport) problem(kind, name, file, format string, a ...any) {
	r.Problems = append(r.Problems, FsckProblem{Kind: kind, Name: name, File: file, Text: fmt.Sprintf(format, a...)})
}

func (r *FsckReport) plan(format string, a ...any) {
	r.Plan = append(r.Plan, fmt.Sprintf(format, a...))
}

// fsckFix is what a repair writes: the entries of the new index and how to
// encode it.
type fsckFix struct {
	// encode returns the new bucket-info value, uploading what it needs
	// (a b2cfs base manifest), and the files it uploaded. budget is how
	// many bytes the value may take.
	encode func(ctx context.Context, budget int) (string, []fileRef, error)
}

// fsckStamp returns the serial and commit log of an index saved by a
// repair after one with serial and log: a commit of its own, so that a
// writer looking for its own commit in the log never takes the repair's
// for one of its own.
func fsckStamp(serial int64, log string) (int64, string) {
	x := &index{Serial: serial, Log: log}
	x.stamp(newCommitID())
	return x.Serial, x.Log
}

// Fsck checks the group called group in the bucket behind s: the
// bucket-info value that holds its index (FormatBlazer) or pointer
// (FormatB2cfs), the manifests the pointer names, and the data file of
// every object (with one listing, not one call per object). It returns
// ErrNotExist when the bucket holds neither format of the group, and other
// errors only when B2 could not be read: damage is reported, not returned.
//
// With opts.Repair, a damaged group gets a new index that keeps every
// object whose data file exists, from what is still readable (see the
// README, "Check and repair a group"). The new index is saved with a
// compare-and-swap on the bucket revision, redone from a new reading when
// another writer got there first, at most opts.Attempts times. Old
// manifests and unreferenced data are left for gc. The report's After is
// the check made afterwards.
func Fsck(ctx context.Context, s Store, group string, opts FsckOptions) (*FsckReport, error) {
	if err := checkGroupName(group); err != nil {
		return nil, err
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	for attempt := 1; ; attempt++ {
		bi, err := s.BucketInfo(ctx)
		if err != nil {
			return nil, err
		}
		r, fix, err := fsckCheck(ctx, s, group, bi, opts)
		if err != nil || !opts.Repair || !r.Damaged() || r.CannotRepair != "" {
			return r, err
		}
		limits := Limits{}.WithDefaults()
		budget := limits.MaxTotalBytes
		for k, v := range bi.Info {
			if k != r.InfoKey {
				budget -= len(v)
			}
		}
		value, created, err := fix.encode(ctx, min(budget, limits.MaxValueBytes))
		if err != nil {
			return r, fmt.Errorf("repair group %q: %w", group, err)
		}
		info := maps.Clone(bi.Info)
		info[r.InfoKey] = value
		if err := limits.check(info); err != nil {
			fsckDiscard(s, created)
			return r, fmt.Errorf("repair group %q: %w", group, err)
		}
		_, err = s.UpdateBucketInfo(ctx, bi.Revision, info)
		switch {
		case err == nil:
		case errors.Is(err, ErrRevisionMismatch):
			// Certainly not applied: another writer changed the bucket.
			// What was uploaded is referenced by nothing.
			fsckDiscard(s, created)
			if attempt >= opts.Attempts {
				return r, fmt.Errorf("repair group %q: the bucket kept changing (%d attempts): %w", group, attempt, err)
			}
			continue
		case errors.Is(err, ErrInfoRejected):
			fsckDiscard(s, created)
			return r, fmt.Errorf("repair group %q: %w", group, err)
		default:
			// The update may have been applied: read back. The value is
			// unique (it carries a new commit id in its log, and in the
			// b2cfs format names a new manifest), so finding it means it
			// is ours. Nothing uploaded is deleted
			// while the outcome is unknown.
			now, rerr := s.BucketInfo(ctx)
			if rerr != nil || now.Info[r.InfoKey] != value {
				return r, fmt.Errorf("repair group %q: %w", group, err)
			}
		}
		r.Repaired = true
		after, err := Fsck(ctx, s, group, FsckOptions{Now: opts.Now})
		r.After = after
		return r, err
	}
}

// fsckDiscard deletes files a repair uploaded that nothing references.
// Failures only leave them to gc.
func fsckDiscard(s Store, files []fileRef) {
	for _, f := range files {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = s.Delete(ctx, f.name, f.id)
		cancel()
	}
}

// fsckCheck checks the group as bi shows it and works out its repair.
func fsckCheck(ctx context.Context, s Store, group string, bi BucketInfo, opts FsckOptions) (*FsckReport, *fsckFix, error) {
	now := opts.Now
	mf, bf := newManifestFormat(group, s), blazerFormat{group: group}
	mv, inManifest := bi.Info[mf.infoKey()]
	bv, inBlazer := bi.Info[bf.infoKey()]
	r := &FsckReport{Group: group}
	switch {
	case inManifest && inBlazer:
		r.Format, r.InfoKey = FormatB2cfs, mf.infoKey()
		r.problem(FsckFormats, "", "", "group is in both formats (bucket-info keys %q and %q)", mf.infoKey(), bf.infoKey())
		r.CannotRepair = fmt.Sprintf("the group is in both formats: remove the bucket-info key of the one that is not in use (%q or %q)", mf.infoKey(), bf.infoKey())
		return r, nil, nil
	case inManifest:
		r.Format, r.InfoKey = FormatB2cfs, mf.infoKey()
		fix, err := fsckManifest(ctx, s, mf, mv, r, now)
		return r, fix, err
	case inBlazer:
		r.Format, r.InfoKey = FormatBlazer, bf.infoKey()
		fix, err := fsckBlazer(ctx, s, bf, bv, r, opts)
		return r, fix, err
	}
	return nil, nil, fmt.Errorf("group %q: no bucket-info key %q or %q: %w", group, mf.infoKey(), bf.infoKey(), ErrNotExist)
}

// fsckSerial returns the serial to count on from for the index that
// replaces value when value cannot be decoded: the serial it still shows,
// if any; else the time in seconds, which is more than any group can have
// counted (serials count commits, and B2 takes at most a few bucket
// updates a second).
func fsckSerial(value string, now func() time.Time) int64 {
	var v struct {
		Serial int64 `json:"serial"` // matches blazer's "Serial" too
	}
	if raw, err := base64.StdEncoding.DecodeString(value); err == nil && json.Unmarshal(raw, &v) == nil && v.Serial > 0 {
		return v.Serial
	}
	return max(1, now().Unix())
}

// fsckCheckData counts the intact entries of r and lists the missing ones;
// listed holds the names of the stored files.
func fsckCheckData(r *FsckReport, entries map[string]Entry, file func(name, key string) string, listed map[string]bool) map[string]Entry {
	kept := make(map[string]Entry, len(entries))
	r.Objects = len(entries)
	for _, n := range fsckSortedNames(entries) {
		e := entries[n]
		fn := file(n, e.Key)
		if !listed[fn] && e.HasFile() { // a link or an inline version has no data file
			r.Missing = append(r.Missing, n)
			r.problem(FsckData, n, fn, "object %q: data file %s is missing", n, fn)
			r.plan("drop %q: its data file %s is missing", n, fn)
			continue
		}
		kept[n] = e
	}
	r.Intact = len(kept)
	return kept
}

// fsckValidEntries drops, and reports, entries with malformed keys.
func fsckValidEntries(r *FsckReport, where string, entries map[string]Entry) map[string]Entry {
	out := make(map[string]Entry, len(entries))
	for _, n := range fsckSortedNames(entries) {
		e := entries[n]
		if !validKey(e.Key) {
			r.problem(FsckEntry, n, "", "%s: object %q has bad key %q", where, n, e.Key)
			r.plan("drop %q: its key %q is malformed", n, e.Key)
			continue
		}
		out[n] = e
	}
	return out
}

// fsckCount returns "1 thing" or "n things".
func fsckCount(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// fsckSortedNames returns the keys of m in byte order.
func fsckSortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// The b2cfs format.

// fsckManifestFile is a manifest decoded without knowing whether it is a
// base (it has "entries") or a delta (it has "base").
type fsckManifestFile struct {
	Version int              `json:"b2cfs"`
	Entries map[string]Entry `json:"entries"`
	Base    *string          `json:"base"`
	Set     map[string]Entry `json:"set"`
	Del     []string         `json:"del"`

	base bool // it has "entries", even if null
}

func (m *fsckManifestFile) UnmarshalJSON(b []byte) error {
	type plain fsckManifestFile
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	if err := json.Unmarshal(b, (*plain)(m)); err != nil {
		return err
	}
	if _, m.base = fields["entries"]; m.base && m.Entries == nil {
		m.Entries = map[string]Entry{}
	}
	return nil
}

func (m *fsckManifestFile) isBase() bool  { return m.base }
func (m *fsckManifestFile) isDelta() bool { return !m.base && m.Base != nil }

// fsckManifests reads the manifests of a group, each at most once.
type fsckManifests struct {
	f      *manifestFormat
	listed map[string]FileInfo // key -> the stored manifest
	byAge  []string            // listed keys, newest upload first
	read   map[string]*fsckManifestFile
	errs   map[string]error // why a key could not be read (ErrCorrupt)
}

func newFsckManifests(ctx context.Context, f *manifestFormat) (*fsckManifests, error) {
	files, err := f.store.List(ctx, f.manifest(""))
	if err != nil {
		return nil, err
	}
	m := &fsckManifests{f: f, listed: map[string]FileInfo{}, read: map[string]*fsckManifestFile{}, errs: map[string]error{}}
	for _, fi := range files {
		if k := strings.TrimPrefix(fi.Name, f.manifest("")); validKey(k) {
			m.listed[k] = fi
			m.byAge = append(m.byAge, k)
		}
	}
	sort.SliceStable(m.byAge, func(i, j int) bool {
		a, b := m.listed[m.byAge[i]], m.listed[m.byAge[j]]
		if !a.Modified.Equal(b.Modified) {
			return a.Modified.After(b.Modified)
		}
		return a.Name > b.Name
	})
	return m, nil
}

// get returns manifest key, or an error matching ErrCorrupt when it is
// missing or cannot be decoded; other errors are B2's.
func (m *fsckManifests) get(ctx context.Context, key string) (*fsckManifestFile, error) {
	if mf, ok := m.read[key]; ok {
		return mf, nil
	}
	if err, ok := m.errs[key]; ok {
		return nil, err
	}
	var err error
	mf := &fsckManifestFile{}
	if _, ok := m.listed[key]; !ok {
		err = m.f.corrupt("manifest %s is missing", key)
	} else if _, _, err = m.f.load(ctx, key, mf); err == nil && !mf.isBase() && !mf.isDelta() {
		err = m.f.corrupt("manifest %s is neither a base nor a delta", key)
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		m.errs[key] = err
		return nil, err
	}
	m.read[key] = mf
	return mf, nil
}

// newest returns the newest readable manifest (by upload time) other than
// skip for which ok holds.
func (m *fsckManifests) newest(ctx context.Context, skip string, ok func(*fsckManifestFile) bool) (string, *fsckManifestFile, error) {
	for _, k := range m.byAge {
		if k == skip {
			continue
		}
		mf, err := m.get(ctx, k)
		if errors.Is(err, ErrCorrupt) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if ok(mf) {
			return k, mf, nil
		}
	}
	return "", nil, nil
}

// why returns the reason a manifest was not usable, without the group
// prefix of ErrCorrupt errors.
func (m *fsckManifests) why(key string) string {
	if _, ok := m.listed[key]; !ok {
		return "is missing"
	}
	if err := m.errs[key]; err != nil {
		return "is unreadable: " + strings.TrimPrefix(err.Error(), m.f.corrupt("%s", "").Error())
	}
	return "is unusable"
}

func (m *fsckManifests) uploaded(key string) string {
	return m.listed[key].Modified.UTC().Format(time.RFC3339)
}

// fsckManifest checks a b2cfs-format group whose pointer is value.
func fsckManifest(ctx context.Context, s Store, f *manifestFormat, value string, r *FsckReport, now func() time.Time) (*fsckFix, error) {
	var p pointer
	ptrOK := false
	raw, err := base64.StdEncoding.DecodeString(value)
	switch {
	case err != nil:
		r.problem(FsckInfo, "", "", "pointer: bucket-info %q is not base64: %v", r.InfoKey, err)
	case json.Unmarshal(raw, &p) != nil:
		r.problem(FsckInfo, "", "", "pointer: bucket-info %q is not a JSON pointer: %.80q", r.InfoKey, raw)
	case p.Version > manifestVersion:
		r.problem(FsckInfo, "", "", "pointer: format version %d, newer than this b2cfs reads (%d)", p.Version, manifestVersion)
		r.CannotRepair = "the pointer was written by a newer b2cfs: upgrade b2cfs"
		return nil, nil
	case p.Version < 1:
		r.problem(FsckInfo, "", "", "pointer: bucket-info %q has no format version: %.80q", r.InfoKey, raw)
	case p.Base != "" && !validKey(p.Base) || p.Delta != "" && !validKey(p.Delta):
		r.problem(FsckInfo, "", "", "pointer: bad manifest key in %.200q", raw)
	default:
		ptrOK = true
		r.Serial = p.Serial
	}
	if !ptrOK {
		p = pointer{} // whatever a failed decoding left in it means nothing
	}

	ms, err := newFsckManifests(ctx, f)
	if err != nil {
		return nil, err
	}
	dataFiles, err := s.List(ctx, f.file("", ""))
	if err != nil {
		return nil, err
	}

	var state []string // what the manifests are, for r.Manifests
	entries := map[string]Entry{}
	from := map[string]string{} // name -> older base it was taken from, until a newer manifest names it
	baseKey := ""               // the base the entries start from
	if ptrOK && p.Base == "" {
		state = append(state, "no base")
	} else {
		var base *fsckManifestFile
		if ptrOK {
			if base, err = ms.get(ctx, p.Base); err != nil && !errors.Is(err, ErrCorrupt) {
				return nil, err
			}
		}
		if base != nil && !base.isBase() {
			r.problem(FsckBase, "", f.manifest(p.Base), "base manifest %s is a delta, not a base", p.Base)
			base = nil
		} else if base == nil && ptrOK {
			r.problem(FsckBase, "", f.manifest(p.Base), "base manifest %s %s", p.Base, ms.why(p.Base))
		}
		if base != nil {
			baseKey = p.Base
			entries = fsckValidEntries(r, "base "+p.Base, base.Entries)
			state = append(state, "base ok")
		} else {
			// An older base, with the newest delta against it: the state
			// before the lost base, as far as manifests still show it.
			k, old, err := ms.newest(ctx, p.Base, (*fsckManifestFile).isBase)
			if err != nil {
				return nil, err
			}
			if old == nil {
				what := "base " + p.Base + " lost"
				if !ptrOK {
					what = "pointer unreadable"
				}
				state = append(state, what+", no other readable base")
				r.plan("no readable base manifest: objects named only in a lost base are lost; keep those the delta and the pointer name")
			} else {
				baseKey = k
				entries = fsckValidEntries(r, "base "+k, old.Entries)
				if ptrOK {
					// The lost base came after this one: what it
					// changed is not known.
					for n := range entries {
						from[n] = k
					}
				}
				use := "base " + k + " (uploaded " + ms.uploaded(k) + ")"
				if dk, d, err := ms.newest(ctx, "", func(m *fsckManifestFile) bool { return m.isDelta() && *m.Base == k }); err != nil {
					return nil, err
				} else if d != nil {
					entries = fsckApply(r, entries, from, "delta "+dk, d.Set, d.Del)
					use += " and its delta " + dk
				}
				if ptrOK {
					state = append(state, "base "+p.Base+" lost, using older "+use)
					r.plan("take the entries of older %s, then the changes the pointer names", use)
				} else {
					state = append(state, "pointer unreadable, rebuilt from newest "+use)
					r.plan("take the entries of the newest %s; the latest changes, which only the lost pointer recorded, are lost (names they removed reappear)", use)
				}
			}
		}
	}
	if ptrOK && p.Delta != "" {
		d, err := ms.get(ctx, p.Delta)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		if d != nil && !d.isDelta() {
			r.problem(FsckDelta, "", f.manifest(p.Delta), "delta manifest %s is a base, not a delta", p.Delta)
			d = nil
		} else if d == nil {
			r.problem(FsckDelta, "", f.manifest(p.Delta), "delta manifest %s %s", p.Delta, ms.why(p.Delta))
		}
		if d != nil {
			if *d.Base != p.Base {
				r.problem(FsckDelta, "", f.manifest(p.Delta), "delta %s is against base %s, the pointer names base %s", p.Delta, *d.Base, p.Base)
			}
			entries = fsckApply(r, entries, from, "delta "+p.Delta, d.Set, d.Del)
			state = append(state, "delta ok")
		} else {
			// An older delta against the same base shows the changes
			// up to when it was replaced.
			dk, d, err := ms.newest(ctx, p.Delta, func(m *fsckManifestFile) bool { return m.isDelta() && *m.Base == p.Base })
			if err != nil {
				return nil, err
			}
			if d != nil {
				entries = fsckApply(r, entries, from, "delta "+dk, d.Set, d.Del)
				state = append(state, "delta "+p.Delta+" lost, using older delta "+dk+" (uploaded "+ms.uploaded(dk)+")")
				r.plan("take the changes since the base from older delta %s; later changes recorded only in %s are lost", dk, p.Delta)
			} else {
				state = append(state, "delta "+p.Delta+" lost")
				r.plan("the changes since the base recorded only in delta %s are lost", p.Delta)
			}
		}
	} else if ptrOK {
		state = append(state, "no delta")
	}
	if ptrOK && len(p.Set)+len(p.Del) > 0 {
		entries = fsckApply(r, entries, from, "pointer", p.Set, p.Del)
		state = append(state, fmt.Sprintf("%d changes in the pointer", len(p.Set)+len(p.Del)))
	}
	r.Manifests = strings.Join(state, ", ")

	listed := make(map[string]bool, len(dataFiles))
	for _, fi := range dataFiles {
		listed[fi.Name] = true
	}
	kept := fsckCheckData(r, entries, f.file, listed)
	for _, n := range fsckSortedNames(kept) {
		if k := from[n]; k != "" {
			r.plan("keep %q as older base %s has it: it may have changed, or been removed, since", n, k)
		}
	}
	referenced := make(map[string]bool, len(kept))
	for n, e := range kept {
		referenced[f.file(n, e.Key)] = true
	}
	for _, fi := range dataFiles {
		if !referenced[fi.Name] {
			r.Unreferenced++
		}
	}
	if !r.Damaged() {
		return nil, nil
	}
	if !ptrOK && baseKey == "" && r.Unreferenced > 0 {
		r.problem(FsckManifest, "", "", "no readable manifest of the group is left to rebuild the index from")
		r.CannotRepair = fmt.Sprintf("no readable manifest: a repair would empty the group while %d of its data files remain", r.Unreferenced)
		return nil, nil
	}
	if r.Unreferenced > 0 {
		r.plan("%s of the group will be referenced by nothing: superseded versions, or data of objects the index lost (gc deletes them; copy out what you need first)", fsckCount(r.Unreferenced, "data file"))
	}
	np := pointer{}
	if ptrOK {
		np = p // keeps what else the pointer records
		np.Serial, np.Log = fsckStamp(p.Serial, p.Log)
	} else {
		np.Serial, np.Log = fsckStamp(fsckSerial(value, now), "")
	}
	np.Base, np.Delta, np.Set, np.Del = "", "", nil, nil
	np.Version = formatVersion(kept)
	r.plan("write a new base manifest with %d entries and swap the pointer to it (serial %d); old manifests are left for gc", len(kept), np.Serial)
	fix := &fsckFix{}
	fix.encode = func(ctx context.Context, _ int) (string, []fileRef, error) {
		b := &baseFile{Version: np.Version, Entries: kept}
		bz, err := gz(b)
		if err != nil {
			return "", nil, err
		}
		m := &manifestFile{base: b, size: int64(len(bz))}
		key, err := f.put(ctx, bz, m)
		if err != nil {
			return "", nil, err
		}
		np.Base = key
		v, err := encodePointer(np)
		return v, []fileRef{{f.manifest(key), m.id}}, err
	}
	return fix, nil
}

// fsckApply applies set and del of manifest where to entries, dropping
// malformed entries, and forgets the older base of the names it changes.
func fsckApply(r *FsckReport, entries map[string]Entry, from map[string]string, where string, set map[string]Entry, del []string) map[string]Entry {
	set = fsckValidEntries(r, where, set)
	for n := range set {
		delete(from, n)
	}
	for _, n := range del {
		delete(from, n)
	}
	return apply(entries, set, del)
}

// The blazer format.

// fsckBlazer checks a blazer-format group whose index is value.
func fsckBlazer(ctx context.Context, s Store, f blazerFormat, value string, r *FsckReport, opts FsckOptions) (*fsckFix, error) {
	now := opts.Now
	var bi blazerIndex
	ok := false
	raw, err := base64.StdEncoding.DecodeString(value)
	switch {
	case err != nil:
		r.problem(FsckInfo, "", "", "index: bucket-info %q is not base64: %v", r.InfoKey, err)
	case json.Unmarshal(raw, &bi) != nil:
		r.problem(FsckInfo, "", "", "index: bucket-info %q is not a JSON index: %.80q", r.InfoKey, raw)
	case bi.Version > 1:
		r.problem(FsckInfo, "", "", "index: version %d, want 1", bi.Version)
		r.CannotRepair = fmt.Sprintf("the index has version %d, which this b2cfs does not know", bi.Version)
		return nil, nil
	case bi.Version != 1:
		r.problem(FsckInfo, "", "", "index: bucket-info %q has index version %d, want 1", r.InfoKey, bi.Version)
	default:
		ok = true
		r.Serial = bi.Serial
	}
	if !ok {
		return fsckBlazerRebuild(ctx, s, f, value, r, now, opts.IsLock)
	}
	entries := make(map[string]Entry, len(bi.Locations))
	for n, k := range bi.Locations {
		entries[n] = Entry{Key: k}
	}
	entries = fsckValidEntries(r, "index", entries)
	listed, err := fsckListPrefixes(ctx, s, fsckSortedNames(entries))
	if err != nil {
		return nil, err
	}
	kept := fsckCheckData(r, entries, f.file, listed)
	if !r.Damaged() {
		return nil, nil
	}
	x := &index{Entries: kept}
	x.Serial, x.Log = fsckStamp(bi.Serial, bi.B2cfsLog)
	r.plan("write the index with %d entries (serial %d)", len(kept), x.Serial)
	return fsckBlazerFix(f, x), nil
}

func fsckBlazerFix(f blazerFormat, x *index) *fsckFix {
	return &fsckFix{encode: func(ctx context.Context, budget int) (string, []fileRef, error) {
		v, _, err := f.encode(ctx, nil, x, budget)
		return v, nil, err
	}}
}

// fsckListPrefixes lists the stored files of the objects names, in blazer's
// format, with one listing per first path element (or of the whole bucket
// when there are many), not one call per object.
func fsckListPrefixes(ctx context.Context, s Store, names []string) (map[string]bool, error) {
	prefixes := map[string]bool{}
	for _, n := range names {
		first, rest, _ := strings.Cut(n, "/")
		if first+"/" == ReservedPrefix {
			// Not all of .b2cfs/, which holds b2cfs-format groups' files.
			second, _, _ := strings.Cut(rest, "/")
			first += "/" + second
		}
		prefixes[first+"/"] = true
	}
	list := fsckSortedNames(prefixes)
	if len(list) > 16 {
		list = []string{""}
	}
	listed := map[string]bool{}
	for _, p := range list {
		files, err := s.List(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, fi := range files {
			listed[fi.Name] = true
		}
	}
	return listed, nil
}

// fsckBlazerRebuild works out the index of a blazer-format group whose
// index is unreadable from the files that carry the group's mark: the
// newest marked version of each name.
func fsckBlazerRebuild(ctx context.Context, s Store, f blazerFormat, value string, r *FsckReport, now func() time.Time, isLock func(string) bool) (*fsckFix, error) {
	files, err := s.List(ctx, "")
	if err != nil {
		return nil, err
	}
	newest := map[string]FileInfo{}
	keys := map[string]string{}
	unmarked, locks := 0, 0
	for _, fi := range files {
		name, key, ok := splitVersionFile(fi.Name)
		if !ok || strings.HasPrefix(name, ReservedPrefix+"data/") || strings.HasPrefix(name, ReservedPrefix+"manifest/") {
			continue // not a blazer-format version, or a b2cfs-format group's
		}
		switch fi.Group {
		case f.group:
		case "":
			unmarked++
			continue
		default:
			continue
		}
		if isLock != nil && isLock(name) {
			locks++ // a restored lock record would only hold a stale lock
			continue
		}
		if o, ok := newest[name]; !ok || fi.Modified.After(o.Modified) || fi.Modified.Equal(o.Modified) && key > keys[name] {
			newest[name], keys[name] = fi, key
		}
	}
	entries := make(map[string]Entry, len(keys))
	for _, n := range fsckSortedNames(keys) {
		entries[n] = Entry{Key: keys[n]}
		r.plan("restore %q at key %s, its newest file marked as this group's (uploaded %s)", n, keys[n], newest[n].Modified.UTC().Format(time.RFC3339))
	}
	if unmarked > 0 {
		r.plan("%s carry no group mark (written by blazer itself, or by an older b2cfs): they cannot be attributed to a group and are not restored", fsckCount(unmarked, "version file"))
	}
	if locks > 0 {
		r.plan("%s not restored (locks are taken afresh)", fsckCount(locks, "lock record"))
	}
	r.Objects, r.Intact = len(entries), len(entries)
	if len(entries) == 0 {
		r.problem(FsckManifest, "", "", "no file carries this group's mark: nothing to rebuild the index from")
		r.CannotRepair = "no file is marked as this group's: the index cannot be rebuilt"
		return nil, nil
	}
	x := &index{Entries: entries}
	x.Serial, x.Log = fsckStamp(fsckSerial(value, now), "")
	r.plan("write a rebuilt index with %d entries (serial %d)", len(entries), x.Serial)
	return fsckBlazerFix(f, x), nil
}

// splitVersionFile splits a file name of the shape "<name>/<key>".
func splitVersionFile(file string) (name, key string, ok bool) {
	i := strings.LastIndexByte(file, '/')
	if i < 0 {
		return "", "", false
	}
	name, key = file[:i], file[i+1:]
	if !validKey(key) || CheckName(name) != nil {
		return "", "", false
	}
	return name, key, true
}
