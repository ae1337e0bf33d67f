package b2emu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"
)

const maxBuckets = 100

// validBucketName applies B2's bucket name rules: 6 to 63 characters,
// letters, digits and "-", not starting with "b2-".
func validBucketName(name string) error {
	if len(name) < 6 || len(name) > 63 {
		return badRequest("bucketName must be 6 to 63 characters: %q", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return badRequest("bucketName may contain only letters, digits and '-': %q", name)
		}
	}
	if strings.HasPrefix(strings.ToLower(name), "b2-") {
		return badRequest("bucketName must not start with 'b2-': %q", name)
	}
	return nil
}

// infoKeyChar reports whether r may appear in an info key: letters, digits
// and the punctuation B2 documents for file-info keys.
func infoKeyChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("-_.~!#$%^&*'|+`", r)
}

// validateBucketInfo applies the bucket-info rules: at most 10 pairs, keys of
// 1 to 50 bytes from the allowed characters, no reserved "b2-" prefix, and
// the configured value-size limits.
func (s *Server) validateBucketInfo(info map[string]string) error {
	if len(info) > 10 {
		return badRequest("bucketInfo may have at most 10 keys, got %d", len(info))
	}
	total := 0
	for k, v := range info {
		if len(k) < 1 || len(k) > 50 {
			return badRequest("bucketInfo key %q must be 1 to 50 bytes", k)
		}
		for _, r := range k {
			if !infoKeyChar(r) {
				return badRequest("bucketInfo key %q contains invalid character %q", k, r)
			}
		}
		if strings.HasPrefix(strings.ToLower(k), "b2-") {
			return badRequest("bucketInfo key %q uses the reserved prefix b2-", k)
		}
		if !utf8.ValidString(v) {
			return badRequest("bucketInfo value for %q is not valid UTF-8", k)
		}
		if len(v) > s.cfg.MaxInfoValueBytes {
			return badRequest("bucketInfo value for %q is %d bytes, more than %d", k, len(v), s.cfg.MaxInfoValueBytes)
		}
		total += len(v)
	}
	if s.cfg.MaxInfoTotalBytes > 0 && total > s.cfg.MaxInfoTotalBytes {
		return badRequest("bucketInfo values total %d bytes, more than %d", total, s.cfg.MaxInfoTotalBytes)
	}
	return nil
}

// jsonArray checks that raw is a JSON array (null counts as empty) and
// returns it in canonical form.
func jsonArray(field string, raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("[]"), nil
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, badRequest("%s must be an array", field)
	}
	out, _ := json.Marshal(arr)
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// bucketLocked finds a bucket by ID; a missing one answers 400 with the
// "Bucket <id> does not exist" message blazer matches for IsNotExist.
// LOCKS_REQUIRED(mu)
func (s *Server) bucketLocked(id, code string) (*bucket, error) {
	b, ok := s.st.Buckets[id]
	if !ok {
		return nil, errf(http.StatusBadRequest, code, "Bucket %s does not exist", id)
	}
	return b, nil
}

// createBucketLocked adds a bucket; the name must be valid. LOCKS_REQUIRED(mu)
func (s *Server) createBucketLocked(name, typ string, info map[string]string, rules json.RawMessage) (*bucket, error) {
	for _, b := range s.st.Buckets {
		if b.Name == name {
			return nil, errf(http.StatusBadRequest, "duplicate_bucket_name", "Bucket name is already in use.")
		}
	}
	if len(s.st.Buckets) >= maxBuckets {
		return nil, errf(http.StatusBadRequest, "too_many_buckets", "Account already has %d buckets", maxBuckets)
	}
	if info == nil {
		info = map[string]string{}
	}
	var id string
	for {
		id = randHex(12)
		if _, dup := s.st.Buckets[id]; !dup {
			break
		}
	}
	b := &bucket{ID: id, Name: name, Type: typ, Info: info, LifecycleRules: rules,
		CORSRules: json.RawMessage("[]"), Revision: 1}
	if b.LifecycleRules == nil {
		b.LifecycleRules = json.RawMessage("[]")
	}
	s.st.Buckets[id] = b
	if err := s.saveLocked(); err != nil {
		delete(s.st.Buckets, id)
		return nil, err
	}
	return b, nil
}

type authWrap struct {
	IsClientAuthorizedToRead bool `json:"isClientAuthorizedToRead"`
	Value                    any  `json:"value"`
}

// bucketJSONLocked renders b as a bucket object of API version v: the
// full object B2 returns, with B2's null defaults for unset encryption,
// retention and replication. blazer dereferences fileLockConfiguration and
// replicationConfiguration without checking, so both are always present.
// LOCKS_REQUIRED(mu)
func (s *Server) bucketJSONLocked(b *bucket, v int) map[string]any {
	info := make(map[string]string, len(b.Info))
	for k, v := range b.Info {
		info[k] = v
	}
	var sse any = map[string]any{"mode": nil, "algorithm": nil}
	if !isNull(b.SSE) {
		sse = b.SSE
	}
	var retention any = map[string]any{"mode": nil, "period": nil}
	if !isNull(b.Retention) {
		retention = b.Retention
	}
	var repl any
	if !isNull(b.Replication) {
		repl = b.Replication
	}
	return pick(kindBucket, v, map[string]any{
		"accountId":                   s.st.AccountID,
		"bucketId":                    b.ID,
		"bucketName":                  b.Name,
		"bucketType":                  b.Type,
		"bucketInfo":                  info,
		"corsRules":                   b.CORSRules,
		"defaultServerSideEncryption": authWrap{true, sse},
		"fileLockConfiguration": authWrap{true, map[string]any{
			"defaultRetention":  retention,
			"isFileLockEnabled": b.FileLockEnabled,
		}},
		"lifecycleRules":           b.LifecycleRules,
		"options":                  []string{"s3"},
		"replicationConfiguration": authWrap{true, repl},
		"revision":                 b.Revision,
	})
}

// checkAccountIDLocked checks an accountId given in a request against this
// account; empty passes. LOCKS_REQUIRED(mu)
func (s *Server) checkAccountIDLocked(id string) error {
	if id != "" && id != s.st.AccountID {
		return errf(http.StatusUnauthorized, "unauthorized", "accountId %s does not match the authorized account", id)
	}
	return nil
}

// decodeAccountAuthed is decodeAuthed for the bucket calls, whose requests
// name the account: after decoding req and checking the token it checks
// *accountID, a field of req, with checkAccountIDLocked. Same contract: on
// nil error mu is held and the caller must unlock it; on error mu is not
// held.
func (s *Server) decodeAccountAuthed(c *call, req any, accountID *string) error {
	if err := s.decodeAuthed(c, req); err != nil {
		return err
	}
	if err := s.checkAccountIDLocked(*accountID); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

func validBucketType(t string) bool {
	return t == "allPrivate" || t == "allPublic"
}

func (s *Server) createBucket(c *call) (any, error) {
	var req struct {
		AccountID      string            `json:"accountId"`
		BucketName     string            `json:"bucketName"`
		BucketType     string            `json:"bucketType"`
		BucketInfo     map[string]string `json:"bucketInfo"`
		LifecycleRules json.RawMessage   `json:"lifecycleRules"`
		CORSRules      json.RawMessage   `json:"corsRules"`
	}
	if err := s.decodeAccountAuthed(c, &req, &req.AccountID); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := validBucketName(req.BucketName); err != nil {
		return nil, err
	}
	if !validBucketType(req.BucketType) {
		return nil, badRequest("bucketType must be allPrivate or allPublic, got %q", req.BucketType)
	}
	if err := s.validateBucketInfo(req.BucketInfo); err != nil {
		return nil, err
	}
	rules, err := jsonArray("lifecycleRules", req.LifecycleRules)
	if err != nil {
		return nil, err
	}
	cors, err := jsonArray("corsRules", req.CORSRules)
	if err != nil {
		return nil, err
	}
	b, err := s.createBucketLocked(req.BucketName, req.BucketType, req.BucketInfo, rules)
	if err != nil {
		return nil, err
	}
	if string(cors) != "[]" {
		b.CORSRules = cors
		if err := s.saveLocked(); err != nil {
			return nil, err
		}
	}
	return s.bucketJSONLocked(b, c.version), nil
}

func (s *Server) deleteBucket(c *call) (any, error) {
	var req struct {
		AccountID string `json:"accountId"`
		BucketID  string `json:"bucketId"`
	}
	if err := s.decodeAccountAuthed(c, &req, &req.AccountID); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	b, err := s.bucketLocked(req.BucketID, "bad_bucket_id")
	if err != nil {
		return nil, err
	}
	for _, f := range s.st.Files {
		if f.BucketID == b.ID {
			return nil, errf(http.StatusBadRequest, "cannot_delete_non_empty_bucket", "Cannot delete non-empty bucket")
		}
	}
	out := s.bucketJSONLocked(b, c.version)
	delete(s.st.Buckets, b.ID)
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) listBuckets(c *call) (any, error) {
	var req struct {
		AccountID   string   `json:"accountId"`
		BucketID    string   `json:"bucketId"`
		BucketName  string   `json:"bucketName"`
		BucketTypes []string `json:"bucketTypes"`
	}
	if err := s.decodeAccountAuthed(c, &req, &req.AccountID); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	types := map[string]bool{}
	for _, t := range req.BucketTypes {
		types[t] = true
	}
	var match []*bucket
	for _, b := range s.st.Buckets {
		if req.BucketID != "" && b.ID != req.BucketID || req.BucketName != "" && b.Name != req.BucketName {
			continue
		}
		if len(types) > 0 && !types["all"] && !types[b.Type] {
			continue
		}
		match = append(match, b)
	}
	sort.Slice(match, func(i, j int) bool { return match[i].Name < match[j].Name })
	out := make([]map[string]any, 0, len(match))
	for _, b := range match {
		out = append(out, s.bucketJSONLocked(b, c.version))
	}
	return map[string]any{"buckets": out}, nil
}

func (s *Server) updateBucket(c *call) (any, error) {
	var req struct {
		AccountID                   string          `json:"accountId"`
		BucketID                    string          `json:"bucketId"`
		BucketType                  *string         `json:"bucketType"`
		BucketInfo                  json.RawMessage `json:"bucketInfo"`
		LifecycleRules              json.RawMessage `json:"lifecycleRules"`
		CORSRules                   json.RawMessage `json:"corsRules"`
		IfRevisionIs                *int            `json:"ifRevisionIs"`
		DefaultRetention            json.RawMessage `json:"defaultRetention"`
		DefaultServerSideEncryption json.RawMessage `json:"defaultServerSideEncryption"`
		FileLockEnabled             *bool           `json:"fileLockEnabled"`
		ReplicationConfiguration    json.RawMessage `json:"replicationConfiguration"`
	}
	if err := s.decodeAccountAuthed(c, &req, &req.AccountID); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	b, err := s.bucketLocked(req.BucketID, "bad_bucket_id")
	if err != nil {
		return nil, err
	}
	if req.IfRevisionIs != nil && *req.IfRevisionIs != b.Revision {
		return nil, errf(http.StatusConflict, "conflict", "ifRevisionIs test failed: revision is %d, not %d", b.Revision, *req.IfRevisionIs)
	}
	nb := *b
	if req.BucketType != nil {
		if !validBucketType(*req.BucketType) {
			return nil, badRequest("bucketType must be allPrivate or allPublic, got %q", *req.BucketType)
		}
		nb.Type = *req.BucketType
	}
	if !isNull(req.BucketInfo) {
		var info map[string]string
		if err := json.Unmarshal(req.BucketInfo, &info); err != nil {
			return nil, badRequest("bucketInfo must be an object of strings")
		}
		if err := s.validateBucketInfo(info); err != nil {
			return nil, err
		}
		nb.Info = info
	}
	if req.LifecycleRules != nil {
		if nb.LifecycleRules, err = jsonArray("lifecycleRules", req.LifecycleRules); err != nil {
			return nil, err
		}
	}
	if req.CORSRules != nil {
		if nb.CORSRules, err = jsonArray("corsRules", req.CORSRules); err != nil {
			return nil, err
		}
	}
	if !isNull(req.DefaultServerSideEncryption) {
		nb.SSE = req.DefaultServerSideEncryption
	}
	if req.FileLockEnabled != nil && *req.FileLockEnabled {
		nb.FileLockEnabled = true
	}
	if !isNull(req.DefaultRetention) {
		if !nb.FileLockEnabled {
			return nil, badRequest("defaultRetention requires file lock to be enabled")
		}
		var r struct {
			Mode   *string `json:"mode"`
			Period *struct {
				Duration int    `json:"duration"`
				Unit     string `json:"unit"`
			} `json:"period"`
		}
		if err := json.Unmarshal(req.DefaultRetention, &r); err != nil {
			return nil, badRequest("invalid defaultRetention: %v", err)
		}
		if r.Mode != nil && (r.Period == nil || r.Period.Unit == "") {
			return nil, badRequest("defaultRetention with a mode needs a period")
		}
		nb.Retention = req.DefaultRetention
	}
	if req.ReplicationConfiguration != nil {
		nb.Replication = req.ReplicationConfiguration
	}
	nb.Revision++
	*b = nb
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	return s.bucketJSONLocked(b, c.version), nil
}
