package b2emu

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	maxSimpleUpload = 5 << 30 // 5 GiB
	maxPartSize     = 5_000_000_000
	maxParts        = 10000
	maxInfoBudget   = 7000 // name + info bytes
	hexAtEnd        = "hex_digits_at_end"
	doNotVerify     = "do_not_verify"
)

// escape encodes a name or info value as B2 (and blazer) do in headers.
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
}

// validFileName applies B2's name rules: 1 to 1024 bytes of UTF-8 with no
// control characters below 32 and no DEL.
func validFileName(name string) error {
	if name == "" {
		return badRequest("file name must not be empty")
	}
	if len(name) > 1024 {
		return badRequest("file name is %d bytes, more than 1024", len(name))
	}
	if !utf8.ValidString(name) {
		return badRequest("file name is not valid UTF-8")
	}
	for _, r := range name {
		if r < 32 || r == 127 {
			return badRequest("file name contains invalid character %U", r)
		}
	}
	return nil
}

// b2InfoKeys are the reserved keys B2 accepts in file info.
var b2InfoKeys = map[string]string{
	"b2-content-disposition": "Content-Disposition",
	"b2-content-language":    "Content-Language",
	"b2-expires":             "Expires",
	"b2-cache-control":       "Cache-Control",
	"b2-content-encoding":    "Content-Encoding",
}

// validateFileInfo lower-cases keys and checks them and the name+info byte
// budget.
func validateFileInfo(name string, in map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	budget := len(name)
	for k, v := range in {
		k = strings.ToLower(k)
		if len(k) < 1 || len(k) > 50 {
			return nil, badRequest("file info key %q must be 1 to 50 bytes", k)
		}
		for _, r := range k {
			if !infoKeyChar(r) {
				return nil, badRequest("file info key %q contains invalid character %q", k, r)
			}
		}
		if strings.HasPrefix(k, "b2-") {
			if _, ok := b2InfoKeys[k]; !ok {
				return nil, badRequest("file info key %q uses the reserved prefix b2-", k)
			}
		}
		if !utf8.ValidString(v) {
			return nil, badRequest("file info value for %q is not valid UTF-8", k)
		}
		budget += len(k) + len(v)
		out[k] = v
	}
	if budget > maxInfoBudget {
		return nil, badRequest("file name and file info total %d bytes, more than %d", budget, maxInfoBudget)
	}
	return out, nil
}

func contentType(ct, name string) (string, error) {
	switch ct {
	case "":
		return "application/octet-stream", nil
	case "b2/x-auto":
		// B2 picks a bare media type by extension ("text/plain" for
		// .txt), where Go's table adds "; charset=utf-8" to text types.
		if t := mime.TypeByExtension(path.Ext(name)); t != "" {
			if mt, _, err := mime.ParseMediaType(t); err == nil {
				return mt, nil
			}
		}
		return "application/octet-stream", nil
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return "", badRequest("invalid content type %q", ct)
	}
	return ct, nil
}

// fileAllLocked returns every file field the emulator can fill, with
// B2's values for settings it does not emulate (no MD5, no encryption, no
// Object Lock retention or legal hold, no replication), as B2 sends them
// for a file without them. pick cuts the map down to one kind and version.
// Hide markers and folders have a null contentSha1, folders a null fileId
// and contentType, as the b2_get_file_info page says. LOCKS_REQUIRED(mu)
func (s *Server) fileAllLocked(f *file) map[string]any {
	info := make(map[string]string, len(f.Info))
	for k, v := range f.Info {
		info[k] = v
	}
	var sha, ct, id any = f.SHA1, f.ContentType, f.ID
	switch f.Action {
	case "hide":
		sha = nil
	case "folder":
		sha, ct, id = nil, nil, nil
	}
	return map[string]any{
		"accountId":            s.st.AccountID,
		"action":               f.Action,
		"bucketId":             f.BucketID,
		"contentLength":        f.Size,
		"size":                 f.Size,
		"contentMd5":           nil,
		"contentSha1":          sha,
		"contentType":          ct,
		"fileId":               id,
		"fileInfo":             info,
		"fileName":             f.Name,
		"uploadTimestamp":      f.Stamp,
		"replicationStatus":    nil,
		"serverSideEncryption": map[string]any{"algorithm": nil, "mode": nil},
		"fileRetention": map[string]any{"isClientAuthorizedToRead": true,
			"value": map[string]any{"mode": nil, "retainUntilTimestamp": nil}},
		"legalHold": map[string]any{"isClientAuthorizedToRead": true, "value": nil},
	}
}

// fileJSONLocked renders f as kind k of API version v. LOCKS_REQUIRED(mu)
func (s *Server) fileJSONLocked(f *file, k kind, v int) map[string]any {
	return pick(k, v, s.fileAllLocked(f))
}

// folderJSONLocked renders a folder entry of a delimiter listing.
// LOCKS_REQUIRED(mu)
func (s *Server) folderJSONLocked(bucketID, name string, v int) map[string]any {
	return s.fileJSONLocked(&file{BucketID: bucketID, Name: name, Action: "folder"}, kindListedFile, v)
}

func (s *Server) newFileIDLocked(bucketID string) (string, int64, int64) {
	seq, stamp := s.nextLocked()
	return fmt.Sprintf("4_z%s_f1%015x", bucketID, seq), seq, stamp
}

func (s *Server) getUploadURL(c *call) (any, error) {
	var req struct {
		BucketID string `json:"bucketId"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if _, err := s.bucketLocked(req.BucketID, "bad_bucket_id"); err != nil {
		return nil, err
	}
	return pick(kindUploadURL, c.version, map[string]any{
		"bucketId":           req.BucketID,
		"uploadUrl":          fmt.Sprintf("%s/b2api/v%d/b2_upload_file/%s", c.base(), c.version, req.BucketID),
		"authorizationToken": s.newUploadTokenLocked(req.BucketID, ""),
	}), nil
}

func (s *Server) getUploadPartURL(c *call) (any, error) {
	var req struct {
		FileID string `json:"fileId"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	f, err := s.unfinishedLocked(req.FileID)
	if err != nil {
		return nil, err
	}
	return pick(kindUploadPartURL, c.version, map[string]any{
		"fileId":             req.FileID,
		"uploadUrl":          fmt.Sprintf("%s/b2api/v%d/b2_upload_part/%s", c.base(), c.version, req.FileID),
		"authorizationToken": s.newUploadTokenLocked(f.BucketID, req.FileID),
	}), nil
}

// beginUpload starts b2_upload_file (forPart false) or b2_upload_part
// (forPart true): it checks the method, takes the upload token as
// acquireUpload does, checks the token was issued for this call and applies
// the upload test modes. On nil error the caller must call release when the
// upload ends; on error the token is already released.
func (s *Server) beginUpload(c *call, forPart bool) (tok *uploadToken, release func(), err error) {
	if c.r.Method != http.MethodPost {
		return nil, nil, errf(http.StatusMethodNotAllowed, "method_not_allowed", "uploads use POST")
	}
	tok, release, err = s.acquireUpload(c)
	if err != nil {
		return nil, nil, err
	}
	if isPart := tok.fileID != ""; isPart != forPart {
		release()
		other := "b2_upload_file"
		if isPart {
			other = "b2_upload_part"
		}
		return nil, nil, errf(http.StatusUnauthorized, "bad_auth_token", "token is for %s", other)
	}
	if err := s.uploadChecks(c); err != nil {
		release()
		return nil, nil, err
	}
	return tok, release, nil
}

// uploadChecks applies the upload test modes.
func (s *Server) uploadChecks(c *call) error {
	if c.modes.capExceeded {
		return errf(http.StatusForbidden, "storage_cap_exceeded", "Cannot upload files, storage cap exceeded (test mode)")
	}
	if c.modes.failSomeUploads && s.testFailUpload(c.name) {
		return errf(http.StatusServiceUnavailable, "service_unavailable", "upload failed (test mode)")
	}
	return nil
}

// receiveBody streams an upload body into a new blob at key, checking the
// X-Bz-Content-Sha1 header. It returns the stored size and SHA1 as B2 lists
// it (40 hex, or "unverified:<hex>" for do_not_verify).
func (s *Server) receiveBody(c *call, key string, max int64) (int64, string, error) {
	cl := c.r.ContentLength
	if cl < 0 || c.r.Header.Get("Content-Length") == "" {
		return 0, "", badRequest("Content-Length is required")
	}
	shaHdr := strings.ToLower(strings.TrimSpace(c.r.Header.Get("X-Bz-Content-Sha1")))
	size := cl
	switch {
	case shaHdr == "":
		return 0, "", badRequest("X-Bz-Content-Sha1 is required")
	case shaHdr == hexAtEnd:
		if cl < 40 {
			return 0, "", badRequest("Content-Length %d too short for %s", cl, hexAtEnd)
		}
		size = cl - 40
	case shaHdr == doNotVerify:
	case len(shaHdr) != 40:
		return 0, "", badRequest("sha1 is wrong length")
	default:
		if _, err := hex.DecodeString(shaHdr); err != nil {
			return 0, "", badRequest("sha1 is not hex")
		}
	}
	if size > max {
		return 0, "", badRequest("content length %d is more than the maximum %d", size, max)
	}
	w, err := s.blobs.create(key)
	if err != nil {
		return 0, "", err
	}
	h := sha1.New()
	if _, err := io.CopyN(io.MultiWriter(w, h), c.r.Body, size); err != nil {
		w.abort()
		return 0, "", errf(http.StatusBadRequest, "bad_request", "reading body: %v", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	want := shaHdr
	if shaHdr == hexAtEnd {
		var tail [40]byte
		if _, err := io.ReadFull(c.r.Body, tail[:]); err != nil {
			w.abort()
			return 0, "", badRequest("reading trailing sha1: %v", err)
		}
		want = strings.ToLower(string(tail[:]))
	}
	stored := sum
	if shaHdr == doNotVerify {
		stored = "unverified:" + sum
	} else if want != sum {
		w.abort()
		return 0, "", badRequest("Checksum did not match data received")
	}
	if err := w.Close(); err != nil {
		return 0, "", err
	}
	return size, stored, nil
}

// headerInfo decodes the X-Bz-Info-* headers: keys lower-cased, values
// form-decoded from the raw header.
func headerInfo(h http.Header) (map[string]string, error) {
	info := map[string]string{}
	for k, vs := range h {
		if len(k) <= len("X-Bz-Info-") || !strings.EqualFold(k[:len("X-Bz-Info-")], "X-Bz-Info-") || len(vs) == 0 {
			continue
		}
		v, err := url.QueryUnescape(vs[0])
		if err != nil {
			return nil, badRequest("bad encoding in header %s", k)
		}
		info[strings.ToLower(k[len("X-Bz-Info-"):])] = v
	}
	return info, nil
}

func (s *Server) uploadFile(c *call) (any, error) {
	tok, release, err := s.beginUpload(c, false)
	if err != nil {
		return nil, err
	}
	defer release()
	name, err := url.QueryUnescape(c.r.Header.Get("X-Bz-File-Name"))
	if err != nil {
		return nil, badRequest("bad encoding in X-Bz-File-Name")
	}
	if err := validFileName(name); err != nil {
		return nil, err
	}
	ct, err := contentType(c.r.Header.Get("Content-Type"), name)
	if err != nil {
		return nil, err
	}
	info, err := headerInfo(c.r.Header)
	if err != nil {
		return nil, err
	}
	if info, err = validateFileInfo(name, info); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if _, err := s.bucketLocked(tok.bucketID, "bad_bucket_id"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	id, _, _ := s.newFileIDLocked(tok.bucketID)
	s.mu.Unlock()

	size, sum, err := s.receiveBody(c, id, maxSimpleUpload)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitUploadLocked(&file{ID: id, BucketID: tok.bucketID, Name: name, Size: size, SHA1: sum,
		ContentType: ct, Info: info}, c.version)
}

func (s *Server) startLargeFile(c *call) (any, error) {
	var req struct {
		BucketID    string            `json:"bucketId"`
		FileName    string            `json:"fileName"`
		ContentType string            `json:"contentType"`
		FileInfo    map[string]string `json:"fileInfo"`
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if err := validFileName(req.FileName); err != nil {
		return nil, err
	}
	ct, err := contentType(req.ContentType, req.FileName)
	if err != nil {
		return nil, err
	}
	info, err := validateFileInfo(req.FileName, req.FileInfo)
	if err != nil {
		return nil, err
	}
	if err := s.lockAuthed(c); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if _, err := s.bucketLocked(req.BucketID, "bad_bucket_id"); err != nil {
		return nil, err
	}
	id, seq, stamp := s.newFileIDLocked(req.BucketID)
	return s.addFileLocked(&file{ID: id, BucketID: req.BucketID, Name: req.FileName, Action: "start", SHA1: "none",
		ContentType: ct, Info: info, Stamp: stamp, Seq: seq, Parts: map[int]*part{}}, kindStartedFile, c.version)
}

// addFileLocked records f, a new version with ID, Seq and Stamp set (and,
// for an upload, its blob stored under f.ID), persists the state and
// returns f rendered as kind k of API version v. If saving fails, f and
// its data are dropped again (removeLocked) and the error is returned.
// LOCKS_REQUIRED(mu)
func (s *Server) addFileLocked(f *file, k kind, v int) (map[string]any, error) {
	s.st.Files[f.ID] = f
	if err := s.saveLocked(); err != nil {
		s.removeLocked(f)
		return nil, err
	}
	return s.fileJSONLocked(f, k, v), nil
}

// commitUploadLocked records f as a finished upload whose blob is already
// stored under f.ID: it sets Action, then Seq and Stamp from nextLocked, so
// versions are ordered by commit and the last upload to finish is current.
// If f's bucket no longer exists, or saving fails, the blob is removed and
// the error returned. The answer is f as a file object of API version v.
// LOCKS_REQUIRED(mu)
func (s *Server) commitUploadLocked(f *file, v int) (map[string]any, error) {
	if _, err := s.bucketLocked(f.BucketID, "bad_bucket_id"); err != nil {
		s.blobs.remove(f.ID)
		return nil, err
	}
	f.Action = "upload"
	f.Seq, f.Stamp = s.nextLocked()
	return s.addFileLocked(f, kindFile, v)
}

// unfinishedLocked finds an unfinished large file. LOCKS_REQUIRED(mu)
func (s *Server) unfinishedLocked(id string) (*file, error) {
	f, ok := s.st.Files[id]
	if !ok || f.Action != "start" {
		return nil, badRequest("no unfinished large file with id %s", id)
	}
	return f, nil
}

// idleUnfinishedLocked finds an unfinished large file that no
// b2_finish_large_file is working on. LOCKS_REQUIRED(mu)
func (s *Server) idleUnfinishedLocked(id string) (*file, error) {
	f, err := s.unfinishedLocked(id)
	if err == nil && f.finishing {
		return nil, badRequest("large file %s is being finished", f.ID)
	}
	return f, err
}

// newPartKeyLocked returns a fresh blob key for part n of large file
// fileID, so a re-upload of the part never overwrites the stored one.
// LOCKS_REQUIRED(mu)
func (s *Server) newPartKeyLocked(fileID string, n int) string {
	seq, _ := s.nextLocked()
	return fmt.Sprintf("%s.p%d.%d", fileID, n, seq)
}

// commitPartLocked records p, a part whose blob is already stored under
// p.Blob, in unfinished large file fileID, stamped now. An earlier upload of
// the same part number is replaced and its blob removed. If the file is gone
// or being finished, or saving fails, p.Blob is removed and the error
// returned. The answer is p as a part object of API version v.
// LOCKS_REQUIRED(mu)
func (s *Server) commitPartLocked(fileID string, p *part, v int) (map[string]any, error) {
	f, err := s.idleUnfinishedLocked(fileID)
	if err != nil {
		s.blobs.remove(p.Blob)
		return nil, err
	}
	_, p.Stamp = s.nextLocked()
	old := f.Parts[p.Number]
	f.Parts[p.Number] = p
	if err := s.saveLocked(); err != nil {
		f.Parts[p.Number] = old
		s.blobs.remove(p.Blob)
		return nil, err
	}
	if old != nil {
		s.blobs.remove(old.Blob)
	}
	return partJSON(f.ID, p, v), nil
}

func (s *Server) uploadPart(c *call) (any, error) {
	tok, release, err := s.beginUpload(c, true)
	if err != nil {
		return nil, err
	}
	defer release()
	n, err := strconv.Atoi(c.r.Header.Get("X-Bz-Part-Number"))
	if err != nil || n < 1 || n > maxParts {
		return nil, badRequest("X-Bz-Part-Number must be 1 to %d", maxParts)
	}
	s.mu.Lock()
	f, err := s.unfinishedLocked(tok.fileID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	key := s.newPartKeyLocked(f.ID, n)
	s.mu.Unlock()

	size, sum, err := s.receiveBody(c, key, maxPartSize)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitPartLocked(tok.fileID, &part{Number: n, Size: size, SHA1: sum, Blob: key}, c.version)
}

// partJSON renders part p of large file fileID as a part object of API
// version v, unencrypted and without MD5 as B2 sends such parts.
func partJSON(fileID string, p *part, v int) map[string]any {
	return pick(kindPart, v, map[string]any{
		"fileId":               fileID,
		"partNumber":           p.Number,
		"contentLength":        p.Size,
		"contentSha1":          p.SHA1,
		"contentMd5":           nil,
		"serverSideEncryption": map[string]any{"algorithm": nil, "mode": nil},
		"uploadTimestamp":      p.Stamp,
	})
}

func (s *Server) listParts(c *call) (any, error) {
	var req struct {
		FileID          string `json:"fileId"`
		StartPartNumber int    `json:"startPartNumber"`
		MaxPartCount    int    `json:"maxPartCount"`
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.StartPartNumber <= 0 {
		req.StartPartNumber = 1
	}
	if req.MaxPartCount <= 0 {
		req.MaxPartCount = 100
	}
	if req.MaxPartCount > 1000 {
		return nil, badRequest("maxPartCount must be at most 1000")
	}
	if err := s.lockAuthed(c); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	f, err := s.unfinishedLocked(req.FileID)
	if err != nil {
		return nil, err
	}
	nums := []int{}
	for n := range f.Parts {
		if n >= req.StartPartNumber {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	parts, rest := cutPage(nums, req.MaxPartCount, func(n int) map[string]any { return partJSON(f.ID, f.Parts[n], c.version) })
	var next any
	if len(rest) > 0 {
		next = rest[0]
	}
	return map[string]any{"parts": parts, "nextPartNumber": next}, nil
}

func (s *Server) finishLargeFile(c *call) (any, error) {
	var req struct {
		FileID        string   `json:"fileId"`
		PartSha1Array []string `json:"partSha1Array"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	f, err := s.unfinishedLocked(req.FileID)
	if err == nil && f.finishing {
		err = badRequest("large file %s is already being finished", f.ID)
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if len(req.PartSha1Array) == 0 {
		s.mu.Unlock()
		return nil, errf(http.StatusBadRequest, "missing_part", "partSha1Array is empty")
	}
	if len(req.PartSha1Array) < 2 {
		// B2's "Large Files" page: a large file has at least two parts.
		s.mu.Unlock()
		return nil, badRequest("large files must have at least 2 parts")
	}
	var keys []string
	var size int64
	last := len(req.PartSha1Array)
	for n := range f.Parts {
		if n > last {
			s.mu.Unlock()
			return nil, badRequest("part %d was uploaded but is not in partSha1Array", n)
		}
	}
	for i, sum := range req.PartSha1Array {
		p, ok := f.Parts[i+1]
		if !ok {
			s.mu.Unlock()
			return nil, errf(http.StatusBadRequest, "missing_part", "Part number %d has not been uploaded", i+1)
		}
		if !strings.EqualFold(sum, p.SHA1) && !strings.EqualFold("unverified:"+sum, p.SHA1) {
			s.mu.Unlock()
			return nil, errf(http.StatusBadRequest, "part_sha1_mismatch", "Part number %d has wrong SHA1 %s", i+1, sum)
		}
		if i+1 < last && p.Size < s.cfg.MinPartSize {
			s.mu.Unlock()
			return nil, badRequest("Part number %d is smaller than the minimum part size %d", i+1, s.cfg.MinPartSize)
		}
		keys = append(keys, p.Blob)
		size += p.Size
	}
	f.finishing = true
	s.mu.Unlock()

	// Concatenate outside the lock; finishing keeps parts and cancel away.
	err = s.concat(f.ID, keys)
	s.mu.Lock()
	defer s.mu.Unlock()
	f.finishing = false
	if err != nil {
		return nil, err
	}
	seq, stamp := s.nextLocked()
	f.Action, f.Size, f.Stamp, f.Seq, f.Parts = "upload", size, stamp, seq, nil
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	for _, k := range keys {
		s.blobs.remove(k)
	}
	return s.fileJSONLocked(f, kindFile, c.version), nil
}

func (s *Server) concat(dst string, keys []string) error {
	w, err := s.blobs.create(dst)
	if err != nil {
		return err
	}
	for _, k := range keys {
		r, err := s.blobs.open(k)
		if err != nil {
			w.abort()
			return err
		}
		_, err = io.Copy(w, io.NewSectionReader(r, 0, 1<<62))
		r.Close()
		if err != nil {
			w.abort()
			return err
		}
	}
	return w.Close()
}

// removeLocked deletes a version and its data. LOCKS_REQUIRED(mu)
func (s *Server) removeLocked(f *file) {
	delete(s.st.Files, f.ID)
	if f.Action == "upload" {
		s.blobs.remove(f.ID)
	}
	for _, p := range f.Parts {
		s.blobs.remove(p.Blob)
	}
}

func (s *Server) cancelLargeFile(c *call) (any, error) {
	var req struct {
		FileID string `json:"fileId"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	f, err := s.idleUnfinishedLocked(req.FileID)
	if err != nil {
		return nil, err
	}
	s.removeLocked(f)
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	return pick(kindCancelledFile, c.version, s.fileAllLocked(f)), nil
}

// currentLocked returns the newest upload or hide version of name, or nil.
// LOCKS_REQUIRED(mu)
func (s *Server) currentLocked(bucketID, name string) *file {
	var cur *file
	for _, f := range s.st.Files {
		if f.BucketID == bucketID && f.Name == name && f.Action != "start" && (cur == nil || f.Seq > cur.Seq) {
			cur = f
		}
	}
	return cur
}

func (s *Server) hideFile(c *call) (any, error) {
	var req struct {
		BucketID string `json:"bucketId"`
		FileName string `json:"fileName"`
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if err := validFileName(req.FileName); err != nil {
		return nil, err
	}
	if err := s.lockAuthed(c); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if _, err := s.bucketLocked(req.BucketID, "bad_bucket_id"); err != nil {
		return nil, err
	}
	cur := s.currentLocked(req.BucketID, req.FileName)
	if cur == nil {
		return nil, errf(http.StatusBadRequest, "no_such_file", "File not present: %s", req.FileName)
	}
	if cur.Action == "hide" {
		return nil, errf(http.StatusBadRequest, "already_hidden", "File already hidden: %s", req.FileName)
	}
	id, seq, stamp := s.newFileIDLocked(req.BucketID)
	return s.addFileLocked(&file{ID: id, BucketID: req.BucketID, Name: req.FileName, Action: "hide", SHA1: "none",
		ContentType: "application/x-bz-hide-marker", Info: map[string]string{}, Stamp: stamp, Seq: seq}, kindListedFile, c.version)
}

func (s *Server) deleteFileVersion(c *call) (any, error) {
	var req struct {
		FileName string `json:"fileName"`
		FileID   string `json:"fileId"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	f, ok := s.st.Files[req.FileID]
	if !ok || f.Name != req.FileName {
		return nil, errf(http.StatusBadRequest, "file_not_present", "File not present: %s %s", req.FileName, req.FileID)
	}
	if f.finishing {
		return nil, badRequest("large file %s is being finished", f.ID)
	}
	s.removeLocked(f)
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	return pick(kindDeletedFile, c.version, s.fileAllLocked(f)), nil
}

func (s *Server) getFileInfo(c *call) (any, error) {
	var req struct {
		FileID string `json:"fileId"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	f, ok := s.st.Files[req.FileID]
	if !ok {
		return nil, errf(http.StatusNotFound, "not_found", "File not present: %s", req.FileID)
	}
	return s.fileJSONLocked(f, kindFile, c.version), nil
}

// parseCopyRange parses a copy "range" of the form bytes=a-b within size.
func parseCopyRange(rng string, size int64) (off, n int64, err error) {
	if rng == "" {
		return 0, size, nil
	}
	spec, ok := strings.CutPrefix(rng, "bytes=")
	a, b, ok2 := strings.Cut(spec, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || start < 0 || end < start || end >= size {
		return 0, 0, badRequest("invalid range %q for a file of %d bytes", rng, size)
	}
	return start, end - start + 1, nil
}

// copyBlob copies n bytes at off of blob src into a new blob dst and
// returns the SHA1 of the copy.
func (s *Server) copyBlob(dst, src string, off, n int64) (string, error) {
	r, err := s.blobs.open(src)
	if err != nil {
		return "", err
	}
	defer r.Close()
	w, err := s.blobs.create(dst)
	if err != nil {
		return "", err
	}
	h := sha1.New()
	if _, err := io.Copy(io.MultiWriter(w, h), io.NewSectionReader(r, off, n)); err != nil {
		w.abort()
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return sumHex(h), nil
}

func sumHex(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// copySourceLocked finds the finished upload a copy reads from.
// LOCKS_REQUIRED(mu)
func (s *Server) copySourceLocked(id string) (*file, error) {
	f, ok := s.st.Files[id]
	if !ok || f.Action != "upload" {
		return nil, badRequest("source file %s does not exist", id)
	}
	return f, nil
}

func (s *Server) copyFile(c *call) (any, error) {
	var req struct {
		SourceFileID        string            `json:"sourceFileId"`
		DestinationBucketID string            `json:"destinationBucketId"`
		FileName            string            `json:"fileName"`
		Range               string            `json:"range"`
		MetadataDirective   string            `json:"metadataDirective"`
		ContentType         string            `json:"contentType"`
		FileInfo            map[string]string `json:"fileInfo"`
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if err := validFileName(req.FileName); err != nil {
		return nil, err
	}
	if req.MetadataDirective == "" {
		req.MetadataDirective = "COPY"
	}
	switch req.MetadataDirective {
	case "COPY":
		if req.ContentType != "" || req.FileInfo != nil {
			return nil, badRequest("contentType and fileInfo must not be set with metadataDirective COPY")
		}
	case "REPLACE":
		if req.ContentType == "" {
			return nil, badRequest("contentType is required with metadataDirective REPLACE")
		}
	default:
		return nil, badRequest("metadataDirective must be COPY or REPLACE")
	}
	if err := s.lockAuthed(c); err != nil {
		return nil, err
	}
	src, err := s.copySourceLocked(req.SourceFileID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	dstBucket := req.DestinationBucketID
	if dstBucket == "" {
		dstBucket = src.BucketID
	}
	if _, err := s.bucketLocked(dstBucket, "bad_bucket_id"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	off, n, err := parseCopyRange(req.Range, src.Size)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if n > maxSimpleUpload {
		s.mu.Unlock()
		return nil, badRequest("copy of %d bytes is more than the maximum %d", n, maxSimpleUpload)
	}
	ct, info := src.ContentType, src.Info
	if req.MetadataDirective == "REPLACE" {
		if ct, err = contentType(req.ContentType, req.FileName); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		info = req.FileInfo
	}
	if info, err = validateFileInfo(req.FileName, info); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	id, _, _ := s.newFileIDLocked(dstBucket)
	srcID := src.ID
	s.mu.Unlock()

	// Blobs are immutable until removed; a source deleted meanwhile makes
	// the copy fail to open it.
	sum, err := s.copyBlob(id, srcID, off, n)
	if err != nil {
		return nil, badRequest("source file %s does not exist", srcID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitUploadLocked(&file{ID: id, BucketID: dstBucket, Name: req.FileName, Size: n, SHA1: sum,
		ContentType: ct, Info: info}, c.version)
}

func (s *Server) copyPart(c *call) (any, error) {
	var req struct {
		SourceFileID string `json:"sourceFileId"`
		LargeFileID  string `json:"largeFileId"`
		PartNumber   int    `json:"partNumber"`
		Range        string `json:"range"`
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.PartNumber < 1 || req.PartNumber > maxParts {
		return nil, badRequest("partNumber must be 1 to %d", maxParts)
	}
	if err := s.lockAuthed(c); err != nil {
		return nil, err
	}
	src, err := s.copySourceLocked(req.SourceFileID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if _, err := s.unfinishedLocked(req.LargeFileID); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	off, n, err := parseCopyRange(req.Range, src.Size)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	key := s.newPartKeyLocked(req.LargeFileID, req.PartNumber)
	srcID := src.ID
	s.mu.Unlock()
	sum, err := s.copyBlob(key, srcID, off, n)
	if err != nil {
		return nil, badRequest("source file %s does not exist", srcID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitPartLocked(req.LargeFileID, &part{Number: req.PartNumber, Size: n, SHA1: sum, Blob: key}, c.version)
}
