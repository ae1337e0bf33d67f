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
// returns the entries and the first candidate of the next page, or nil.
func (s *Server) pageLocked(bucketID string, cands []*file, prefix, delim string, max int) ([]fileJSON, *file) {
	out := []fileJSON{}
	for i := 0; i < len(cands); {
		f := cands[i]
		if len(out) == max {
			return out, f
		}
		if delim != "" {
			if j := strings.Index(f.Name[len(prefix):], delim); j >= 0 {
				folder := f.Name[:len(prefix)+j+len(delim)]
				out = append(out, folderJSON(s, bucketID, folder))
				for i < len(cands) && strings.HasPrefix(cands[i].Name, folder) {
					i++
				}
				continue
			}
		}
		out = append(out, s.fileJSONLocked(f))
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

func (s *Server) listFileNames(c *call) (any, error) {
	req, err := s.decodeList(c, maxListCount)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkAccountLocked(c, c.r.Header.Get("Authorization")); err != nil {
		return nil, err
	}
	if _, err := s.bucketLocked(req.BucketID, "invalid_bucket_id"); err != nil {
		return nil, err
	}
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
	files, next := s.pageLocked(req.BucketID, cands, req.Prefix, req.Delimiter, req.MaxFileCount)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkAccountLocked(c, c.r.Header.Get("Authorization")); err != nil {
		return nil, err
	}
	if _, err := s.bucketLocked(req.BucketID, "invalid_bucket_id"); err != nil {
		return nil, err
	}
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
	files, next := s.pageLocked(req.BucketID, all[i:], req.Prefix, req.Delimiter, req.MaxFileCount)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkAccountLocked(c, c.r.Header.Get("Authorization")); err != nil {
		return nil, err
	}
	if _, err := s.bucketLocked(req.BucketID, "invalid_bucket_id"); err != nil {
		return nil, err
	}
	var cands []*file
	for _, f := range s.st.Files {
		if f.BucketID == req.BucketID && f.Action == "start" && strings.HasPrefix(f.Name, req.NamePrefix) && f.ID >= req.StartFileID {
			cands = append(cands, f)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ID < cands[j].ID })
	files := []fileJSON{}
	var next *string
	for i, f := range cands {
		if i == req.MaxFileCount {
			next = &cands[i].ID
			break
		}
		files = append(files, s.fileJSONLocked(f))
	}
	return map[string]any{"files": files, "nextFileId": next}, nil
}
