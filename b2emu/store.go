package b2emu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// state is everything the emulator keeps between restarts. It is guarded by
// Server.mu and, when Config.Dir is set, rewritten atomically to
// Dir/state.json after every mutation.
type state struct {
	AccountID string             `json:"accountId"`
	Seq       int64              `json:"seq"`     // last used sequence number (IDs, version order)
	LastStamp int64              `json:"lastTs"`  // last upload timestamp handed out, ms
	Buckets   map[string]*bucket `json:"buckets"` // by bucket ID
	Files     map[string]*file   `json:"files"`   // every version, hide marker and unfinished large file, by file ID
	Keys      map[string]*appKey `json:"keys"`    // application keys made with b2_create_key, by key ID
}

type bucket struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Type            string            `json:"type"`
	Info            map[string]string `json:"info"`
	LifecycleRules  json.RawMessage   `json:"lifecycleRules"`
	CORSRules       json.RawMessage   `json:"corsRules"`
	Revision        int               `json:"revision"`
	FileLockEnabled bool              `json:"fileLockEnabled"`
	Retention       json.RawMessage   `json:"defaultRetention,omitempty"` // {mode, period{duration, unit}}
	SSE             json.RawMessage   `json:"sse,omitempty"`              // {mode, algorithm}
	Replication     json.RawMessage   `json:"replication,omitempty"`
}

// file is one entry of a bucket's version history. Action is "upload"
// (a finished file), "hide" (a hide marker) or "start" (an unfinished large
// file, whose uploaded parts are in Parts).
type file struct {
	ID          string            `json:"id"`
	BucketID    string            `json:"bucketId"`
	Name        string            `json:"name"`
	Action      string            `json:"action"`
	Size        int64             `json:"size"`
	SHA1        string            `json:"sha1"`
	ContentType string            `json:"contentType"`
	Info        map[string]string `json:"info"`
	Stamp       int64             `json:"ts"`
	Seq         int64             `json:"seq"`
	Parts       map[int]*part     `json:"parts,omitempty"`

	finishing bool // finish in progress; guarded by Server.mu, not persisted
}

type part struct {
	Number int    `json:"n"`
	Size   int64  `json:"size"`
	SHA1   string `json:"sha1"`
	Blob   string `json:"blob"`
	Stamp  int64  `json:"ts"`
}

type appKey struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret"`
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
	BucketID     string   `json:"bucketId,omitempty"`
	Prefix       string   `json:"namePrefix,omitempty"`
	Expires      int64    `json:"expires,omitempty"` // ms since epoch, 0 = never
}

func newState() *state {
	return &state{
		AccountID: randHex(6),
		Buckets:   map[string]*bucket{},
		Files:     map[string]*file{},
		Keys:      map[string]*appKey{},
	}
}

// loadState reads Dir/state.json, or returns a fresh state when there is none.
func loadState(dir string) (*state, error) {
	st := newState()
	if dir == "" {
		return st, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("b2emu: corrupt %s: %w", filepath.Join(dir, "state.json"), err)
	}
	if st.Buckets == nil {
		st.Buckets = map[string]*bucket{}
	}
	if st.Files == nil {
		st.Files = map[string]*file{}
	}
	if st.Keys == nil {
		st.Keys = map[string]*appKey{}
	}
	return st, nil
}

// saveState writes st to Dir/state.json through a temporary file and a
// rename, so a crash leaves either the old or the new state.
func saveState(dir string, st *state) error {
	if dir == "" {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

// blobStore holds file contents and large-file parts by key. Keys are made
// by the server from file IDs and contain only [A-Za-z0-9_.].
// Implementations are safe for concurrent use.
type blobStore interface {
	// create returns a writer for key; the blob appears only when Close
	// returns nil. abort discards it.
	create(key string) (blobWriter, error)
	open(key string) (blobReader, error)
	remove(key string)
}

type blobWriter interface {
	io.Writer
	Close() error
	abort()
}

type blobReader interface {
	io.ReaderAt
	io.Closer
}

type memBlobs struct {
	mu sync.Mutex
	m  map[string][]byte // GUARDED_BY(mu)
}

type memWriter struct {
	bytes.Buffer
	key string
	s   *memBlobs
}

func (w *memWriter) Close() error {
	w.s.mu.Lock()
	w.s.m[w.key] = w.Bytes()
	w.s.mu.Unlock()
	return nil
}

func (w *memWriter) abort() {}

type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

func (s *memBlobs) create(key string) (blobWriter, error) {
	return &memWriter{key: key, s: s}, nil
}

func (s *memBlobs) open(key string) (blobReader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if !ok {
		return nil, fmt.Errorf("b2emu: blob %s missing", key)
	}
	return memReader{bytes.NewReader(b)}, nil
}

func (s *memBlobs) remove(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

// dirBlobs keeps one file per blob under dir, written to a temporary name
// and renamed into place on Close.
type dirBlobs struct{ dir string }

type dirWriter struct {
	*os.File
	final string
}

func (w *dirWriter) Close() error {
	if err := w.File.Close(); err != nil {
		os.Remove(w.Name())
		return err
	}
	return os.Rename(w.Name(), w.final)
}

func (w *dirWriter) abort() {
	w.File.Close()
	os.Remove(w.Name())
}

func (s dirBlobs) create(key string) (blobWriter, error) {
	f, err := os.CreateTemp(s.dir, key+".tmp*")
	if err != nil {
		return nil, err
	}
	return &dirWriter{File: f, final: filepath.Join(s.dir, key)}, nil
}

func (s dirBlobs) open(key string) (blobReader, error) {
	return os.Open(filepath.Join(s.dir, key))
}

func (s dirBlobs) remove(key string) { os.Remove(filepath.Join(s.dir, key)) }
