package b2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

// infoClient sends b2_list_buckets and b2_update_bucket with the revision
// handling blazer lacks: ifRevisionIs from the caller, revision read from
// the answer. Safe for concurrent use.
type infoClient struct {
	endpoint, keyID, key string
	hc                   *http.Client

	mu        sync.Mutex
	apiURL    string
	token     string
	accountID string
}

func (c *infoClient) authorize(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.endpoint+"/b2api/v3/b2_authorize_account", nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.keyID, c.key)
	var resp struct {
		AccountID string `json:"accountId"`
		Token     string `json:"authorizationToken"`
		APIInfo   struct {
			StorageAPI struct {
				APIURL string `json:"apiUrl"`
			} `json:"storageApi"`
		} `json:"apiInfo"`
	}
	if err := c.do(req, "b2_authorize_account", &resp); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiURL, c.token, c.accountID = resp.APIInfo.StorageAPI.APIURL, resp.Token, resp.AccountID
	return nil
}

type bucketJSON struct {
	BucketID   string            `json:"bucketId"`
	BucketName string            `json:"bucketName"`
	BucketInfo map[string]string `json:"bucketInfo"`
	Revision   int64             `json:"revision"`
}

func (b bucketJSON) state() core.BucketInfo {
	if b.BucketInfo == nil {
		b.BucketInfo = map[string]string{}
	}
	return core.BucketInfo{Revision: b.Revision, Info: b.BucketInfo}
}

func (c *infoClient) get(ctx context.Context, bucket string) (core.BucketInfo, error) {
	var resp struct {
		Buckets []bucketJSON `json:"buckets"`
	}
	if err := c.post(ctx, "b2_list_buckets", map[string]any{"accountId": "", "bucketName": bucket}, &resp); err != nil {
		return core.BucketInfo{}, err
	}
	for _, b := range resp.Buckets {
		if b.BucketName == bucket {
			return b.state(), nil
		}
	}
	return core.BucketInfo{}, fmt.Errorf("%w: bucket %q", errNoBucket, bucket)
}

func (c *infoClient) update(ctx context.Context, bucketID string, rev int64, info map[string]string) (core.BucketInfo, error) {
	var resp bucketJSON
	req := map[string]any{"accountId": "", "bucketId": bucketID, "bucketInfo": info, "ifRevisionIs": rev}
	if err := c.post(ctx, "b2_update_bucket", req, &resp); err != nil {
		return core.BucketInfo{}, err
	}
	return resp.state(), nil
}

func (c *infoClient) post(ctx context.Context, call string, body map[string]any, out any) error {
	c.mu.Lock()
	apiURL, token, account := c.apiURL, c.token, c.accountID
	c.mu.Unlock()
	if _, ok := body["accountId"]; ok {
		body["accountId"] = account
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", apiURL+"/b2api/v3/"+call, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", token)
	return c.do(req, call, out)
}

func (c *infoClient) do(req *http.Request, call string, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		ae := &apiError{status: resp.StatusCode, msg: string(body)}
		var e struct{ Code, Message string }
		if json.Unmarshal(body, &e) == nil && e.Code != "" {
			ae.code, ae.msg = e.Code, e.Message
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ae.retryAfter = time.Duration(s) * time.Second
		}
		return ae
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: bad answer: %v", call, err)
	}
	return nil
}

func (c *infoClient) copy(ctx context.Context, srcID, dst string) (core.FileInfo, error) {
	var resp struct {
		FileID        string `json:"fileId"`
		ContentLength int64  `json:"contentLength"`
		Timestamp     int64  `json:"uploadTimestamp"`
	}
	req := map[string]any{"sourceFileId": srcID, "fileName": dst, "metadataDirective": "COPY"}
	if err := c.post(ctx, "b2_copy_file", req, &resp); err != nil {
		return core.FileInfo{}, err
	}
	return core.FileInfo{Name: dst, ID: resp.FileID, Size: resp.ContentLength, Modified: time.UnixMilli(resp.Timestamp)}, nil
}
