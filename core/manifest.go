package core

// The b2cfs format: a group of any size.
//
// Blazer's format keeps the whole index in one bucket-info value, which B2
// caps at a few kilobytes: a few dozen names. The b2cfs format keeps only a
// small pointer in the bucket info, under its own key "b2cfs-<group>" so that
// blazer can never take it for one of its groups:
//
//	base64(JSON {"b2cfs":1,"serial":N,"base":"<key>","delta":"<key>",
//	             "set":{"<name>":entry,...},"del":["<name>",...]})
//
// The compare-and-swap of the bucket revision stays the commit point: one
// successful b2_update_bucket makes a new state visible.
//
// The index itself lives in immutable manifest files, named like versions:
// ".b2cfs/manifest/<group>/<key>", gzip-compressed JSON. The base holds every
// entry (name -> key, size, mtime, mode, B2 file id); the delta holds every
// change since the base (entries set, names deleted). The delta is
// cumulative, not a chain, so any state is read with at most two downloads
// (and the base, immutable, is usually cached): a cold "ls -l" costs
// b2_list_buckets plus two downloads, whatever the size of the group.
//
// The changes since the delta ("set", "del") ride in the pointer itself
// while it stays within inlineBudget bytes, so most commits upload only
// their data and swap the pointer: one upload and one b2_update_bucket, as
// in blazer's format. When the inline changes no longer fit, the commit
// flushes them into a new delta (the delta is cumulative: every change since
// the base); once the delta would be as large as the base, or larger than
// foldAt, the commit writes a new base instead. So a commit uploads on
// average a small fraction of a delta plus a smaller fraction of a base,
// instead of the whole index: measured on the emulator, about 1.2 uploads
// and 1.5 KB (100 files) to 3.1 KB (10,000 files) of metadata per commit,
// pointer and its commit log included (TestScale10k).
//
// Data lives under opaque names ".b2cfs/data/<group>/<key>" that do not
// contain the object name, so renaming a file or a whole directory only
// changes the index.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"

	lru "github.com/hashicorp/golang-lru/v2"
)

// manifestVersion is the newest format version this code reads. It writes
// version 1 unless the index holds symbolic links (formatVersion).
const manifestVersion = 3

// formatVersion is the format version of pointers and manifests that hold
// entries: the lowest that every entry needs, so that an older b2cfs that
// would misread one refuses the group ("upgrade b2cfs") instead. 3 when
// one of them is inline (Entry.Inline: its bytes in the index), which
// b2cfs before version 3 would take for a file whose data is missing; 2
// when one is a symbolic link, which b2cfs before version 2 would drop or
// turn into a regular file; 1 otherwise, which every b2cfs reads. The
// other fields added since (types in modes, atime, ctime, Prev) are only
// dropped by an older b2cfs, never misread.
func formatVersion(entries map[string]Entry) int {
	v := 1
	for _, e := range entries {
		switch {
		case e.Inline:
			return 3
		case e.IsLink():
			v = 2
		}
	}
	return v
}

// foldAt is the compressed delta size above which a commit writes a new
// base.
const foldAt = 16 << 10

// manifestFormat is the b2cfs format.
type manifestFormat struct {
	group string
	store Store

	seen *lru.Cache[string, *manifestFile] // decoded manifests by key
}

// manifestFile is a decoded manifest: a base or a delta. Never modified.
type manifestFile struct {
	base  *baseFile
	delta *deltaFile
	size  int64 // compressed
	id    string
}

func newManifestFormat(group string, store Store) *manifestFormat {
	seen, _ := lru.New[string, *manifestFile](8)
	return &manifestFormat{group: group, store: store, seen: seen}
}

// pointer is the bucket-info value of a b2cfs-format group. Set and Del
// are the changes since the delta (or the base), kept inline while they fit
// in the bucket info.
type pointer struct {
	Version int              `json:"b2cfs"`
	Serial  int64            `json:"serial"`
	Log     string           `json:"log,omitempty"` // commit ids, newest first (index.Log)
	Base    string           `json:"base,omitempty"`
	Delta   string           `json:"delta,omitempty"`
	Set     map[string]Entry `json:"set,omitempty"`
	Del     []string         `json:"del,omitempty"`
}

// inlineBudget caps the bytes of bucket info a pointer takes with its
// inline changes, leaving room for other groups.
const inlineBudget = 1536

type baseFile struct {
	Version int              `json:"b2cfs"`
	Entries map[string]Entry `json:"entries"`
}

type deltaFile struct {
	Version int              `json:"b2cfs"`
	Base    string           `json:"base"`
	Set     map[string]Entry `json:"set,omitempty"`
	Del     []string         `json:"del,omitempty"`
}

// manifestState is what a decoded index remembers of its manifests.
type manifestState struct {
	ptr   pointer
	base  *manifestFile // nil when ptr.Base is empty
	delta *manifestFile // nil when ptr.Delta is empty
}

const manifestInfoPrefix = "b2cfs-"

func (f *manifestFormat) infoKey() string            { return manifestInfoPrefix + f.group }
func (f *manifestFormat) file(_, key string) string  { return ".b2cfs/data/" + f.group + "/" + key }
func (f *manifestFormat) manifest(key string) string { return ".b2cfs/manifest/" + f.group + "/" + key }
func (f *manifestFormat) hasAttrs() bool             { return true }
func (f *manifestFormat) corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: group %q: %s", ErrCorrupt, f.group, fmt.Sprintf(format, a...))
}

func (f *manifestFormat) decode(ctx context.Context, v string) (*index, error) {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, f.corrupt("bucket-info %q is not base64: %v", f.infoKey(), err)
	}
	var p pointer
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, f.corrupt("bucket-info %q is not a pointer: %v", f.infoKey(), err)
	}
	if p.Version > manifestVersion {
		return nil, f.corrupt("written in format version %d by a newer b2cfs; this one reads version %d: upgrade b2cfs", p.Version, manifestVersion)
	}
	if p.Version < 1 || (p.Base != "" && !validKey(p.Base)) || (p.Delta != "" && !validKey(p.Delta)) {
		return nil, f.corrupt("bad pointer %s", raw)
	}
	st := &manifestState{ptr: p}
	entries := map[string]Entry{}
	if p.Base != "" {
		if st.base, err = f.get(ctx, p.Base, false); err != nil {
			return nil, err
		}
		entries = st.base.base.Entries
	}
	if p.Delta != "" {
		if st.delta, err = f.get(ctx, p.Delta, true); err != nil {
			return nil, err
		}
		d := st.delta.delta
		if d.Base != p.Base {
			return nil, f.corrupt("delta %s is against base %s, pointer names base %s", p.Delta, d.Base, p.Base)
		}
		entries = apply(entries, d.Set, d.Del)
	}
	if len(p.Set)+len(p.Del) > 0 {
		if err := f.checkKeys("the pointer", p.Set); err != nil {
			return nil, err
		}
		entries = apply(entries, p.Set, p.Del)
	}
	return &index{Serial: p.Serial, Log: p.Log, Entries: entries, state: st}, nil
}

// apply returns entries with set and del applied, leaving entries as is.
func apply(entries map[string]Entry, set map[string]Entry, del []string) map[string]Entry {
	out := maps.Clone(entries)
	for n, e := range set {
		out[n] = e
	}
	for _, n := range del {
		delete(out, n)
	}
	return out
}

// get returns manifest key, from memory when this format read or wrote it.
func (f *manifestFormat) get(ctx context.Context, key string, delta bool) (*manifestFile, error) {
	m, ok := f.seen.Get(key)
	if ok && (m.delta != nil) == delta {
		return m, nil
	}
	m = &manifestFile{}
	var v any
	if delta {
		m.delta = &deltaFile{}
		v = m.delta
	} else {
		m.base = &baseFile{}
		v = m.base
	}
	var err error
	if m.size, m.id, err = f.load(ctx, key, v); err != nil {
		return nil, err
	}
	if m.base != nil && m.base.Entries == nil {
		m.base.Entries = map[string]Entry{}
	}
	// Checked once, here: decode then checks only the pointer's entries,
	// not every entry of a base again at each commit.
	var entries map[string]Entry
	if m.base != nil {
		entries = m.base.Entries
	} else {
		entries = m.delta.Set
	}
	if err := f.checkKeys("manifest "+key, entries); err != nil {
		return nil, err
	}
	f.seen.Add(key, m)
	return m, nil
}

// checkKeys fails with ErrCorrupt if an entry of entries, read from
// where, has a malformed key.
func (f *manifestFormat) checkKeys(where string, entries map[string]Entry) error {
	for n, e := range entries {
		if !validKey(e.Key) {
			return f.corrupt("%s: entry %q has bad key %q", where, n, e.Key)
		}
	}
	return nil
}

// load downloads and decodes manifest key into v, checking its version.
func (f *manifestFormat) load(ctx context.Context, key string, v any) (int64, string, error) {
	rc, fi, err := f.store.Download(ctx, f.manifest(key), 0, -1)
	if errors.Is(err, ErrNotExist) {
		return 0, "", f.corrupt("manifest %s is missing", key)
	}
	if err != nil {
		return 0, "", err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return 0, "", f.corrupt("manifest %s: %v", key, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return 0, "", err
		}
		return 0, "", f.corrupt("manifest %s: %v", key, err)
	}
	var ver struct {
		Version int `json:"b2cfs"`
	}
	if err := json.Unmarshal(raw, &ver); err != nil {
		return 0, "", f.corrupt("manifest %s is not JSON: %v", key, err)
	}
	if ver.Version > manifestVersion {
		return 0, "", f.corrupt("manifest %s has format version %d from a newer b2cfs: upgrade b2cfs", key, ver.Version)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return 0, "", f.corrupt("manifest %s: %v", key, err)
	}
	return fi.Size, fi.ID, nil
}

func (f *manifestFormat) encode(ctx context.Context, old, idx *index, budget int) (string, *change, error) {
	st, _ := old.state.(*manifestState)
	if st == nil {
		st = &manifestState{}
	}
	// First choice: keep the changes since the delta inline in the pointer,
	// so that the commit uploads no manifest at all.
	if st.base != nil {
		p := st.ptr
		p.Version = formatVersion(idx.Entries)
		p.Serial, p.Log = idx.Serial, idx.Log
		p.Set, p.Del = inline(st, old, idx)
		if v, err := encodePointer(p); err != nil {
			return "", nil, err
		} else if len(v) <= min(budget, inlineBudget) {
			return v, &change{decoded: decoded(idx, manifestState{ptr: p, base: st.base, delta: st.delta})}, nil
		}
	}
	return f.flush(ctx, st, idx)
}

// decoded is idx as decode reads it back from the pointer of st: the same
// entries, and st to build the next change on. Committing a change to a
// large group then costs no decoding of the index it just encoded.
func decoded(idx *index, st manifestState) *index {
	return &index{Serial: idx.Serial, Log: idx.Log, Entries: idx.Entries, state: &st}
}

// inline returns the changes from base and delta of st to idx, given the
// old index derived from them (old = base + delta + old inline changes).
func inline(st *manifestState, old, idx *index) (map[string]Entry, []string) {
	set := maps.Clone(st.ptr.Set)
	if set == nil {
		set = map[string]Entry{}
	}
	del := map[string]bool{}
	for _, n := range st.ptr.Del {
		del[n] = true
	}
	for n, e := range idx.Entries {
		if o, ok := old.Entries[n]; !ok || o != e {
			set[n] = e
			delete(del, n)
		}
	}
	for n := range old.Entries {
		if _, ok := idx.Entries[n]; !ok {
			delete(set, n)
			if st.inDelta(n) {
				del[n] = true
			}
		}
	}
	var dl []string
	for n := range del {
		dl = append(dl, n)
	}
	sort.Strings(dl)
	return set, dl
}

// inDelta reports whether name is in the index that base and delta make.
func (st *manifestState) inDelta(name string) bool {
	if st.delta != nil {
		if _, ok := st.delta.delta.Set[name]; ok {
			return true
		}
		if slices.Contains(st.delta.delta.Del, name) {
			return false
		}
	}
	_, ok := st.base.base.Entries[name]
	return ok
}

// flush writes the changes since the base to a new delta manifest, or
// folds everything into a new base when the delta would be as large as the
// base or larger than foldAt.
func (f *manifestFormat) flush(ctx context.Context, st *manifestState, idx *index) (string, *change, error) {
	var base map[string]Entry
	var baseSize int64
	if st.base != nil {
		base, baseSize = st.base.base.Entries, st.base.size
	}
	version := formatVersion(idx.Entries)
	d := &deltaFile{Version: version, Base: st.ptr.Base, Set: map[string]Entry{}}
	for n, e := range idx.Entries {
		if b, ok := base[n]; !ok || b != e {
			d.Set[n] = e
		}
	}
	for n := range base {
		if _, ok := idx.Entries[n]; !ok {
			d.Del = append(d.Del, n)
		}
	}
	ch := &change{}
	p := pointer{Version: version, Serial: idx.Serial, Log: idx.Log, Base: st.ptr.Base}
	next := manifestState{base: st.base}
	if len(d.Set)+len(d.Del) > 0 {
		dz, err := gz(d)
		if err != nil {
			return "", nil, err
		}
		m := &manifestFile{delta: d, size: int64(len(dz))}
		if st.base == nil || len(dz) > foldAt || m.size >= baseSize {
			// Fold: a new base, when the changes are as large as the
			// base or too large to send with every flush.
			b := &baseFile{Version: version, Entries: idx.Entries}
			bz, err := gz(b)
			if err != nil {
				return "", nil, err
			}
			m, dz = &manifestFile{base: b, size: int64(len(bz))}, bz
		}
		key, err := f.put(ctx, dz, m)
		if err != nil {
			return "", nil, err
		}
		ch.created = append(ch.created, fileRef{f.manifest(key), m.id})
		if m.base != nil {
			p.Base, next.base = key, m
			if st.base != nil {
				ch.obsolete = append(ch.obsolete, fileRef{f.manifest(st.ptr.Base), st.base.id})
			}
		} else {
			p.Delta, next.delta = key, m
		}
	}
	if st.delta != nil && p.Delta != st.ptr.Delta {
		ch.obsolete = append(ch.obsolete, fileRef{f.manifest(st.ptr.Delta), st.delta.id})
	}
	v, err := encodePointer(p)
	next.ptr = p
	ch.decoded = decoded(idx, next)
	return v, ch, err
}

func (f *manifestFormat) stamp(v string) (int64, string, error) {
	var p pointer
	raw, err := base64.StdEncoding.DecodeString(v)
	if err == nil {
		err = json.Unmarshal(raw, &p)
	}
	return p.Serial, p.Log, err
}

func encodePointer(p pointer) (string, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// put uploads the manifest m, encoded as data, and remembers it.
func (f *manifestFormat) put(ctx context.Context, data []byte, m *manifestFile) (string, error) {
	key := newKey()
	fi, err := f.store.Upload(ctx, f.manifest(key), bytes.NewReader(data), int64(len(data)), f.group)
	if err != nil {
		return "", err
	}
	m.id = fi.ID
	f.seen.Add(key, m)
	return key, nil
}

func gz(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
