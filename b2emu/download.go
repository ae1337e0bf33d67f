package b2emu

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

func (s *Server) downloadByName(c *call) (any, error) {
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodHead {
		return nil, errf(http.StatusMethodNotAllowed, "method_not_allowed", "downloads use GET or HEAD")
	}
	// Decode from the escaped path: "+" is a space and "%2B" a plus, which
	// r.URL.Path would no longer tell apart.
	rest := strings.TrimPrefix(c.r.URL.EscapedPath(), "/file/")
	ebucket, ename, ok := strings.Cut(rest, "/")
	if !ok || ename == "" {
		return nil, badRequest("download path must be /file/<bucket>/<name>")
	}
	bname, err1 := url.PathUnescape(ebucket)
	name, err2 := url.QueryUnescape(ename)
	if err1 != nil || err2 != nil {
		return nil, badRequest("bad encoding in download path")
	}
	s.mu.Lock()
	var b *bucket
	for _, bb := range s.st.Buckets {
		if bb.Name == bname {
			b = bb
		}
	}
	if b == nil {
		s.mu.Unlock()
		return nil, errf(http.StatusNotFound, "not_found", "Bucket %s does not exist", bname)
	}
	if err := s.checkDownloadLocked(c, b, name); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	f := s.currentLocked(b.ID, name)
	if f == nil || f.Action != "upload" {
		s.mu.Unlock()
		return nil, errf(http.StatusNotFound, "not_found", "File with such name does not exist: %s", name)
	}
	fc := *f
	s.mu.Unlock()
	return s.serveFile(c, &fc)
}

func (s *Server) downloadByID(c *call) (any, error) {
	var id string
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		id = c.r.URL.Query().Get("fileId")
	case http.MethodPost:
		var req struct {
			FileID string `json:"fileId"`
		}
		if err := c.decode(&req); err != nil {
			return nil, err
		}
		id = req.FileID
	default:
		return nil, errf(http.StatusMethodNotAllowed, "method_not_allowed", "use GET, HEAD or POST")
	}
	if id == "" {
		return nil, badRequest("fileId is required")
	}
	s.mu.Lock()
	f, ok := s.st.Files[id]
	var b *bucket
	if ok {
		b = s.st.Buckets[f.BucketID]
	}
	if !ok || b == nil || f.Action != "upload" {
		// Authorize first, so an unknown token is not told what exists.
		err := s.checkAccountLocked(c, c.r.Header.Get("Authorization"))
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return nil, errf(http.StatusNotFound, "not_found", "File not present: %s", id)
	}
	if err := s.checkDownloadLocked(c, b, f.Name); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	fc := *f
	s.mu.Unlock()
	return s.serveFile(c, &fc)
}

// parseRange interprets a Range header against size. It returns the slice
// to send and whether the answer is partial (206). An unsatisfiable range
// (start at or past the end, which includes every range on an empty file)
// is a 416, which blazer's reader takes as the end of the data.
func parseRange(h string, size int64) (off, n int64, partial bool, err error) {
	if h == "" {
		return 0, size, false, nil
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, false, badRequest("unsupported range %q", h)
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false, badRequest("invalid range %q", h)
	}
	unsat := &apiError{status: http.StatusRequestedRangeNotSatisfiable, code: "range_not_satisfiable",
		msg: fmt.Sprintf("range %q is not satisfiable for a file of %d bytes", h, size)}
	var start, end int64
	if a == "" { // suffix: last b bytes
		k, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || k < 0 {
			return 0, 0, false, badRequest("invalid range %q", h)
		}
		if k == 0 || size == 0 {
			return 0, 0, false, unsat
		}
		start, end = max(size-k, 0), size-1
	} else {
		var perr error
		if start, perr = strconv.ParseInt(a, 10, 64); perr != nil || start < 0 {
			return 0, 0, false, badRequest("invalid range %q", h)
		}
		end = size - 1
		if b != "" {
			if end, perr = strconv.ParseInt(b, 10, 64); perr != nil || end < start {
				return 0, 0, false, badRequest("invalid range %q", h)
			}
		}
		if start >= size {
			return 0, 0, false, unsat
		}
		end = min(end, size-1)
	}
	if start == 0 && end == size-1 {
		return 0, size, false, nil
	}
	return start, end - start + 1, true, nil
}

// serveFile writes a download answer for f (a copy taken under mu).
func (s *Server) serveFile(c *call, f *file) (any, error) {
	if c.modes.capExceeded {
		return nil, errf(http.StatusForbidden, "download_cap_exceeded", "Cannot download files, download cap exceeded (test mode)")
	}
	off, n, partial, err := parseRange(c.r.Header.Get("Range"), f.Size)
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.status == http.StatusRequestedRangeNotSatisfiable {
			c.w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", f.Size))
		}
		return nil, err
	}
	var r blobReader
	if n > 0 {
		if r, err = s.blobs.open(f.ID); err != nil {
			// Deleted since we looked it up.
			return nil, errf(http.StatusNotFound, "not_found", "File not present: %s", f.Name)
		}
		defer r.Close()
	}
	h := c.w.Header()
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	h.Set("Content-Type", f.ContentType)
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Bz-File-Id", f.ID)
	h.Set("X-Bz-File-Name", escape(f.Name))
	h.Set("X-Bz-Content-Sha1", f.SHA1)
	h.Set("X-Bz-Upload-Timestamp", strconv.FormatInt(f.Stamp, 10))
	for k, v := range f.Info {
		if std, ok := b2InfoKeys[k]; ok {
			h.Set(std, v)
			continue
		}
		h.Set("X-Bz-Info-"+k, escape(v))
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, f.Size))
	}
	c.w.WriteHeader(status)
	if c.r.Method == http.MethodHead || n == 0 {
		return nil, nil
	}
	io.Copy(c.w, io.NewSectionReader(r, off, n))
	return nil, nil
}
