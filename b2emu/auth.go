package b2emu

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"
)

// allCapabilities are granted to the master key.
var allCapabilities = []string{
	"listKeys", "writeKeys", "deleteKeys", "listBuckets", "listAllBucketNames",
	"readBuckets", "writeBuckets", "deleteBuckets", "readBucketEncryption",
	"writeBucketEncryption", "readBucketRetentions", "writeBucketRetentions",
	"readFileRetentions", "writeFileRetentions", "readFileLegalHolds",
	"writeFileLegalHolds", "readBucketReplications", "writeBucketReplications",
	"bypassGovernance", "listFiles", "readFiles", "shareFiles", "writeFiles",
	"deleteFiles",
}

type accountToken struct {
	keyID   string
	created time.Time
	expires time.Time
	uses    int
}

type uploadToken struct {
	bucketID string // for b2_upload_file
	fileID   string // for b2_upload_part
	expires  time.Time
	busy     bool
}

type dlToken struct {
	bucketID string
	prefix   string
	expires  time.Time
}

// credentials returns the key matching id and secret. LOCKS_REQUIRED(mu)
func (s *Server) credentialsLocked(id, secret string) (*appKey, bool) {
	if id == s.cfg.KeyID && secret == s.cfg.Key {
		return &appKey{ID: id, Capabilities: allCapabilities}, true
	}
	k, ok := s.st.Keys[id]
	if !ok || k.Secret != secret {
		return nil, false
	}
	if k.Expires != 0 && time.Now().UnixMilli() > k.Expires {
		return nil, false
	}
	return k, true
}

func (s *Server) authorize(c *call) (any, error) {
	id, secret, ok := c.r.BasicAuth()
	if !ok {
		return nil, errf(http.StatusUnauthorized, "bad_auth_token", "missing Basic authorization")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key, ok := s.credentialsLocked(id, secret)
	if !ok {
		return nil, errf(http.StatusUnauthorized, "unauthorized", "invalid application key id or key")
	}
	now := time.Now()
	s.pruneTokensLocked(now)
	tok := "4_emu" + randHex(20)
	s.tokens[tok] = &accountToken{keyID: key.ID, created: now, expires: now.Add(s.cfg.TokenLifetime)}

	base := c.base()
	var bucketID, bucketName, prefix any // null unless restricted
	if key.BucketID != "" {
		bucketID = key.BucketID
		if b := s.st.Buckets[key.BucketID]; b != nil {
			bucketName = b.Name
		}
	}
	if key.Prefix != "" {
		prefix = key.Prefix
	}
	var keyExp any
	if key.Expires != 0 {
		keyExp = key.Expires
	}
	recommended := int64(100_000_000)
	if s.cfg.MinPartSize > recommended {
		recommended = s.cfg.MinPartSize
	}
	caps := append([]string(nil), key.Capabilities...)
	var buckets any // v4: null unless the key is restricted
	if key.BucketID != "" {
		buckets = []any{map[string]any{"id": bucketID, "name": bucketName}}
	}
	v := c.version
	allowed := map[string]any{"bucketId": bucketID, "bucketName": bucketName, "buckets": buckets,
		"capabilities": caps, "namePrefix": prefix}
	all := map[string]any{
		"absoluteMinimumPartSize":           s.cfg.MinPartSize,
		"accountId":                         s.st.AccountID,
		"apiUrl":                            base,
		"applicationKeyExpirationTimestamp": keyExp,
		"authorizationToken":                tok,
		"bucketId":                          bucketID,
		"bucketName":                        bucketName,
		"capabilities":                      caps,
		"downloadUrl":                       base,
		"infoType":                          "storageApi",
		"minimumPartSize":                   recommended,
		"namePrefix":                        prefix,
		"recommendedPartSize":               recommended,
		"s3ApiUrl":                          base,
	}
	if v == 4 {
		all["allowed"] = pick(kindAllowed, v, allowed)
	}
	if v >= 3 {
		all["apiInfo"] = map[string]any{"storageApi": pick(kindStorageAPI, v, all)}
	} else {
		all["allowed"] = pick(kindAllowed, v, allowed)
	}
	return pick(kindAuthorize, v, all), nil
}

// pruneTokensLocked forgets tokens that expired more than a lifetime ago;
// recently expired ones are kept so they still answer expired_auth_token.
// LOCKS_REQUIRED(mu)
func (s *Server) pruneTokensLocked(now time.Time) {
	cut := now.Add(-s.cfg.TokenLifetime)
	for k, t := range s.tokens {
		if t.expires.Before(cut) {
			delete(s.tokens, k)
		}
	}
	for k, t := range s.uploads {
		if t.expires.Before(cut) {
			delete(s.uploads, k)
		}
	}
	for k, t := range s.dlAuth {
		if t.expires.Before(cut) {
			delete(s.dlAuth, k)
		}
	}
}

// checkAccountLocked validates the account token a request carries and
// applies the expire_some_account_authorization_tokens test mode.
// LOCKS_REQUIRED(mu)
func (s *Server) checkAccountLocked(c *call, tok string) error {
	if tok == "" {
		return errf(http.StatusUnauthorized, "bad_auth_token", "missing authorization token")
	}
	t, ok := s.tokens[tok]
	if !ok {
		return errf(http.StatusUnauthorized, "bad_auth_token", "invalid authorization token")
	}
	now := time.Now()
	if !now.Before(t.expires) {
		return errf(http.StatusUnauthorized, "expired_auth_token", "authorization token has expired")
	}
	if c.modes.expireTokens && t.uses >= testExpireMinUses && now.Sub(t.created) >= testExpireMinAge &&
		rand.Float64() < testExpireRate {
		t.expires = now
		return errf(http.StatusUnauthorized, "expired_auth_token", "authorization token has expired (test mode)")
	}
	t.uses++
	return nil
}

// lockAuthed takes mu and checks the account token in the request's
// Authorization header. On nil error mu is held and the caller must unlock
// it (usually `defer s.mu.Unlock()` right after the call); on error mu is
// not held.
func (s *Server) lockAuthed(c *call) error {
	s.mu.Lock()
	if err := s.checkAccountLocked(c, c.r.Header.Get("Authorization")); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

// decodeAuthed decodes the JSON request body into req, then does what
// lockAuthed does, with the same contract: on nil error mu is held and the
// caller must unlock it; on error mu is not held. A bad body is reported
// before a bad token.
func (s *Server) decodeAuthed(c *call, req any) error {
	if err := c.decode(req); err != nil {
		return err
	}
	return s.lockAuthed(c)
}

// newUploadTokenLocked issues an upload token. LOCKS_REQUIRED(mu)
func (s *Server) newUploadTokenLocked(bucketID, fileID string) string {
	tok := "4_emuup" + randHex(20)
	s.uploads[tok] = &uploadToken{bucketID: bucketID, fileID: fileID, expires: time.Now().Add(s.cfg.TokenLifetime)}
	return tok
}

// acquireUpload validates an upload token and marks it busy; release must
// be called when the upload ends. B2 allows one upload per token at a time.
func (s *Server) acquireUpload(c *call) (t *uploadToken, release func(), err error) {
	tok := c.r.Header.Get("Authorization")
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.uploads[tok]
	if !ok {
		return nil, nil, errf(http.StatusUnauthorized, "bad_auth_token", "invalid upload authorization token")
	}
	if !time.Now().Before(t.expires) {
		return nil, nil, errf(http.StatusUnauthorized, "expired_auth_token", "upload authorization token has expired")
	}
	if t.busy {
		return nil, nil, errf(http.StatusBadRequest, "auth_token_limit", "more than one upload using auth token %s", tok)
	}
	t.busy = true
	return t, func() {
		s.mu.Lock()
		t.busy = false
		s.mu.Unlock()
	}, nil
}

func (s *Server) getDownloadAuthorization(c *call) (any, error) {
	var req struct {
		BucketID               string `json:"bucketId"`
		FileNamePrefix         string `json:"fileNamePrefix"`
		ValidDurationInSeconds int64  `json:"validDurationInSeconds"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if _, err := s.bucketLocked(req.BucketID, "bad_bucket_id"); err != nil {
		return nil, err
	}
	if req.ValidDurationInSeconds < 1 || req.ValidDurationInSeconds > 604800 {
		return nil, badRequest("validDurationInSeconds must be between 1 and 604800")
	}
	tok := "3_emudl" + randHex(20)
	s.dlAuth[tok] = &dlToken{bucketID: req.BucketID, prefix: req.FileNamePrefix,
		expires: time.Now().Add(time.Duration(req.ValidDurationInSeconds) * time.Second)}
	return map[string]any{"bucketId": req.BucketID, "fileNamePrefix": req.FileNamePrefix, "authorizationToken": tok}, nil
}

// checkDownloadLocked authorizes a download of name from b: public buckets
// need nothing, otherwise an account token or a download authorization
// covering the name, from the Authorization header or query parameter.
// LOCKS_REQUIRED(mu)
func (s *Server) checkDownloadLocked(c *call, b *bucket, name string) error {
	tok := c.r.Header.Get("Authorization")
	if tok == "" {
		tok = c.r.URL.Query().Get("Authorization")
	}
	if tok == "" && b.Type == "allPublic" {
		return nil
	}
	if d, ok := s.dlAuth[tok]; ok {
		if !time.Now().Before(d.expires) {
			return errf(http.StatusUnauthorized, "expired_auth_token", "download authorization has expired")
		}
		if d.bucketID != b.ID || !strings.HasPrefix(name, d.prefix) {
			return errf(http.StatusUnauthorized, "unauthorized", "download authorization does not cover this file")
		}
		return nil
	}
	return s.checkAccountLocked(c, tok)
}

type keyJSON struct {
	AccountID    string   `json:"accountId"`
	ID           string   `json:"applicationKeyId"`
	Secret       string   `json:"applicationKey,omitempty"`
	BucketID     *string  `json:"bucketId"`
	Capabilities []string `json:"capabilities"`
	Expires      *int64   `json:"expirationTimestamp"`
	Name         string   `json:"keyName"`
	Prefix       *string  `json:"namePrefix"`
	Options      []string `json:"options"`
}

func (s *Server) keyJSON(k *appKey, withSecret bool) keyJSON {
	j := keyJSON{AccountID: s.st.AccountID, ID: k.ID, Capabilities: k.Capabilities, Name: k.Name, Options: []string{"s3"}}
	if withSecret {
		j.Secret = k.Secret
	}
	if k.BucketID != "" {
		j.BucketID = &k.BucketID
	}
	if k.Prefix != "" {
		j.Prefix = &k.Prefix
	}
	if k.Expires != 0 {
		j.Expires = &k.Expires
	}
	return j
}

func (s *Server) createKey(c *call) (any, error) {
	var req struct {
		Capabilities           []string `json:"capabilities"`
		KeyName                string   `json:"keyName"`
		ValidDurationInSeconds int64    `json:"validDurationInSeconds"`
		BucketID               string   `json:"bucketId"`
		NamePrefix             string   `json:"namePrefix"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if req.KeyName == "" || len(req.KeyName) > 100 {
		return nil, badRequest("keyName must be 1 to 100 characters")
	}
	if len(req.Capabilities) == 0 {
		return nil, badRequest("capabilities must not be empty")
	}
	if req.BucketID != "" {
		if _, err := s.bucketLocked(req.BucketID, "bad_bucket_id"); err != nil {
			return nil, err
		}
	}
	seq, _ := s.nextLocked()
	k := &appKey{
		ID:           fmt.Sprintf("000%s%010d", s.st.AccountID, seq),
		Secret:       "K000" + randHex(14),
		Name:         req.KeyName,
		Capabilities: req.Capabilities,
		BucketID:     req.BucketID,
		Prefix:       req.NamePrefix,
	}
	if req.ValidDurationInSeconds > 0 {
		k.Expires = time.Now().Add(time.Duration(req.ValidDurationInSeconds) * time.Second).UnixMilli()
	}
	s.st.Keys[k.ID] = k
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	return s.keyJSON(k, true), nil
}

func (s *Server) deleteKey(c *call) (any, error) {
	var req struct {
		ID string `json:"applicationKeyId"`
	}
	if err := s.decodeAuthed(c, &req); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	k, ok := s.st.Keys[req.ID]
	if !ok {
		return nil, badRequest("application key %s does not exist", req.ID)
	}
	delete(s.st.Keys, req.ID)
	for tok, t := range s.tokens {
		if t.keyID == req.ID {
			delete(s.tokens, tok)
		}
	}
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	return s.keyJSON(k, false), nil
}

func (s *Server) listKeys(c *call) (any, error) {
	var req struct {
		MaxKeyCount           int    `json:"maxKeyCount"`
		StartApplicationKeyID string `json:"startApplicationKeyId"`
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.MaxKeyCount <= 0 {
		req.MaxKeyCount = 100
	}
	if req.MaxKeyCount > 10000 {
		return nil, badRequest("maxKeyCount must be at most 10000")
	}
	if err := s.lockAuthed(c); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.st.Keys))
	for id := range s.st.Keys {
		if id >= req.StartApplicationKeyID {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	keys, rest := cutPage(ids, req.MaxKeyCount, func(id string) keyJSON { return s.keyJSON(s.st.Keys[id], false) })
	var next *string
	if len(rest) > 0 {
		next = &rest[0]
	}
	return map[string]any{"keys": keys, "nextApplicationKeyId": next}, nil
}
