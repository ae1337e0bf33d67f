// Package memstore is an in-memory core.Store with B2's semantics (revision
// compare-and-swap, bucket-info limits, immutable file versions) and hooks
// to inject faults, for fast tests of the engine.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"

	"github.com/b2cfs/b2cfs/core"
)

// Store is an in-memory bucket. Safe for concurrent use.
type Store struct {
	// Limits are enforced on UpdateBucketInfo (zero fields: B2's values).
	Limits core.Limits
	// Fault, when set, is called before every operation with its name
	// ("BucketInfo", "UpdateBucketInfo", "Upload", "Download", "Stat",
	// "Delete"); a non-nil result is returned instead of doing it.
	Fault func(op string) error

	mu     sync.Mutex
	rev    int64
	info   map[string]string
	files  map[string][]version // name -> versions, newest last
	nextID int
	calls  map[string]int
}

type version struct {
	id   string
	data []byte
}

// New returns an empty bucket at revision 1.
func New() *Store {
	return &Store{rev: 1, info: map[string]string{}, files: map[string][]version{}, calls: map[string]int{}}
}

// Calls returns how many times each operation was called.
func (s *Store) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// Files returns the names of all stored file versions, one entry per
// version.
func (s *Store) Files() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n, vs := range s.files {
		for range vs {
			out = append(out, n)
		}
	}
	return out
}

// SetInfo sets one bucket-info pair directly, bumping the revision (as
// another program would).
func (s *Store) SetInfo(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info = maps.Clone(s.info)
	s.info[key] = value
	s.rev++
}

func (s *Store) enter(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	if s.Fault != nil {
		return s.Fault(op)
	}
	return nil
}

func (s *Store) BucketInfo(ctx context.Context) (core.BucketInfo, error) {
	if err := s.enter(ctx, "BucketInfo"); err != nil {
		return core.BucketInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return core.BucketInfo{Revision: s.rev, Info: s.info}, nil
}

func (s *Store) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	if err := s.enter(ctx, "UpdateBucketInfo"); err != nil {
		return core.BucketInfo{}, err
	}
	l := s.Limits
	if l == (core.Limits{}) {
		l = core.Limits{MaxPairs: 10, MaxValueBytes: 2048, MaxTotalBytes: 10000}
	}
	if len(info) > l.MaxPairs {
		return core.BucketInfo{}, fmt.Errorf("%w: %d pairs", core.ErrInfoRejected, len(info))
	}
	for k, v := range info {
		if l.MaxValueBytes > 0 && len(v) > l.MaxValueBytes {
			return core.BucketInfo{}, fmt.Errorf("%w: value of %q is %d bytes", core.ErrInfoRejected, k, len(v))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev != s.rev {
		return core.BucketInfo{}, fmt.Errorf("%w: have %d, want %d", core.ErrRevisionMismatch, s.rev, rev)
	}
	s.rev++
	s.info = maps.Clone(info)
	return core.BucketInfo{Revision: s.rev, Info: s.info}, nil
}

func (s *Store) Upload(ctx context.Context, name string, data io.ReaderAt, size int64) (core.FileInfo, error) {
	if err := s.enter(ctx, "Upload"); err != nil {
		return core.FileInfo{}, err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(data, 0, size), b); err != nil {
		return core.FileInfo{}, fmt.Errorf("upload %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := "mem" + strconv.Itoa(s.nextID)
	s.files[name] = append(s.files[name], version{id: id, data: b})
	return core.FileInfo{ID: id, Size: size}, nil
}

func (s *Store) newest(name string) (version, error) {
	vs := s.files[name]
	if len(vs) == 0 {
		return version{}, fmt.Errorf("%q: %w", name, core.ErrNotExist)
	}
	return vs[len(vs)-1], nil
}

func (s *Store) Download(ctx context.Context, name string, off, length int64) (io.ReadCloser, core.FileInfo, error) {
	if err := s.enter(ctx, "Download"); err != nil {
		return nil, core.FileInfo{}, err
	}
	s.mu.Lock()
	v, err := s.newest(name)
	s.mu.Unlock()
	if err != nil {
		return nil, core.FileInfo{}, err
	}
	size := int64(len(v.data))
	lo := min(off, size)
	hi := size
	if length >= 0 {
		hi = min(lo+length, size)
	}
	return io.NopCloser(bytes.NewReader(v.data[lo:hi])), core.FileInfo{ID: v.id, Size: hi - lo}, nil
}

func (s *Store) Stat(ctx context.Context, name string) (core.FileInfo, error) {
	if err := s.enter(ctx, "Stat"); err != nil {
		return core.FileInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.newest(name)
	if err != nil {
		return core.FileInfo{}, err
	}
	return core.FileInfo{ID: v.id, Size: int64(len(v.data))}, nil
}

func (s *Store) Delete(ctx context.Context, name, id string) error {
	if err := s.enter(ctx, "Delete"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.files[name]
	for i, v := range vs {
		if v.id == id {
			s.files[name] = append(vs[:i:i], vs[i+1:]...)
			if len(s.files[name]) == 0 {
				delete(s.files, name)
			}
			return nil
		}
	}
	return fmt.Errorf("%q version %s: %w", name, id, core.ErrNotExist)
}
