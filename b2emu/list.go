package b2emu

import (
	"sort"
	"strings"
)

const (
	defaultListCount = 100
	maxListCount     = 10000
)

// versionsLocked returns a bucket's versions sorted by name (byte order),
// newest first within a name. LOCKS_REQUIRED(mu)
func (s *Server) versionsLocked(bucketID, prefix string) []*file {
	var out []*file
	for _, f := range s.st.Files {
		if f.BucketID == bucketID && strings.HasPrefix(f.Name, prefix) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Seq > out[j].Seq
	})
	return out
}

// page cuts one listing page from cands (already positioned at the start),
// rolling names up to folders at the first delimiter after prefix. It
// returns the entries, as listed file objects of API version v, and the
// first candidate of the next page, or nil.
func (s *Server) pageLocked(bucketID string, cands []*file, prefix, delim string, max, v int) ([]map[string]any, *file) {
	out := []map[string]any{}
	for i := 0; i < len(cands); {
		f := cands[i]
		if len(out) == max {
			return out, f
		}
		if delim != "" {
			if j := strings.Index(f.Name[len(prefix):], delim); j >= 0 {
				folder := f.Name[:len(prefix)+j+len(delim)]
				out = append(out, s.folderJSONLocked(bucketID, folder, v))
				for i < len(cands) && strings.HasPrefix(cands[i].Name, folder) {
					i++
				}
				continue
			}
		}
		out = append(out, s.fileJSONLocked(f, kindListedFile, v))
		i++
	}
	return out, nil
}

type listRequest struct {
	BucketID      string `json:"bucketId"`
	StartFileName string `json:"startFileName"`
	StartFileID   string `json:"startFileId"`
	MaxFileCount  int    `json:"maxFileCount"`
	Prefix        string `json:"prefix"`
	Delimiter     string `json:"delimiter"`
	NamePrefix    string `json:"namePrefix"` // b2_list_unfinished_large_files
}

func (s *Server) decodeList(c *call, max int) (*listRequest, error) {
	var req listRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.MaxFileCount <= 0 {
		req.MaxFileCount = defaultListCount
	}
	if req.MaxFileCount > max {
		return nil, badRequest("maxFileCount must be at most %d", max)
	}
	return &req, nil
}

// lockListBucket does what lockAuthed does, then checks that the listed
// bucket exists (400 invalid_bucket_id otherwise). On nil error mu is held
// and the caller must unlock it; on error mu is not held.
func (s *Server) lockListBucket(c *call, req *listRequest) error {
	if err := s.lockAuthed(c); err != nil {
		return err
	}
	if _, err := s.bucketLocked(req.BucketID, "invalid_bucket_id"); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

// cutPage renders the first max items of sorted as one listing page and
// returns them with the items left for later pages; the first of those
// (if any) is where the next page starts. The page is never nil, so it
// encodes as [] rather than null.
func cutPage[T, J any](sorted []T, max int, render func(T) J) (page []J, rest []T) {
	n := min(len(sorted), max)
	page = make([]J, 0, n)
	for _, v := range sorted[:n] {
		page = append(page, render(v))
	}
	return page, sorted[n:]
}

func (s *Server) listFileNames(c *call) (any, error) {
	req, err := s.decodeList(c, maxListCount)
	if err != nil {
		return nil, err
	}
	if err := s.lockListBucket(c, req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	// Keep the newest upload/hide version of each name, if it is an upload.
	var cands []*file
	var last string
	seen := false
	for _, f := range s.versionsLocked(req.BucketID, req.Prefix) {
		if f.Name < req.StartFileName || f.Action == "start" || seen && f.Name == last {
			continue
		}
		last, seen = f.Name, true
		if f.Action == "upload" {
			cands = append(cands, f)
		}
	}
	files, next := s.pageLocked(req.BucketID, cands, req.Prefix, req.Delimiter, req.MaxFileCount, c.version)
	var nextName *string
	if next != nil {
		nextName = &next.Name
	}
	return map[string]any{"files": files, "nextFileName": nextName}, nil
}

func (s *Server) listFileVersions(c *call) (any, error) {
	req, err := s.decodeList(c, maxListCount)
	if err != nil {
		return nil, err
	}
	if req.StartFileID != "" && req.StartFileName == "" {
		return nil, badRequest("startFileId requires startFileName")
	}
	if err := s.lockListBucket(c, req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	all := s.versionsLocked(req.BucketID, req.Prefix)
	startSeq := int64(-1)
	if req.StartFileID != "" {
		f, ok := s.st.Files[req.StartFileID]
		if !ok || f.Name != req.StartFileName {
			return nil, badRequest("startFileId %s does not match startFileName", req.StartFileID)
		}
		startSeq = f.Seq
	}
	i := sort.Search(len(all), func(i int) bool {
		f := all[i]
		if f.Name != req.StartFileName {
			return f.Name > req.StartFileName
		}
		return startSeq < 0 || f.Seq <= startSeq
	})
	files, next := s.pageLocked(req.BucketID, all[i:], req.Prefix, req.Delimiter, req.MaxFileCount, c.version)
	var nextName, nextID *string
	if next != nil {
		nextName, nextID = &next.Name, &next.ID
	}
	return map[string]any{"files": files, "nextFileName": nextName, "nextFileId": nextID}, nil
}

func (s *Server) listUnfinished(c *call) (any, error) {
	req, err := s.decodeList(c, 100)
	if err != nil {
		return nil, err
	}
	if err := s.lockListBucket(c, req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var cands []*file
	for _, f := range s.st.Files {
		if f.BucketID == req.BucketID && f.Action == "start" && strings.HasPrefix(f.Name, req.NamePrefix) && f.ID >= req.StartFileID {
			cands = append(cands, f)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ID < cands[j].ID })
	files, rest := cutPage(cands, req.MaxFileCount, func(f *file) map[string]any {
		return s.fileJSONLocked(f, kindStartedFile, c.version)
	})
	var next *string
	if len(rest) > 0 {
		next = &rest[0].ID
	}
	return map[string]any{"files": files, "nextFileId": next}, nil
}
