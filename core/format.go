package core

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"sort"
)

// Entry is one object of a group's index: the key of its current version
// and, in formats that record them, the version's attributes.
//
// Mode is the POSIX st_mode: a file type (ModeRegular, ModeLink, ModeDir)
// and the permission bits, so that 0000 is a mode like any other; 0 is
// unset. Entries written before types were recorded hold the permission
// bits alone, which are a regular file's (FileMode reads both). A symbolic
// link (ModeLink) holds its target in Link and has no data file.
type Entry struct {
	Key   string `json:"k"`
	Size  int64  `json:"s,omitempty"`
	MTime int64  `json:"t,omitempty"` // modification time, ns since the epoch
	ATime int64  `json:"a,omitempty"` // access time as last set (utimes), ns; 0: MTime
	CTime int64  `json:"c,omitempty"` // when the entry last changed, ns; 0: MTime
	Mode  uint32 `json:"m,omitempty"` // st_mode; 0: unset
	Link  string `json:"l,omitempty"` // symbolic link target
	Prev  string `json:"p,omitempty"` // the first version of the run of appends this one ends: every version of the run begins this one
	ID    string `json:"i,omitempty"` // B2 file id of the version
	// Inline marks a version kept in the index itself: its bytes are Data
	// (standard base64), and it has no data file.
	Inline bool   `json:"n,omitempty"`
	Data   string `json:"d,omitempty"`
}

// HasFile reports whether the version's bytes live in a data file of
// their own: neither a symbolic link nor an inline version.
func (e Entry) HasFile() bool { return !e.IsLink() && !e.Inline }

// encodeInline returns b as Entry.Data.
func encodeInline(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// inlineBytes returns the bytes of an inline version.
func (e Entry) inlineBytes() ([]byte, error) {
	return base64.StdEncoding.DecodeString(e.Data)
}

// File types of Entry.Mode (the S_IFMT bits of st_mode).
const (
	ModeRegular = 0o100000
	ModeDir     = 0o040000
	ModeLink    = 0o120000
	modeType    = 0o170000
)

// FileMode returns the entry's type and permission bits as an os.FileMode,
// and whether the entry records a mode at all.
func (e Entry) FileMode() (os.FileMode, bool) {
	m := os.FileMode(e.Mode).Perm()
	for bit, fm := range specialBits {
		if e.Mode&bit != 0 {
			m |= fm
		}
	}
	switch e.Mode & modeType {
	case ModeDir:
		m |= os.ModeDir
	case ModeLink:
		m |= os.ModeSymlink
	}
	return m, e.Mode != 0
}

// IsLink reports whether the entry is a symbolic link.
func (e Entry) IsLink() bool { return e.Mode&modeType == ModeLink }

// specialBits maps the set-id and sticky bits of st_mode to os.FileMode's.
var specialBits = map[uint32]os.FileMode{0o4000: os.ModeSetuid, 0o2000: os.ModeSetgid, 0o1000: os.ModeSticky}

// stMode returns mode as st_mode bits: type, set-id and sticky bits, and
// permissions.
func stMode(mode os.FileMode) uint32 {
	m := uint32(ModeRegular)
	switch {
	case mode&os.ModeDir != 0:
		m = ModeDir
	case mode&os.ModeSymlink != 0:
		m = ModeLink
	}
	for bit, fm := range specialBits {
		if mode&fm != 0 {
			m |= bit
		}
	}
	return m | uint32(mode.Perm())
}

// index is a group's map from object name to entry, plus the serial number
// that goes up by one with every saved index and the log of the commits
// that saved the last few serials. An index in a view is never modified;
// mutations work on a clone.
type index struct {
	Serial  int64
	Log     string // commit ids, newest (that of Serial) first; see commitLog
	Entries map[string]Entry
	state   any // the format's own decoding state, shared by clones
}

func (x *index) clone() *index {
	return &index{Serial: x.Serial, Log: x.Log, Entries: maps.Clone(x.Entries), state: x.state}
}

// The commit log: every saved index records, next to its serial, the
// random id of the commit that saved it, and keeps the ids of the
// logLen-1 commits before it (idLen hex digits each, newest first). Serials
// go up by one per saved index, so the id at position i belongs to serial
// Serial-i. A commit whose reply was lost reads the bucket back and finds
// out from the log whether the index at its serial is its own, even when
// a few other commits came after it (see resolve in group.go).
const (
	idLen  = 8
	logLen = 32
)

// stamp makes x the successor of the index it was cloned from, saved by
// commit id.
func (x *index) stamp(id string) {
	x.Serial++
	x.Log = id + x.Log
	if len(x.Log) > idLen*logLen {
		x.Log = x.Log[:idLen*logLen]
	}
}

// logged returns the id of the commit that saved serial s, if the log
// still holds it.
func logged(serial int64, log string, s int64) (string, bool) {
	i := serial - s
	if i < 0 || (i+1)*idLen > int64(len(log)) {
		return "", false
	}
	return log[i*idLen : (i+1)*idLen], true
}

// trimLog shortens log by its oldest id, for an index that would not fit
// otherwise; false when only the newest id is left.
func trimLog(log string) (string, bool) {
	if len(log) <= idLen {
		return log, false
	}
	return log[:len(log)-idLen], true
}

// names returns the object names in byte order.
func (x *index) names() []string {
	out := make([]string, 0, len(x.Entries))
	for n := range x.Entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// fileRef names one stored B2 file version.
type fileRef struct{ name, id string }

// change lists the files an encoding uploaded (to delete if the index is
// not saved) and the files the new index no longer needs (to delete after
// the grace period once it is saved).
type change struct {
	created, obsolete []fileRef
	// decoded is the index as decode reads it back from the value encode
	// returned, when the format has it at hand (nil: decode the value).
	decoded *index
}

// indexFormat is the seam between the engine and the on-bucket encoding of
// an index. Everything else (the CAS loop, views, leases, deletion) is shared
// by all formats.
type indexFormat interface {
	// infoKey is the bucket-info key holding the group's index or pointer.
	infoKey() string
	// file is the B2 file holding version key of object name.
	file(name, key string) string
	// hasAttrs reports whether entries carry size, time, mode and file id
	// and data names are independent of object names (rename without
	// copying).
	hasAttrs() bool
	// decode reads the index from the bucket-info value; an undecodable
	// value is ErrCorrupt.
	decode(ctx context.Context, value string) (*index, error)
	// encode returns the bucket-info value that stores idx, which was
	// derived from old. budget is how many bytes the value may take.
	encode(ctx context.Context, old, idx *index, budget int) (string, *change, error)
	// stamp reads only the serial and the commit log of a bucket-info
	// value, without downloading anything.
	stamp(value string) (serial int64, log string, err error)
}

// blazerMetaKey is the bucket-info key prefix of blazer's x/consistent.
const blazerMetaKey = "blazer-meta-key-no-touchie-"

// blazerFormat is blazer's x/consistent encoding: the whole index as base64
// JSON in one bucket-info value; object name at key is the file name/key.
type blazerFormat struct {
	group string
}

// blazerIndex is the JSON blazer writes; field names are its own, except
// B2cfsLog, the commit log, which blazer ignores when it reads and drops
// when it writes (an index blazer saved has no log).
type blazerIndex struct {
	Version   int
	Serial    int64
	Locations map[string]string
	B2cfsLog  string `json:",omitempty"`
}

func (f blazerFormat) infoKey() string              { return blazerMetaKey + f.group }
func (f blazerFormat) file(name, key string) string { return name + "/" + key }
func (f blazerFormat) hasAttrs() bool               { return false }

func (f blazerFormat) decode(_ context.Context, v string) (*index, error) {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: bucket-info %q is not base64: %v", ErrCorrupt, f.infoKey(), err)
	}
	var bi blazerIndex
	if err := json.Unmarshal(raw, &bi); err != nil {
		return nil, fmt.Errorf("%w: bucket-info %q is not an index: %v", ErrCorrupt, f.infoKey(), err)
	}
	if bi.Version != 1 {
		return nil, fmt.Errorf("%w: bucket-info %q has index version %d, want 1", ErrCorrupt, f.infoKey(), bi.Version)
	}
	idx := &index{Serial: bi.Serial, Log: bi.B2cfsLog, Entries: make(map[string]Entry, len(bi.Locations))}
	for n, k := range bi.Locations {
		if !validKey(k) {
			return nil, fmt.Errorf("%w: bucket-info %q: entry %q has bad key %q", ErrCorrupt, f.infoKey(), n, k)
		}
		idx.Entries[n] = Entry{Key: k}
	}
	return idx, nil
}

// encode keeps as much of the commit log as fits in budget: in this
// format every byte of the value is room for names.
func (f blazerFormat) encode(_ context.Context, _, idx *index, budget int) (string, *change, error) {
	locs := make(map[string]string, len(idx.Entries))
	for n, e := range idx.Entries {
		if e.Inline {
			return "", nil, fmt.Errorf("%w: the %s format cannot keep %q inline", ErrNotSupported, FormatBlazer, n)
		}
		locs[n] = e.Key
	}
	bi := blazerIndex{Version: 1, Serial: idx.Serial, Locations: locs, B2cfsLog: idx.Log}
	for {
		raw, err := json.Marshal(bi)
		if err != nil {
			return "", nil, err
		}
		v := base64.StdEncoding.EncodeToString(raw)
		var more bool
		if len(v) <= budget {
			return v, &change{}, nil
		}
		if bi.B2cfsLog, more = trimLog(bi.B2cfsLog); !more {
			return v, &change{}, nil // too large: the limits check says so
		}
	}
}

func (f blazerFormat) stamp(v string) (int64, string, error) {
	var bi blazerIndex
	raw, err := base64.StdEncoding.DecodeString(v)
	if err == nil {
		err = json.Unmarshal(raw, &bi)
	}
	return bi.Serial, bi.B2cfsLog, err
}

// Limits are what B2 accepts in a bucket's info. Sources disagree on the
// value rule (2,048 bytes per value, or 10,000 for all values together), so
// both are enforced.
type Limits struct {
	MaxPairs      int // default 10
	MaxValueBytes int // default 2048
	MaxTotalBytes int // default 10000
}

// WithDefaults returns l with B2's limits in place of its zero fields.
func (l Limits) WithDefaults() Limits {
	if l.MaxPairs == 0 {
		l.MaxPairs = 10
	}
	if l.MaxValueBytes == 0 {
		l.MaxValueBytes = 2048
	}
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = 10000
	}
	return l
}

// Use returns the bytes the value of key takes in the bucket info and the
// most it may take under l: the per-value limit, or what the other values
// leave of the total, whichever is less.
func (l Limits) Use(info map[string]string, key string) (used, limit int) {
	l = l.WithDefaults()
	others := 0
	for k, v := range info {
		if k != key {
			others += len(v)
		}
	}
	return len(info[key]), min(l.MaxValueBytes, l.MaxTotalBytes-others)
}

func (l Limits) check(info map[string]string) error {
	l = l.WithDefaults()
	if len(info) > l.MaxPairs {
		return fmt.Errorf("%w: the bucket info would hold %d pairs, B2 allows %d", ErrGroupFull, len(info), l.MaxPairs)
	}
	total := 0
	for k, v := range info {
		if len(v) > l.MaxValueBytes {
			return fmt.Errorf("%w: index %q would take %d bytes, B2 allows %d per value", ErrGroupFull, k, len(v), l.MaxValueBytes)
		}
		total += len(v)
	}
	if total > l.MaxTotalBytes {
		return fmt.Errorf("%w: bucket info would take %d bytes, B2 allows %d", ErrGroupFull, total, l.MaxTotalBytes)
	}
	return nil
}
