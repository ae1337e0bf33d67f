// Package b2emu is a Backblaze B2 native API emulator: a real HTTP server
// that github.com/Backblaze/blazer (and other B2 clients) can talk to in
// tests and local development instead of B2.
//
// # What is emulated
//
// Every call blazer v0.7.2 makes, plus b2_copy_file, b2_copy_part and
// b2_download_file_by_id, under /b2api/v1/ to /b2api/v4/:
// b2_authorize_account (answered in the flat v1/v2 shape, the v3
// apiInfo.storageApi shape, or the v4 shape with allowed.buckets), bucket
// create/list/update/delete, simple and large uploads, listings, hide,
// delete, file info, copies, download authorizations and application keys.
// Downloads are served at /file/<bucket>/<name> and
// /b2api/vN/b2_download_file_by_id?fileId=.
//
// # API versions
//
// JSON answers are rendered per API version from the field table in
// fields.go, which names for each object kind (file, listed file,
// unfinished large file, part, bucket, authorize reply, upload URL, error)
// and each version the fields B2 sends and the Backblaze page each comes
// from. In v1, listings (b2_list_file_names, b2_list_file_versions,
// b2_hide_file) carry the deprecated size beside contentLength and no
// accountId or bucketId; v1 file objects lack contentMd5,
// serverSideEncryption, fileRetention, legalHold and replicationStatus;
// v1 parts lack contentMd5 and serverSideEncryption; only v1's authorize
// reply has minimumPartSize and only v2's allowed has bucketName. Buckets
// and error bodies are the same in every version.
//
// The behaviour follows B2 where blazer depends on it:
//
//   - Buckets carry a revision (1 at create, +1 per update); an update with a
//     stale ifRevisionIs answers 409 conflict. Bucket objects are always
//     complete (fileLockConfiguration, replicationConfiguration, ...).
//   - Bucket info: at most 10 pairs, keys of 1-50 bytes from B2's key
//     characters, no "b2-" prefix, values limited by
//     Config.MaxInfoValueBytes and Config.MaxInfoTotalBytes; else 400
//     bad_request.
//   - File names (1-1024 bytes of UTF-8, no characters below 32, no DEL) and
//     info values are form-decoded from the escaped header or path, so "+"
//     is a space and "%2B" a plus. Info keys are lower-cased; name plus info
//     must fit in 7000 bytes.
//   - Uploads need Content-Length and X-Bz-Content-Sha1 (40 hex,
//     hex_digits_at_end or do_not_verify); a wrong checksum is 400. One
//     upload at a time per upload token (400 auth_token_limit otherwise).
//   - Large files: parts 1-10000, re-upload replaces, finish needs parts
//     1..N contiguous with matching SHA1s (missing_part,
//     part_sha1_mismatch) and every part but the last at least
//     Config.MinPartSize. Unfinished files are listed as action "start" in
//     versions and by b2_list_unfinished_large_files.
//   - Listings sort by name in byte order (versions newest first), support
//     prefix, delimiter (action "folder"), start name/ID and maxFileCount
//     (default 100, at most 10000), and answer null next fields at the end.
//   - Ranged downloads answer 206 with Content-Range, 200 when the range
//     covers the whole file, and 416 when it starts at or past the end
//     (every range of an empty file). HEAD answers the same headers.
//   - Account and upload tokens expire after Config.TokenLifetime (401
//     expired_auth_token); unknown tokens are 401 bad_auth_token.
//   - Unknown buckets answer 400 "Bucket <id> does not exist".
//   - Every error is JSON {status, code, message}.
//
// Capabilities of keys made with b2_create_key are recorded and reported but
// not enforced.
//
// # Test modes
//
// Every X-Bz-Test-Mode header line is honoured:
// fail_some_uploads answers 503 to about a quarter of b2_upload_file and
// b2_upload_part calls, never twice in a row;
// expire_some_account_authorization_tokens expires about a fifth of
// account tokens on use once they have served a few calls, so the call
// retried after re-authorizing passes; force_cap_exceeded answers uploads
// with 403 storage_cap_exceeded and downloads with 403
// download_cap_exceeded.
//
// # Fault model
//
// SetFault attaches a Fault to a call name (or "*" for every call without
// its own). Per call it adds Latency plus up to Jitter, then drops the
// connection with probability DropRate or answers Status/Code (default 503
// service_unavailable) with probability ErrorRate, with Retry-After when
// RetryAfter > 0. Faults are bounded because blazer retries 429, 500, 503
// and dropped connections forever: after MaxConsecutive (default 3)
// injected faults in a row on a call name the next call on that name
// passes. PerMinute rate-limits a call name (or all calls for "*") with 429
// too_many_requests and a Retry-After that ends when the one-minute window
// frees up. b2_authorize_account is never answered 401 by an injected fault
// (blazer would give up); 503 is sent instead.
//
// Drops and errors happen before the call is applied, so the client may
// safely assume nothing changed. LostRate injects the other side, the
// "unknown outcome": with that probability the call is applied (its
// answer kept in a buffer) and then its reply is lost as LostAs says:
// LostDrop (the default) closes the connection, Lost500 and Lost503
// answer that error instead, LostLate holds the reply back for LateWait
// (default 40 s, past a client's usual deadline) and sends it if the client
// still waits, and LostMixed picks one of these at random per lost reply.
// Only replies with status 200 are lost; a failed call changed nothing and
// is answered as usual. Lost replies count towards MaxConsecutive. This
// works for every call name, including uploads on upload URLs
// (b2_upload_file, b2_upload_part), and matters for those that change
// state: b2_update_bucket, b2_upload_file, b2_upload_part,
// b2_finish_large_file, b2_delete_file_version, b2_copy_file,
// b2_hide_file and the others that create or delete.
//
// # Counters
//
// Stats counts answered B2 calls by name and by transaction class (A, B, C
// as on B2's price list; copies are C, downloads and b2_get_file_info B),
// plus request and response body bytes. Faults counts by call name the
// answers a Fault changed (drops, injected errors, 429s, lost replies) and
// Lost the calls applied whose reply was lost, so a test can check that a
// fault really happened. GET /emulator/stats returns them as JSON (fields
// calls, classes, bytesIn, bytesOut, faults, lost) and POST /emulator/reset
// zeroes them; neither is counted.
//
// # Storage
//
// With Config.Dir empty everything lives in memory. Otherwise metadata
// (buckets, revisions, versions, parts, keys) is one JSON file,
// Dir/state.json, rewritten through a temporary file and a rename after
// every mutation, and each file or part is one file under Dir/blobs written
// the same way; New on the same Dir resumes where the last Server stopped.
// Tokens live in memory only, so clients re-authorize after a restart, as
// they must after B2 invalidates tokens.
//
// A Server is safe for concurrent use. Close drops the listener and its
// connections but keeps the state; Listen again to come back, which
// simulates an outage.
package b2emu
