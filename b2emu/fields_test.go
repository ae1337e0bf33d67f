package b2emu

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// wantFields pins, per kind and API version (v1 to v4), the JSON field
// names of Backblaze's pages as fields.go cites them. It is written out
// again here, not derived from fieldTable, so that a change to the table
// or to the rendering that breaks a documented shape fails the test: v1
// listings must carry size and no accountId, v1 uploads no size, v2 must
// not send minimumPartSize, v4 must nest allowed under storageApi, ...
var wantFields = map[kind][4]string{
	kindFile: {
		"accountId action bucketId contentLength contentSha1 contentType fileId fileInfo fileName uploadTimestamp",
		fileV2Want, fileV2Want, fileV2Want,
	},
	kindListedFile: {
		"action contentLength contentSha1 contentType fileId fileInfo fileName size uploadTimestamp",
		fileV2Want, fileV2Want, fileV2Want,
	},
	kindStartedFile: {
		"accountId bucketId contentType fileId fileInfo fileName uploadTimestamp",
		fileV2Want, fileV2Want, fileV2Want,
	},
	kindDeletedFile:   all4("fileId fileName"),
	kindCancelledFile: all4("accountId bucketId fileId fileName"),
	kindPart: {
		"contentLength contentSha1 fileId partNumber uploadTimestamp",
		partV2Want, partV2Want, partV2Want,
	},
	kindBucket: all4("accountId bucketId bucketInfo bucketName bucketType corsRules defaultServerSideEncryption " +
		"fileLockConfiguration lifecycleRules options replicationConfiguration revision"),
	kindAuthorize: {
		"absoluteMinimumPartSize accountId allowed apiUrl authorizationToken downloadUrl minimumPartSize recommendedPartSize s3ApiUrl",
		"absoluteMinimumPartSize accountId allowed apiUrl authorizationToken downloadUrl recommendedPartSize s3ApiUrl",
		"accountId apiInfo applicationKeyExpirationTimestamp authorizationToken",
		"accountId apiInfo applicationKeyExpirationTimestamp authorizationToken",
	},
	kindAllowed: {"bucketId capabilities namePrefix", "bucketId bucketName capabilities namePrefix", "",
		"buckets capabilities namePrefix"},
	kindStorageAPI: {"", "",
		"absoluteMinimumPartSize apiUrl bucketId bucketName capabilities downloadUrl infoType namePrefix recommendedPartSize s3ApiUrl",
		"absoluteMinimumPartSize allowed apiUrl downloadUrl recommendedPartSize s3ApiUrl"},
	kindUploadURL:     all4("authorizationToken bucketId uploadUrl"),
	kindUploadPartURL: all4("authorizationToken fileId uploadUrl"),
	kindError:         all4("code message status"),
}

const (
	fileV2Want = "accountId action bucketId contentLength contentMd5 contentSha1 contentType fileId fileInfo " +
		"fileName fileRetention legalHold replicationStatus serverSideEncryption uploadTimestamp"
	partV2Want = "contentLength contentMd5 contentSha1 fileId partNumber serverSideEncryption uploadTimestamp"
)

func all4(s string) [4]string { return [4]string{s, s, s, s} }

func want(k kind, v int) []string { return strings.Fields(wantFields[k][v-1]) }

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestFieldTable: the table says what the pages say, and every field has a
// doc page.
func TestFieldTable(t *testing.T) {
	if len(fieldTable) != len(wantFields) {
		t.Errorf("fieldTable has %d kinds, wantFields %d", len(fieldTable), len(wantFields))
	}
	for k, set := range fieldTable {
		for v := 1; v <= 4; v++ {
			if got := fieldNames(k, v); !slices.Equal(got, want(k, v)) {
				t.Errorf("%s v%d: table %v, documented %v", k, v, got, want(k, v))
			}
			for _, f := range set[v-1] {
				if !strings.HasPrefix(f.doc, "https://www.backblaze.com/") {
					t.Errorf("%s v%d %s: doc %q", k, v, f.name, f.doc)
				}
			}
		}
	}
}

// fieldEnv makes raw calls of one API version.
type fieldEnv struct {
	*rawEnv
	v int
}

func (e *fieldEnv) call(name, body string) rawResp {
	e.t.Helper()
	r := postJSON(e.t, fmt.Sprintf("%s/b2api/v%d/%s", e.u, e.v, name), e.tok, body)
	if r.status != 200 {
		e.t.Fatalf("v%d %s: %d %s", e.v, name, r.status, r.raw)
	}
	return r
}

// check fails unless obj has exactly the documented fields of k.
func (e *fieldEnv) check(what string, k kind, obj any) {
	e.t.Helper()
	m, ok := obj.(map[string]any)
	if !ok {
		e.t.Errorf("v%d %s: not an object: %v", e.v, what, obj)
		return
	}
	if got := keys(m); !slices.Equal(got, want(k, e.v)) {
		e.t.Errorf("v%d %s (%s): fields %v, documented %v", e.v, what, k, got, want(k, e.v))
	}
}

// TestFieldsPerVersion makes every call in every API version against a
// running emulator and checks each JSON object's field names against the
// documented set for that version.
func TestFieldsPerVersion(t *testing.T) {
	for v := 1; v <= 4; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { testFieldsVersion(t, v) })
	}
}

func testFieldsVersion(t *testing.T, v int) {
	_, u := startServer(t, Config{MinPartSize: 1})
	a := authorizeRaw(t, u, v)
	e := &fieldEnv{rawEnv: &rawEnv{t: t, u: u, tok: a["authorizationToken"].(string), acct: a["accountId"].(string)}, v: v}

	e.check("b2_authorize_account", kindAuthorize, a)
	switch v {
	case 1, 2:
		e.check("authorize allowed", kindAllowed, a["allowed"])
	default:
		sa, _ := a["apiInfo"].(map[string]any)["storageApi"].(map[string]any)
		e.check("authorize apiInfo.storageApi", kindStorageAPI, sa)
		if v == 4 {
			e.check("authorize storageApi.allowed", kindAllowed, sa["allowed"])
		}
	}

	acct := `"accountId":"` + e.acct + `"`
	r := e.call("b2_create_bucket", `{`+acct+`,"bucketName":"fields-bucket","bucketType":"allPrivate"}`)
	e.check("b2_create_bucket", kindBucket, r.body)
	e.bucketID = r.body["bucketId"].(string)
	bkt := `"bucketId":"` + e.bucketID + `"`
	e.check("b2_list_buckets", kindBucket, e.call("b2_list_buckets", `{`+acct+`}`).body["buckets"].([]any)[0])
	e.check("b2_update_bucket", kindBucket, e.call("b2_update_bucket", `{`+acct+`,`+bkt+`,"bucketInfo":{"k":"v"}}`).body)
	other := e.call("b2_create_bucket", `{`+acct+`,"bucketName":"fields-other","bucketType":"allPublic"}`).body["bucketId"].(string)
	e.check("b2_delete_bucket", kindBucket, e.call("b2_delete_bucket", `{`+acct+`,"bucketId":"`+other+`"}`).body)

	up := e.call("b2_get_upload_url", `{`+bkt+`}`)
	e.check("b2_get_upload_url", kindUploadURL, up.body)
	data := "twelve bytes"
	r = doRaw(t, uploadReq(up, "dir/file", 0, data))
	if r.status != 200 {
		t.Fatalf("v%d upload: %s", v, r.raw)
	}
	e.check("b2_upload_file", kindFile, r.body)
	id := r.body["fileId"].(string)
	e.check("b2_get_file_info", kindFile, e.call("b2_get_file_info", `{"fileId":"`+id+`"}`).body)
	e.check("b2_copy_file", kindFile, e.call("b2_copy_file", `{"sourceFileId":"`+id+`","fileName":"copy"}`).body)

	// The length of a listed file: "size" in v1, "contentLength" later.
	lengthField := map[bool]string{true: "size", false: "contentLength"}[v == 1]
	names := e.call("b2_list_file_names", `{`+bkt+`,"prefix":"dir/"}`).body["files"].([]any)
	if len(names) != 1 {
		t.Fatalf("v%d list_file_names: %v", v, names)
	}
	e.check("b2_list_file_names", kindListedFile, names[0])
	if n, _ := names[0].(map[string]any)[lengthField].(float64); int(n) != len(data) {
		t.Errorf("v%d list_file_names %s = %v, want %d", v, lengthField, names[0].(map[string]any)[lengthField], len(data))
	}
	folder := e.call("b2_list_file_names", `{`+bkt+`,"delimiter":"/"}`).body["files"].([]any)
	e.check("b2_list_file_names folder", kindListedFile, folder[0])
	e.check("b2_hide_file", kindListedFile, e.call("b2_hide_file", `{`+bkt+`,"fileName":"copy"}`).body)
	for _, f := range e.call("b2_list_file_versions", `{`+bkt+`}`).body["files"].([]any) {
		e.check("b2_list_file_versions", kindListedFile, f)
	}

	r = e.call("b2_start_large_file", `{`+bkt+`,"fileName":"big","contentType":"b2/x-auto"}`)
	e.check("b2_start_large_file", kindStartedFile, r.body)
	large := r.body["fileId"].(string)
	e.check("b2_list_unfinished_large_files", kindStartedFile,
		e.call("b2_list_unfinished_large_files", `{`+bkt+`}`).body["files"].([]any)[0])
	pu := e.call("b2_get_upload_part_url", `{"fileId":"`+large+`"}`)
	e.check("b2_get_upload_part_url", kindUploadPartURL, pu.body)
	r = doRaw(t, uploadReq(pu, "", 1, data))
	if r.status != 200 {
		t.Fatalf("v%d upload_part: %s", v, r.raw)
	}
	e.check("b2_upload_part", kindPart, r.body)
	sum1 := r.body["contentSha1"].(string)
	r = e.call("b2_copy_part", `{"sourceFileId":"`+id+`","largeFileId":"`+large+`","partNumber":2,"range":"bytes=0-3"}`)
	e.check("b2_copy_part", kindPart, r.body)
	sum2 := r.body["contentSha1"].(string)
	e.check("b2_list_parts", kindPart, e.call("b2_list_parts", `{"fileId":"`+large+`"}`).body["parts"].([]any)[0])
	r = e.call("b2_finish_large_file", `{"fileId":"`+large+`","partSha1Array":["`+sum1+`","`+sum2+`"]}`)
	e.check("b2_finish_large_file", kindFile, r.body)
	gone := e.call("b2_start_large_file", `{`+bkt+`,"fileName":"gone","contentType":"b2/x-auto"}`).body["fileId"].(string)
	e.check("b2_cancel_large_file", kindCancelledFile, e.call("b2_cancel_large_file", `{"fileId":"`+gone+`"}`).body)

	e.check("b2_delete_file_version", kindDeletedFile,
		e.call("b2_delete_file_version", `{"fileName":"dir/file","fileId":"`+id+`"}`).body)

	// Error bodies: status, code and message, in every version.
	r = postJSON(t, fmt.Sprintf("%s/b2api/v%d/b2_get_file_info", u, v), e.tok, `{"fileId":"nope"}`)
	e.check("error", kindError, r.body)
	if st, _ := r.body["status"].(float64); r.status != 404 || int(st) != 404 || r.body["code"] != "not_found" {
		t.Errorf("v%d error: %d %s", v, r.status, r.raw)
	}
	if msg, _ := r.body["message"].(string); msg == "" {
		t.Errorf("v%d error without a message: %s", v, r.raw)
	}
}
