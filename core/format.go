package core

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
)

// index is a group's map from object name to key, plus the serial number
// that goes up by one with every saved index. An index in a view is never
// modified; mutations work on a clone.
type index struct {
	Serial  int64
	Entries map[string]string // name -> key
}

func (x *index) clone() *index {
	return &index{Serial: x.Serial, Entries: maps.Clone(x.Entries)}
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

// indexFormat is the seam between the engine and the on-bucket encoding of
// an index. Everything else (the CAS loop, views, leases, deletion) is shared
// by all formats.
type indexFormat interface {
	// decode reads the group's index from the bucket info; a group absent
	// from the info is an empty index. An undecodable value is ErrCorrupt.
	decode(ctx context.Context, info map[string]string) (*index, error)
	// encode returns the bucket info that stores idx, leaving every other
	// pair of info as it is. It returns ErrGroupFull when B2 would refuse
	// the result.
	encode(ctx context.Context, idx *index, info map[string]string) (map[string]string, error)
}

// blazerMetaKey is the bucket-info key prefix of blazer's x/consistent.
const blazerMetaKey = "blazer-meta-key-no-touchie-"

// blazerFormat is blazer's x/consistent encoding: the whole index as base64
// JSON in one bucket-info value.
type blazerFormat struct {
	key    string // bucket-info key of the group
	limits Limits
}

// blazerIndex is the JSON blazer writes; field names are its own.
type blazerIndex struct {
	Version   int
	Serial    int64
	Locations map[string]string
}

func (f blazerFormat) decode(_ context.Context, info map[string]string) (*index, error) {
	v, ok := info[f.key]
	if !ok {
		return &index{Entries: map[string]string{}}, nil
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: bucket-info %q is not base64: %v", ErrCorrupt, f.key, err)
	}
	var bi blazerIndex
	if err := json.Unmarshal(raw, &bi); err != nil {
		return nil, fmt.Errorf("%w: bucket-info %q is not an index: %v", ErrCorrupt, f.key, err)
	}
	if bi.Version != 1 {
		return nil, fmt.Errorf("%w: bucket-info %q has index version %d, want 1", ErrCorrupt, f.key, bi.Version)
	}
	for n, k := range bi.Locations {
		if !validKey(k) {
			return nil, fmt.Errorf("%w: bucket-info %q: entry %q has bad key %q", ErrCorrupt, f.key, n, k)
		}
	}
	if bi.Locations == nil {
		bi.Locations = map[string]string{}
	}
	return &index{Serial: bi.Serial, Entries: bi.Locations}, nil
}

func (f blazerFormat) encode(_ context.Context, idx *index, info map[string]string) (map[string]string, error) {
	raw, err := json.Marshal(blazerIndex{Version: 1, Serial: idx.Serial, Locations: idx.Entries})
	if err != nil {
		return nil, err
	}
	out := maps.Clone(info)
	if out == nil {
		out = map[string]string{}
	}
	out[f.key] = base64.StdEncoding.EncodeToString(raw)
	if err := f.limits.check(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Limits are what B2 accepts in a bucket's info. Sources disagree on the
// value rule (2,048 bytes per value, or 10,000 for all values together), so
// both are enforced.
type Limits struct {
	MaxPairs      int // default 10
	MaxValueBytes int // default 2048
	MaxTotalBytes int // default 10000
}

func (l Limits) withDefaults() Limits {
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

func (l Limits) check(info map[string]string) error {
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
