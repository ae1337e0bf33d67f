package b2emu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures a Server. The zero value is usable.
type Config struct {
	KeyID, Key        string        // credentials accepted; defaults "b2cfs-emu-key-id" / "b2cfs-emu-key"
	Dir               string        // "" = in memory; else persist state under Dir so a restart keeps everything
	TokenLifetime     time.Duration // account & upload token lifetime; default 24h
	MaxInfoValueBytes int           // per bucket-info value limit; default 2048
	MaxInfoTotalBytes int           // sum of all bucket-info values; 0 = no total rule
	MinPartSize       int64         // min non-last large-file part; default 5_000_000
	Logf              func(format string, args ...any)
}

// Default credentials used when Config leaves them empty.
const (
	DefaultKeyID = "b2cfs-emu-key-id"
	DefaultKey   = "b2cfs-emu-key"
)

// Server is a B2 native API emulator. It is safe for concurrent use.
//
// Lock ordering: mu (state) may be held while taking smu (stats); fmu
// (faults) and lmu (listener) are never held together with another lock.
type Server struct {
	cfg   Config
	blobs blobStore

	mu      sync.Mutex
	st      *state                   // GUARDED_BY(mu)
	tokens  map[string]*accountToken // GUARDED_BY(mu)
	uploads map[string]*uploadToken  // GUARDED_BY(mu)
	dlAuth  map[string]*dlToken      // GUARDED_BY(mu)

	fmu      sync.Mutex
	faults   map[string]Fault       // GUARDED_BY(fmu)
	consec   map[string]int         // consecutive injected faults per call name; GUARDED_BY(fmu)
	window   map[string][]time.Time // admitted calls in the last minute per rate-limit key; GUARDED_BY(fmu)
	stallEnd time.Time              // requests arriving before it wait until then (Stall); GUARDED_BY(fmu)

	smu   sync.Mutex
	stats Stats // GUARDED_BY(smu)

	lmu     sync.Mutex
	srv     *http.Server // GUARDED_BY(lmu)
	baseURL string       // GUARDED_BY(lmu)
}

// Stats counts the B2 calls a Server has answered.
type Stats struct {
	Calls    map[string]int64 `json:"calls"`   // by B2 call name
	Classes  map[string]int64 `json:"classes"` // "A", "B", "C" transaction classes
	BytesIn  int64            `json:"bytesIn"`
	BytesOut int64            `json:"bytesOut"`
	// Faults counts, by B2 call name, the calls whose answer a Fault
	// changed: dropped connections, injected errors, rate-limit 429s and
	// lost replies (latency alone does not count). They are in Calls too.
	Faults map[string]int64 `json:"faults"`
	// Lost counts, by B2 call name, the calls that were applied and whose
	// reply a Fault's LostRate then lost or, for LostLate, held back. They
	// are in Faults too.
	Lost map[string]int64 `json:"lost"`
}

// New returns a Server. With cfg.Dir set, it loads the state a previous
// Server left in Dir.
func New(cfg Config) (*Server, error) {
	if cfg.KeyID == "" {
		cfg.KeyID = DefaultKeyID
	}
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = 24 * time.Hour
	}
	if cfg.MaxInfoValueBytes <= 0 {
		cfg.MaxInfoValueBytes = 2048
	}
	if cfg.MinPartSize <= 0 {
		cfg.MinPartSize = 5_000_000
	}
	s := &Server{
		cfg:     cfg,
		tokens:  map[string]*accountToken{},
		uploads: map[string]*uploadToken{},
		dlAuth:  map[string]*dlToken{},
		faults:  map[string]Fault{},
		consec:  map[string]int{},
		window:  map[string][]time.Time{},
	}
	s.ResetStats()
	if cfg.Dir == "" {
		s.blobs = &memBlobs{m: map[string][]byte{}}
	} else {
		bdir := filepath.Join(cfg.Dir, "blobs")
		if err := os.MkdirAll(bdir, 0o700); err != nil {
			return nil, err
		}
		s.blobs = dirBlobs{dir: bdir}
	}
	st, err := loadState(cfg.Dir)
	if err != nil {
		return nil, err
	}
	// On B2 the master application key's id is the account id, which
	// b2_authorize_account answers as accountId.
	st.AccountID = cfg.KeyID
	s.st = st
	if err := saveState(cfg.Dir, st); err != nil {
		return nil, err
	}
	return s, nil
}

// Listen starts serving on addr in the background and returns the base URL
// ("http://host:port") to give clients as their API base.
func (s *Server) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	url, err := s.Serve(ln)
	if err != nil {
		ln.Close()
	}
	return url, err
}

// Serve starts serving on ln in the background (for instance a listener of
// an in-memory network, package memnet) and returns the base URL
// ("http://" and ln's address). Close closes ln.
func (s *Server) Serve(ln net.Listener) (string, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.srv != nil {
		return "", errors.New("b2emu: already listening")
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	s.srv = srv
	s.baseURL = "http://" + ln.Addr().String()
	go srv.Serve(ln)
	return s.baseURL, nil
}

// URL returns the base URL of the last Listen, or "" if never listened.
func (s *Server) URL() string {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.baseURL
}

// Close stops the listener and drops open connections. State is kept and
// Listen may be called again, which simulates an outage.
func (s *Server) Close() error {
	s.lmu.Lock()
	srv := s.srv
	s.srv = nil
	s.lmu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// CreateBucket creates a private bucket unless one with that name exists.
func (s *Server) CreateBucket(name string) error {
	if err := validBucketName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.st.Buckets {
		if b.Name == name {
			return nil
		}
	}
	_, err := s.createBucketLocked(name, "allPrivate", nil, nil)
	return err
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.smu.Lock()
	defer s.smu.Unlock()
	return Stats{
		Calls:    maps.Clone(s.stats.Calls),
		Classes:  maps.Clone(s.stats.Classes),
		BytesIn:  s.stats.BytesIn,
		BytesOut: s.stats.BytesOut,
		Faults:   maps.Clone(s.stats.Faults),
		Lost:     maps.Clone(s.stats.Lost),
	}
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.smu.Lock()
	s.stats = Stats{Calls: map[string]int64{}, Classes: map[string]int64{}, Faults: map[string]int64{}, Lost: map[string]int64{}}
	s.smu.Unlock()
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// callClass gives each call its transaction class on B2's price list.
// b2_copy_file and b2_copy_part are Class C, as on Backblaze's transaction
// pricing page (copies are billed like S3 CopyObject/UploadPartCopy).
var callClass = map[string]string{
	"b2_cancel_large_file":           "A",
	"b2_delete_bucket":               "A",
	"b2_delete_file_version":         "A",
	"b2_delete_key":                  "A",
	"b2_finish_large_file":           "A",
	"b2_get_upload_part_url":         "A",
	"b2_get_upload_url":              "A",
	"b2_hide_file":                   "A",
	"b2_start_large_file":            "A",
	"b2_upload_file":                 "A",
	"b2_upload_part":                 "A",
	"b2_download_file_by_name":       "B",
	"b2_download_file_by_id":         "B",
	"b2_get_file_info":               "B",
	"b2_authorize_account":           "C",
	"b2_copy_file":                   "C",
	"b2_copy_part":                   "C",
	"b2_create_bucket":               "C",
	"b2_create_key":                  "C",
	"b2_get_download_authorization":  "C",
	"b2_list_buckets":                "C",
	"b2_list_file_names":             "C",
	"b2_list_file_versions":          "C",
	"b2_list_keys":                   "C",
	"b2_list_parts":                  "C",
	"b2_list_unfinished_large_files": "C",
	"b2_update_bucket":               "C",
}

// call is one B2 request in flight.
type call struct {
	name    string
	version int
	rest    string // path after /b2api/vN/<name>, e.g. "/<bucketId>" on upload URLs
	w       http.ResponseWriter
	r       *http.Request
	modes   testModes
}

// base is the URL clients used to reach us; it is handed back as apiUrl,
// downloadUrl and upload URLs so they work however the server is mounted.
func (c *call) base() string {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.r.Host
}

// apiError is a B2 error answer.
type apiError struct {
	status     int
	code       string
	msg        string
	retryAfter int
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.msg) }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "bad_request", format, args...)
}

type handler func(s *Server, c *call) (any, error)

// handlers maps B2 call names to their implementation. A handler returns a
// value to send as JSON, an error (an *apiError, else 500), or (nil, nil)
// when it wrote the answer itself.
var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"b2_authorize_account":           (*Server).authorize,
		"b2_create_bucket":               (*Server).createBucket,
		"b2_delete_bucket":               (*Server).deleteBucket,
		"b2_list_buckets":                (*Server).listBuckets,
		"b2_update_bucket":               (*Server).updateBucket,
		"b2_get_upload_url":              (*Server).getUploadURL,
		"b2_upload_file":                 (*Server).uploadFile,
		"b2_start_large_file":            (*Server).startLargeFile,
		"b2_get_upload_part_url":         (*Server).getUploadPartURL,
		"b2_upload_part":                 (*Server).uploadPart,
		"b2_list_parts":                  (*Server).listParts,
		"b2_finish_large_file":           (*Server).finishLargeFile,
		"b2_cancel_large_file":           (*Server).cancelLargeFile,
		"b2_list_unfinished_large_files": (*Server).listUnfinished,
		"b2_list_file_names":             (*Server).listFileNames,
		"b2_list_file_versions":          (*Server).listFileVersions,
		"b2_hide_file":                   (*Server).hideFile,
		"b2_delete_file_version":         (*Server).deleteFileVersion,
		"b2_get_file_info":               (*Server).getFileInfo,
		"b2_copy_file":                   (*Server).copyFile,
		"b2_copy_part":                   (*Server).copyPart,
		"b2_download_file_by_id":         (*Server).downloadByID,
		"b2_download_file_by_name":       (*Server).downloadByName,
		"b2_get_download_authorization":  (*Server).getDownloadAuthorization,
		"b2_create_key":                  (*Server).createKey,
		"b2_delete_key":                  (*Server).deleteKey,
		"b2_list_keys":                   (*Server).listKeys,
	}
}

// ServeHTTP answers B2 native API requests under /b2api/v1/ to /b2api/v4/,
// downloads under /file/, and the uncounted /emulator/stats and
// /emulator/reset.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch path {
	case "/emulator/stats":
		data, _ := json.Marshal(s.Stats())
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
		return
	case "/emulator/reset":
		if r.Method != http.MethodPost {
			writeError(w, errf(http.StatusMethodNotAllowed, "method_not_allowed", "use POST"))
			return
		}
		s.ResetStats()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
		return
	}
	s.stall()
	c := &call{w: w, r: r, modes: parseTestModes(r)}
	switch {
	case strings.HasPrefix(path, "/file/"):
		c.name = "b2_download_file_by_name"
	case strings.HasPrefix(path, "/b2api/v"):
		rest := strings.TrimPrefix(path, "/b2api/v")
		ver, rest, ok := strings.Cut(rest, "/")
		n, err := strconv.Atoi(ver)
		if !ok || err != nil || n < 1 || n > 4 {
			writeError(w, errf(http.StatusNotFound, "not_found", "unknown API version %q", ver))
			return
		}
		c.version = n
		c.name, c.rest, _ = strings.Cut(rest, "/")
		if c.rest != "" {
			c.rest = "/" + c.rest
		}
	}
	h, ok := handlers[c.name]
	if !ok || (c.rest != "" && c.name != "b2_upload_file" && c.name != "b2_upload_part") {
		writeError(w, errf(http.StatusNotFound, "not_found", "no such call %s", path))
		return
	}
	start := time.Now()
	cw := &countingWriter{ResponseWriter: w}
	cr := &countingReader{r: r.Body}
	// Count the body through a shallow copy of the request: net/http must
	// still find its own body in r, so that an answer to an upload refused
	// before its body is read (a part over 5 GB, a bad token) goes out at
	// once with the connection closed, instead of after draining up to
	// 256 KB of body first.
	c.r = r.WithContext(r.Context())
	c.r.Body = cr
	c.w = cw
	var faulted, lostReply bool
	defer func() {
		s.smu.Lock()
		s.stats.Calls[c.name]++
		s.stats.Classes[callClass[c.name]]++
		s.stats.BytesIn += cr.n
		s.stats.BytesOut += cw.n
		if faulted {
			s.stats.Faults[c.name]++
		}
		if lostReply {
			s.stats.Lost[c.name]++
		}
		s.smu.Unlock()
		note := ""
		if lostReply {
			note = " reply lost"
		}
		s.logf("b2emu: %s %s %s -> %d%s (%d in, %d out, %v)", r.Method, c.name, r.URL.Path, cw.status, note, cr.n, cw.n, time.Since(start).Round(time.Microsecond))
	}()
	drop, ferr, lost := s.injectFault(r.Context(), c.name)
	switch {
	case drop:
		faulted = true
		dropConn(w, cw)
	case ferr != nil:
		faulted = true
		writeError(cw, ferr)
	case lost != nil:
		// Apply the call into a buffer, then lose a successful reply.
		buf := newReplyBuffer()
		c.w = buf
		s.apply(h, c)
		if buf.code() != http.StatusOK {
			s.passed(c.name)
			buf.deliver(cw)
			return
		}
		faulted, lostReply = true, true
		loseReply(w, cw, r, buf, lost)
	default:
		s.apply(h, c)
	}
}

// apply runs the handler of c and writes its answer to c.w.
func (s *Server) apply(h handler, c *call) {
	res, err := h(s, c)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = errf(http.StatusInternalServerError, "internal_error", "%v", err)
		}
		writeError(c.w, ae)
		return
	}
	if res != nil {
		writeJSON(c.w, http.StatusOK, res)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data, _ = json.Marshal(map[string]any{"status": 500, "code": "internal_error", "message": err.Error()})
		status = 500
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	w.Write(data)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	// Error bodies are the same in every API version.
	writeJSON(w, e.status, pick(kindError, 1, map[string]any{"status": e.status, "code": e.code, "message": e.msg}))
}

type countingWriter struct {
	http.ResponseWriter
	n      int64
	status int
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

func (r *countingReader) Close() error { return r.r.Close() }

// decode reads a JSON request body into v. An empty body counts as {}.
func (c *call) decode(v any) error {
	data, err := io.ReadAll(io.LimitReader(c.r.Body, 16<<20))
	if err != nil {
		return badRequest("reading request: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return badRequest("invalid JSON in request: %v", err)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// nextLocked hands out a sequence number and an upload timestamp that never
// goes backwards. Uploads in the same millisecond share its stamp, as on
// B2; the sequence number orders them. A stamp never runs ahead of the
// clock, so that "uploaded before now" holds for every file listed.
// LOCKS_REQUIRED(mu)
func (s *Server) nextLocked() (seq, stamp int64) {
	s.st.Seq++
	stamp = time.Now().UnixMilli()
	if stamp < s.st.LastStamp {
		stamp = s.st.LastStamp // the clock stepped back
	}
	s.st.LastStamp = stamp
	return s.st.Seq, stamp
}

// saveLocked persists the state after a mutation. LOCKS_REQUIRED(mu)
func (s *Server) saveLocked() error {
	if err := saveState(s.cfg.Dir, s.st); err != nil {
		return errf(http.StatusInternalServerError, "internal_error", "saving state: %v", err)
	}
	return nil
}
