package b2emu

import (
	"fmt"
	"slices"
)

// Field tables: which JSON fields B2 sends, per object kind and API
// version, and the Backblaze page each field is documented on. Responses
// are rendered from these tables (pick), so a version sends exactly its
// documented fields, and fields_test.go checks every call against them.
//
// The current pages (backblaze.com/apidocs/...) describe v2 to v4 and carry
// an "API Versions" list of what changed between versions; the older pages
// (backblaze.com/b2/docs/b2_....html) describe v1. Where no version note
// names a field, B2 added it to every version alike (bucket objects, for
// example, gained options, defaultServerSideEncryption,
// fileLockConfiguration and replicationConfiguration without a version
// change).

// Doc pages fields come from.
const (
	docAuthorize     = "https://www.backblaze.com/apidocs/b2-authorize-account"
	docAuthorizeV1   = "https://www.backblaze.com/b2/docs/b2_authorize_account.html"
	docAuthorizeV4   = "https://www.backblaze.com/apidocs/b2-authorize-account (v4, April 2025: allowed.buckets replaces bucketId/bucketName, no infoType)"
	docListFileNames = "https://www.backblaze.com/apidocs/b2-list-file-names"
	docListVersions  = "https://www.backblaze.com/apidocs/b2-list-file-versions"
	docListNamesV1   = "https://www.backblaze.com/b2/docs/b2_list_file_names.html"
	docHideFileV1    = "https://www.backblaze.com/b2/docs/b2_hide_file.html"
	docGetFileInfo   = "https://www.backblaze.com/apidocs/b2-get-file-info"
	docGetFileInfoV1 = "https://www.backblaze.com/b2/docs/b2_get_file_info.html"
	docStartLarge    = "https://www.backblaze.com/apidocs/b2-start-large-file"
	docStartLargeV1  = "https://www.backblaze.com/b2/docs/b2_start_large_file.html"
	docCancelLarge   = "https://www.backblaze.com/apidocs/b2-cancel-large-file"
	docDeleteVersion = "https://www.backblaze.com/apidocs/b2-delete-file-version"
	docUploadPart    = "https://www.backblaze.com/apidocs/b2-upload-part"
	docListParts     = "https://www.backblaze.com/apidocs/b2-list-parts"
	docListPartsV1   = "https://www.backblaze.com/b2/docs/b2_list_parts.html"
	docListBuckets   = "https://www.backblaze.com/apidocs/b2-list-buckets"
	docObjectLock    = "https://www.backblaze.com/docs/cloud-storage-enable-object-lock-with-the-native-api"
	docGetUploadURL  = "https://www.backblaze.com/apidocs/b2-get-upload-url"
	docGetPartURL    = "https://www.backblaze.com/apidocs/b2-get-upload-part-url"
	docErrors        = "https://www.backblaze.com/docs/cloud-storage-native-api-error-handling-and-status-codes"
)

// kind names one shape of JSON object B2 answers with.
type kind string

const (
	// kindFile is a file version as b2_upload_file, b2_get_file_info,
	// b2_finish_large_file and b2_copy_file return it.
	kindFile kind = "file"
	// kindListedFile is a file version as b2_list_file_names,
	// b2_list_file_versions and b2_hide_file return it; in v1 it carries
	// size and lacks accountId and bucketId.
	kindListedFile kind = "listedFile"
	// kindStartedFile is an unfinished large file as b2_start_large_file
	// and b2_list_unfinished_large_files return it; in v1 it lacks action,
	// contentLength and contentSha1.
	kindStartedFile kind = "startedFile"
	// kindDeletedFile is the reply of b2_delete_file_version.
	kindDeletedFile kind = "deletedFile"
	// kindCancelledFile is the reply of b2_cancel_large_file.
	kindCancelledFile kind = "cancelledFile"
	// kindPart is a part as b2_upload_part, b2_copy_part and b2_list_parts
	// return it.
	kindPart kind = "part"
	// kindBucket is a bucket as b2_create_bucket, b2_list_buckets,
	// b2_update_bucket and b2_delete_bucket return it.
	kindBucket kind = "bucket"
	// kindAuthorize is the top level of the b2_authorize_account reply.
	kindAuthorize kind = "authorize"
	// kindAllowed is "allowed" in the authorize reply: top level in v1 and
	// v2, inside apiInfo.storageApi in v4, absent in v3.
	kindAllowed kind = "allowed"
	// kindStorageAPI is apiInfo.storageApi in the v3 and v4 authorize
	// reply.
	kindStorageAPI kind = "storageApi"
	// kindUploadURL is the reply of b2_get_upload_url.
	kindUploadURL kind = "uploadUrl"
	// kindUploadPartURL is the reply of b2_get_upload_part_url.
	kindUploadPartURL kind = "uploadPartUrl"
	// kindError is every error body.
	kindError kind = "error"
)

// field is one JSON field name and the page documenting it.
type field struct{ name, doc string }

// fieldSet lists a kind's fields for API versions 1 to 4 (index 0 is v1);
// nil means the kind does not exist in that version.
type fieldSet [4][]field

// fields builds a field list from name/doc pairs sharing one doc page.
func fields(doc string, names ...string) []field {
	out := make([]field, len(names))
	for i, n := range names {
		out[i] = field{n, doc}
	}
	return out
}

// with returns base plus extra, as a new slice.
func with(base []field, extra ...field) []field {
	return append(slices.Clip(base), extra...)
}

func same(f []field) fieldSet { return fieldSet{f, f, f, f} }

var (
	// v1 file objects of uploads and b2_get_file_info: the v1 page lists
	// exactly these ten (no contentMd5, no encryption or Object Lock).
	fileV1 = fields(docGetFileInfoV1, "accountId", "action", "bucketId", "contentLength", "contentSha1",
		"contentType", "fileId", "fileInfo", "fileName", "uploadTimestamp")
	// v2 to v4 file objects. b2_list_file_versions' version notes: v2 "Now
	// returns accountId and bucketId. Does not return size any more; use
	// contentLength instead"; v2 Server-Side Encryption (March 2021) "Now
	// returns serverSideEncryption"; v2 Object Lock (May 2021) "Now returns
	// fileRetention and legalHold".
	fileV2 = with(fields(docGetFileInfo, "accountId", "action", "bucketId", "contentLength", "contentMd5",
		"contentSha1", "contentType", "fileId", "fileInfo", "fileName", "replicationStatus", "uploadTimestamp"),
		field{"serverSideEncryption", docListVersions}, field{"fileRetention", docListVersions},
		field{"legalHold", docListVersions})
	// v1 listed files: the v1 b2_hide_file page ("the standard file
	// structure") lists contentLength and "size: Deprecated. Same as
	// contentLength", and no accountId or bucketId, which v2 added to
	// listings.
	listedV1 = with(fields(docHideFileV1, "action", "contentLength", "contentSha1", "contentType", "fileId",
		"fileInfo", "fileName", "uploadTimestamp"), field{"size", docListNamesV1})
	// v1 unfinished large files: b2_start_large_file's version note v2
	// "Consistent file structures (Sept 13, 2018): Now returns action
	// ("start"), contentLength (0), and contentSha1 ("none")".
	startedV1 = fields(docStartLargeV1, "accountId", "bucketId", "contentType", "fileId", "fileInfo",
		"fileName", "uploadTimestamp")
	// Parts: the v1 b2_list_parts page has these five (uploadTimestamp
	// since v1 "Add uploadTimestamp field", Aug 2018); the current pages
	// add contentMd5 and serverSideEncryption.
	partV1 = fields(docListPartsV1, "contentLength", "contentSha1", "fileId", "partNumber", "uploadTimestamp")
	partV2 = with(partV1, field{"contentMd5", docListParts}, field{"serverSideEncryption", docUploadPart})
	// Buckets: b2_list_buckets' version notes change no field, so every
	// version sends the same object.
	bucketAll = with(fields(docListBuckets, "accountId", "bucketId", "bucketInfo", "bucketName", "bucketType",
		"corsRules", "defaultServerSideEncryption", "lifecycleRules", "options", "replicationConfiguration",
		"revision"), field{"fileLockConfiguration", docObjectLock})
	// Authorize, v1 and v2 flat. minimumPartSize is v1's deprecated alias
	// of recommendedPartSize; v2 no longer sends it.
	authV2 = fields(docAuthorize, "absoluteMinimumPartSize", "accountId", "allowed", "apiUrl",
		"authorizationToken", "downloadUrl", "recommendedPartSize", "s3ApiUrl")
	authV1 = with(authV2, field{"minimumPartSize", docAuthorizeV1})
	authV3 = fields(docAuthorize, "accountId", "apiInfo", "applicationKeyExpirationTimestamp", "authorizationToken")
	// allowed: v2 "Return bucket name (Sept 13, 2018)" added bucketName.
	allowedV1 = fields(docAuthorizeV1, "bucketId", "capabilities", "namePrefix")
	allowedV2 = with(allowedV1, field{"bucketName", docAuthorize})
	allowedV4 = fields(docAuthorizeV4, "buckets", "capabilities", "namePrefix")
	storageV3 = fields(docAuthorize, "absoluteMinimumPartSize", "apiUrl", "bucketId", "bucketName",
		"capabilities", "downloadUrl", "infoType", "namePrefix", "recommendedPartSize", "s3ApiUrl")
	storageV4 = fields(docAuthorizeV4, "absoluteMinimumPartSize", "allowed", "apiUrl", "downloadUrl",
		"recommendedPartSize", "s3ApiUrl")
)

// fieldTable is the documented field set of every kind in every version.
var fieldTable = map[kind]fieldSet{
	kindFile:          {fileV1, fileV2, fileV2, fileV2},
	kindListedFile:    {listedV1, fileV2, fileV2, fileV2},
	kindStartedFile:   {startedV1, fileV2, fileV2, fileV2},
	kindDeletedFile:   same(fields(docDeleteVersion, "fileId", "fileName")),
	kindCancelledFile: same(fields(docCancelLarge, "accountId", "bucketId", "fileId", "fileName")),
	kindPart:          {partV1, partV2, partV2, partV2},
	kindBucket:        same(bucketAll),
	kindAuthorize:     {authV1, authV2, authV3, authV3},
	kindAllowed:       {allowedV1, allowedV2, nil, allowedV4},
	kindStorageAPI:    {nil, nil, storageV3, storageV4},
	kindUploadURL:     same(fields(docGetUploadURL, "authorizationToken", "bucketId", "uploadUrl")),
	kindUploadPartURL: same(fields(docGetPartURL, "authorizationToken", "fileId", "uploadUrl")),
	kindError:         same(fields(docErrors, "code", "message", "status")),
}

// fieldNames returns the names of k's fields in version v (1 to 4),
// sorted; nil if k does not exist in v.
func fieldNames(k kind, v int) []string {
	var names []string
	for _, f := range fieldTable[k][v-1] {
		names = append(names, f.name)
	}
	slices.Sort(names)
	return names
}

// pick renders an object of kind k for version v: it keeps from all, every
// field the emulator can fill, exactly the fields the table lists. A table
// field missing from all is a bug in the emulator and panics, so no
// version ever silently loses a documented field.
func pick(k kind, v int, all map[string]any) map[string]any {
	set := fieldTable[k][v-1]
	out := make(map[string]any, len(set))
	for _, f := range set {
		val, ok := all[f.name]
		if !ok {
			panic(fmt.Sprintf("b2emu: %s field %q (v%d) has no value", k, f.name, v))
		}
		out[f.name] = val
	}
	return out
}
