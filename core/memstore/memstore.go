package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

// Store is an in-memory bucket. Safe for concurrent use.
type Store struct {
	// Limits are enforced on UpdateBucketInfo (zero fields: B2's values).
	Limits core.Limits

	mu     sync.Mutex
	rev    int64
	info   map[string]string
	files  map[string][]version // name -> versions, newest last
	nextID int
	calls  map[string]int
	fault  func(op string) error // GUARDED_BY(mu)
	lost   func(op string) error // GUARDED_BY(mu)
}

// SetLostReply makes f run after every operation that changes the bucket
// ("UpdateBucketInfo", "Upload", "Delete", "Copy") has been applied; a
// non-nil result is returned instead of the operation's answer, as when B2
// applied a call and its reply was lost, late or a 5xx. For
// UpdateBucketInfo the error is wrapped in core.ErrUnknownOutcome, as the
// Store contract says. A nil f clears it.
//
// Independently of f, an operation that changes the bucket and finds its
// ctx ended once applied (an interrupt that came while B2 had the call)
// returns the context's error the same way.
func (s *Store) SetLostReply(f func(op string) error) {
	s.mu.Lock()
	s.lost = f
	s.mu.Unlock()
}

// leave decides the answer of op once it has been applied: nil, or the
// error that replaces the lost reply.
func (s *Store) leave(ctx context.Context, op string) error {
	s.mu.Lock()
	lost := s.lost
	s.mu.Unlock()
	err := ctx.Err()
	if err == nil && lost != nil {
		err = lost(op)
	}
	if err == nil {
		return nil
	}
	if op == "UpdateBucketInfo" {
		return fmt.Errorf("%w: %s applied, reply lost: %w", core.ErrUnknownOutcome, op, err)
	}
	return fmt.Errorf("%w: %s applied, reply lost: %w", core.ErrUnavailable, op, err)
}

// SetFault makes f run before every operation with its name ("BucketInfo",
// "UpdateBucketInfo", "Upload", "Download", "Stat", "Delete", "Copy",
// "List"); a non-nil result is returned instead of doing the operation. A
// nil f clears it.
func (s *Store) SetFault(f func(op string) error) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

type version struct {
	id    string
	data  []byte
	at    time.Time
	group string // the mark Upload stores
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
	fault := s.fault
	s.mu.Unlock()
	if fault != nil {
		return fault(op)
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
	if rev != s.rev {
		defer s.mu.Unlock()
		return core.BucketInfo{}, fmt.Errorf("%w: have %d, want %d", core.ErrRevisionMismatch, s.rev, rev)
	}
	s.rev++
	s.info = maps.Clone(info)
	bi := core.BucketInfo{Revision: s.rev, Info: s.info}
	s.mu.Unlock()
	if err := s.leave(ctx, "UpdateBucketInfo"); err != nil {
		return core.BucketInfo{}, err
	}
	return bi, nil
}

func (s *Store) Upload(ctx context.Context, name string, data io.ReaderAt, size int64, group string) (core.FileInfo, error) {
	if err := s.enter(ctx, "Upload"); err != nil {
		return core.FileInfo{}, err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(data, 0, size), b); err != nil {
		return core.FileInfo{}, fmt.Errorf("upload %q: %w", name, err)
	}
	s.mu.Lock()
	s.nextID++
	id := "mem" + strconv.Itoa(s.nextID)
	now := time.Now()
	s.files[name] = append(s.files[name], version{id: id, data: b, at: now, group: group})
	s.mu.Unlock()
	if err := s.leave(ctx, "Upload"); err != nil {
		return core.FileInfo{}, err
	}
	return core.FileInfo{Name: name, ID: id, Size: size, Modified: now}, nil
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
	return core.FileInfo{Name: name, ID: v.id, Size: int64(len(v.data)), Modified: v.at}, nil
}

func (s *Store) Delete(ctx context.Context, name, id string) error {
	if err := s.enter(ctx, "Delete"); err != nil {
		return err
	}
	s.mu.Lock()
	vs := s.files[name]
	for i, v := range vs {
		if v.id == id {
			s.files[name] = append(vs[:i:i], vs[i+1:]...)
			if len(s.files[name]) == 0 {
				delete(s.files, name)
			}
			s.mu.Unlock()
			return s.leave(ctx, "Delete")
		}
	}
	s.mu.Unlock()
	return fmt.Errorf("%q version %s: %w", name, id, core.ErrNotExist)
}

func (s *Store) Copy(ctx context.Context, src, srcID, dst string) (core.FileInfo, error) {
	if err := s.enter(ctx, "Copy"); err != nil {
		return core.FileInfo{}, err
	}
	s.mu.Lock()
	for _, v := range s.files[src] {
		if v.id == srcID {
			s.nextID++
			nv := version{id: "mem" + strconv.Itoa(s.nextID), data: v.data, at: time.Now(), group: v.group}
			s.files[dst] = append(s.files[dst], nv)
			s.mu.Unlock()
			if err := s.leave(ctx, "Copy"); err != nil {
				return core.FileInfo{}, err
			}
			return core.FileInfo{Name: dst, ID: nv.id, Size: int64(len(v.data)), Modified: nv.at}, nil
		}
	}
	s.mu.Unlock()
	return core.FileInfo{}, fmt.Errorf("%q version %s: %w", src, srcID, core.ErrNotExist)
}

func (s *Store) List(ctx context.Context, prefix string) ([]core.FileInfo, error) {
	if err := s.enter(ctx, "List"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []core.FileInfo
	for n, vs := range s.files {
		if strings.HasPrefix(n, prefix) && len(vs) > 0 {
			v := vs[len(vs)-1]
			out = append(out, core.FileInfo{Name: n, ID: v.id, Size: int64(len(v.data)), Modified: v.at, Group: v.group})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
