package b2emu

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Backblaze/blazer/b2"
	"github.com/Backblaze/blazer/base"
)

// startServer runs a Server on a loopback port for the duration of the test.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, u
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, ctx context.Context, u string, opts ...b2.ClientOption) *b2.Client {
	t.Helper()
	c, err := b2.NewClient(ctx, DefaultKeyID, DefaultKey, append([]b2.ClientOption{b2.APIBase(u)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func mustBucket(t *testing.T, ctx context.Context, c *b2.Client, name string) *b2.Bucket {
	t.Helper()
	b, err := c.NewBucket(ctx, name, nil)
	if err != nil {
		t.Fatalf("NewBucket(%s): %v", name, err)
	}
	return b
}

// put writes data to name with a small chunk size, so anything larger goes
// up as a multi-part large file.
func put(t *testing.T, ctx context.Context, b *b2.Bucket, name string, data []byte, chunk int, attrs *b2.Attrs) {
	t.Helper()
	putConc(t, ctx, b, name, data, chunk, 3, attrs)
}

func putConc(t *testing.T, ctx context.Context, b *b2.Bucket, name string, data []byte, chunk, conc int, attrs *b2.Attrs) {
	t.Helper()
	var opts []b2.WriterOption
	if attrs != nil {
		opts = append(opts, b2.WithAttrsOption(attrs))
	}
	w := b.Object(name).NewWriter(ctx, opts...)
	if chunk > 0 {
		w.ChunkSize = chunk
		w.ConcurrentUploads = conc
	}
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		w.Close()
		t.Fatalf("write %s: %v", name, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

func get(t *testing.T, ctx context.Context, b *b2.Bucket, name string) []byte {
	t.Helper()
	r := b.Object(name).NewReader(ctx)
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return data
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	return b
}

// b2Status extracts the HTTP status and B2 code from a blazer error.
func b2Status(err error) (int, string) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if st, code, _ := base.MsgCode(e); st != 0 {
			return st, code
		}
	}
	return 0, ""
}

func TestBuckets(t *testing.T) {
	ctx := testCtx(t)
	_, u := startServer(t, Config{})
	c := newClient(t, ctx, u)

	b := mustBucket(t, ctx, c, "bucket-one")
	mustBucket(t, ctx, c, "bucket-two")
	bs, err := c.ListBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name())
	}
	if got := strings.Join(names, ","); got != "bucket-one,bucket-two" {
		t.Errorf("ListBuckets = %s", got)
	}

	if err := b.Update(ctx, &b2.BucketAttrs{Info: map[string]string{"k": "v1"}}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	attrs, err := b.Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Info["k"] != "v1" || attrs.Type != b2.Private {
		t.Errorf("Attrs = %+v", attrs)
	}

	// Two handles read at the same revision; the second update must lose.
	h1, err := c.Bucket(ctx, "bucket-one")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := c.Bucket(ctx, "bucket-one")
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.Update(ctx, &b2.BucketAttrs{Info: map[string]string{"k": "h1"}}); err != nil {
		t.Fatalf("h1 update: %v", err)
	}
	err = h2.Update(ctx, &b2.BucketAttrs{Info: map[string]string{"k": "h2"}})
	if !b2.IsUpdateConflict(err) {
		t.Fatalf("stale update: got %v, want update conflict", err)
	}
	if attrs, _ := h2.Attrs(ctx); attrs.Info["k"] != "h1" {
		t.Errorf("after conflict info = %v, want h1", attrs.Info)
	}
	// After a refresh the update goes through.
	if err := h2.Update(ctx, &b2.BucketAttrs{Info: map[string]string{"k": "h2"}}); err != nil {
		t.Fatalf("refreshed update: %v", err)
	}

	// Bucket info limits.
	big := map[string]string{"k": strings.Repeat("x", 2049)}
	if st, code := b2Status(h2.Update(ctx, &b2.BucketAttrs{Info: big})); st != 400 || code != "bad_request" {
		t.Errorf("oversize info: got %d %s, want 400 bad_request", st, code)
	}
	h2.Attrs(ctx)
	eleven := map[string]string{}
	for i := 0; i < 11; i++ {
		eleven[fmt.Sprint("k", i)] = "v"
	}
	if st, code := b2Status(h2.Update(ctx, &b2.BucketAttrs{Info: eleven})); st != 400 || code != "bad_request" {
		t.Errorf("11 keys: got %d %s, want 400 bad_request", st, code)
	}
	h2.Attrs(ctx)
	if st, _ := b2Status(h2.Update(ctx, &b2.BucketAttrs{Info: map[string]string{"b2-x": "v"}})); st != 400 {
		t.Errorf("reserved key: got %d, want 400", st)
	}

	// Delete, then deleting again is IsNotExist.
	b3 := mustBucket(t, ctx, c, "bucket-three")
	if err := b3.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b3.Delete(ctx); !b2.IsNotExist(err) {
		t.Errorf("second delete: %v, want IsNotExist", err)
	}
	if _, err := c.Bucket(ctx, "bucket-three"); !b2.IsNotExist(err) {
		t.Errorf("Bucket after delete: %v", err)
	}
	// A non-empty bucket cannot be deleted.
	put(t, ctx, b, "f", []byte("x"), 0, nil)
	if err := b.Delete(ctx); err == nil {
		t.Error("deleted a non-empty bucket")
	}
}

func TestUploadDownload(t *testing.T) {
	ctx := testCtx(t)
	srv, u := startServer(t, Config{MinPartSize: 1000})
	c := newClient(t, ctx, u)
	b := mustBucket(t, ctx, c, "updown")

	files := map[string][]byte{
		"empty":                      {},
		"small.txt":                  []byte("hello, world"),
		"dir/with space+plus%.bin":   randBytes(5000),
		"large/one-chunk-and-a-byte": randBytes(1001),
		"large/multi":                randBytes(4500),
		"unicode/日本語 ünïcødé.txt":    []byte("unicode"),
	}
	for name, data := range files {
		put(t, ctx, b, name, data, 1000, &b2.Attrs{ContentType: "text/plain", Info: map[string]string{"Color": "blue green+%/"}})
	}
	for name, data := range files {
		if got := get(t, ctx, b, name); !bytes.Equal(got, data) {
			t.Errorf("%s: got %d bytes, want %d", name, len(got), len(data))
		}
		attrs, err := b.Object(name).Attrs(ctx)
		if err != nil {
			t.Fatalf("Attrs(%s): %v", name, err)
		}
		if attrs.Size != int64(len(data)) || attrs.ContentType != "text/plain" || attrs.Info["color"] != "blue green+%/" {
			t.Errorf("Attrs(%s) = %+v", name, attrs)
		}
		// Large files (at least one chunk) have no whole-file SHA1 on B2.
		sum := sha1.Sum(data)
		if want := hex.EncodeToString(sum[:]); len(data) >= 1000 && attrs.SHA1 != "none" || len(data) < 1000 && attrs.SHA1 != want {
			t.Errorf("Attrs(%s).SHA1 = %s", name, attrs.SHA1)
		}
	}
	if srv.Stats().Calls["b2_upload_part"] < 5 {
		t.Errorf("large files did not use parts: %v", srv.Stats().Calls)
	}

	// Streaming from a ReadSeeker sends hex_digits_at_end, small and large.
	for _, n := range []int{10, 3500} {
		data := randBytes(n)
		w := b.Object(fmt.Sprint("stream", n)).NewWriter(ctx)
		w.ChunkSize = 1000
		if _, err := w.ReadFrom(bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := get(t, ctx, b, fmt.Sprint("stream", n)); !bytes.Equal(got, data) {
			t.Errorf("stream%d: mismatch", n)
		}
	}

	// Ranged reads.
	data := files["large/multi"]
	for _, r := range [][2]int64{{0, 10}, {100, 1000}, {4400, 100}, {4400, 1000}, {0, 4500}, {4499, 1}} {
		rd := b.Object("large/multi").NewRangeReader(ctx, r[0], r[1])
		got, err := io.ReadAll(rd)
		rd.Close()
		if err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		end := min(r[0]+r[1], int64(len(data)))
		if !bytes.Equal(got, data[r[0]:end]) {
			t.Errorf("range %v: got %d bytes", r, len(got))
		}
	}
	// A reader with a small chunk size walks the file in ranges until 416.
	rd := b.Object("large/multi").NewReader(ctx)
	rd.ChunkSize = 700
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("chunked read: %d bytes, %v", len(got), err)
	}

	// Missing objects.
	if _, err := b.Object("nope").Attrs(ctx); !b2.IsNotExist(err) {
		t.Errorf("Attrs(nope) = %v, want IsNotExist", err)
	}
	if _, err := io.ReadAll(b.Object("nope").NewReader(ctx)); !b2.IsNotExist(err) {
		t.Errorf("read nope: %v, want IsNotExist", err)
	}
}

func TestListing(t *testing.T) {
	ctx := testCtx(t)
	_, u := startServer(t, Config{})
	c := newClient(t, ctx, u)
	b := mustBucket(t, ctx, c, "listing")

	names := []string{"a", "b/1", "b/2", "b/c/3", "c", "d/4", "e"}
	for _, n := range names {
		put(t, ctx, b, n, []byte(n), 0, nil)
	}
	put(t, ctx, b, "c", []byte("c2"), 0, nil) // second version
	if err := b.Object("e").Hide(ctx); err != nil {
		t.Fatal(err)
	}

	list := func(opts ...b2.ListOption) []string {
		t.Helper()
		var out []string
		it := b.List(ctx, append([]b2.ListOption{b2.ListPageSize(2)}, opts...)...)
		for it.Next() {
			o := it.Object()
			a, err := o.Attrs(ctx)
			st := "?"
			if err == nil {
				st = map[b2.ObjectState]string{b2.Uploaded: "u", b2.Hider: "h", b2.Folder: "f"}[a.Status]
			} else if strings.HasSuffix(o.Name(), "/") {
				st = "f"
			}
			out = append(out, o.Name()+":"+st)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("list: %v", err)
		}
		return out
	}
	check := func(what string, got []string, want string) {
		t.Helper()
		if g := strings.Join(got, " "); g != want {
			t.Errorf("%s:\n got %s\nwant %s", what, g, want)
		}
	}
	check("all", list(), "a:u b/1:u b/2:u b/c/3:u c:u d/4:u")
	check("prefix", list(b2.ListPrefix("b/")), "b/1:u b/2:u b/c/3:u")
	check("delimiter", list(b2.ListDelimiter("/")), "a:u b/:f c:u d/:f")
	check("prefix+delimiter", list(b2.ListPrefix("b/"), b2.ListDelimiter("/")), "b/1:u b/2:u b/c/:f")
	// Versions: newest first per name, hide markers included.
	var vers []string
	it := b.List(ctx, b2.ListHidden(), b2.ListPageSize(3))
	for it.Next() {
		vers = append(vers, it.Object().Name())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	check("versions", vers, "a b/1 b/2 b/c/3 c c d/4 e e")

	// Page size 1 over many files.
	for i := 0; i < 25; i++ {
		put(t, ctx, b, fmt.Sprintf("many/%02d", i), nil, 0, nil)
	}
	n := 0
	it = b.List(ctx, b2.ListPrefix("many/"), b2.ListPageSize(4))
	for it.Next() {
		if want := fmt.Sprintf("many/%02d", n); it.Object().Name() != want {
			t.Errorf("item %d = %s", n, it.Object().Name())
		}
		n++
	}
	if n != 25 || it.Err() != nil {
		t.Errorf("paged listing: %d items, %v", n, it.Err())
	}
}

func TestHideDelete(t *testing.T) {
	ctx := testCtx(t)
	_, u := startServer(t, Config{})
	c := newClient(t, ctx, u)
	b := mustBucket(t, ctx, c, "hidedel")
	put(t, ctx, b, "f", []byte("one"), 0, nil)
	put(t, ctx, b, "f", []byte("two"), 0, nil)
	if got := get(t, ctx, b, "f"); string(got) != "two" {
		t.Errorf("newest = %q", got)
	}
	o := b.Object("f")
	if err := o.Hide(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Object("f").Attrs(ctx); !b2.IsNotExist(err) {
		t.Errorf("hidden Attrs: %v", err)
	}
	if err := b.Object("f").Hide(ctx); err == nil {
		t.Error("hiding a hidden file worked")
	}
	if err := b.Reveal(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, ctx, b, "f"); string(got) != "two" {
		t.Errorf("revealed = %q", got)
	}
	// Delete removes the newest version; the older one becomes current.
	if err := b.Object("f").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, ctx, b, "f"); string(got) != "one" {
		t.Errorf("after delete = %q", got)
	}
	if err := b.Object("f").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Object("f").Attrs(ctx); !b2.IsNotExist(err) {
		t.Errorf("deleted Attrs: %v", err)
	}
}

func TestTokenExpiry(t *testing.T) {
	ctx := testCtx(t)
	srv, u := startServer(t, Config{TokenLifetime: 200 * time.Millisecond})
	c := newClient(t, ctx, u)
	b := mustBucket(t, ctx, c, "expiry")
	put(t, ctx, b, "f", []byte("data"), 0, nil)
	time.Sleep(300 * time.Millisecond)
	// Account token and the pooled upload URL are both stale now.
	put(t, ctx, b, "g", []byte("more"), 0, nil)
	if got := get(t, ctx, b, "f"); string(got) != "data" {
		t.Errorf("got %q", got)
	}
	if n := srv.Stats().Calls["b2_authorize_account"]; n < 2 {
		t.Errorf("client did not re-authorize: %d authorizations", n)
	}

	// Raw: an unknown token is bad_auth_token, a stale one expired_auth_token.
	resp := postJSON(t, u+"/b2api/v3/b2_list_buckets", "nonsense", `{}`)
	if resp.status != 401 || resp.code != "bad_auth_token" {
		t.Errorf("unknown token: %d %s", resp.status, resp.code)
	}
	tok := authorizeRaw(t, u, 3)["authorizationToken"].(string)
	time.Sleep(250 * time.Millisecond)
	resp = postJSON(t, u+"/b2api/v3/b2_list_buckets", tok, `{}`)
	if resp.status != 401 || resp.code != "expired_auth_token" {
		t.Errorf("stale token: %d %s", resp.status, resp.code)
	}
}

func TestTestModes(t *testing.T) {
	ctx := testCtx(t)
	srv, u := startServer(t, Config{MinPartSize: 1000})
	setup := newClient(t, ctx, u)
	mustBucket(t, ctx, setup, "testmodes")

	c := newClient(t, ctx, u, b2.FailSomeUploads(), b2.ExpireSomeAuthTokens())
	b, err := c.Bucket(ctx, "testmodes")
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetStats()
	for i := 0; i < 40; i++ {
		data := randBytes(100 + 310*(i%5)) // never exactly one chunk (TestOnePartLargeFileRefused)
		name := fmt.Sprint("f", i)
		// blazer's re-authorization races with its own concurrent part
		// uploads (B2.Update is unsynchronised), so upload one part at a time.
		putConc(t, ctx, b, name, data, 1000, 1, nil)
		if got := get(t, ctx, b, name); !bytes.Equal(got, data) {
			t.Fatalf("%s mismatch", name)
		}
		if i == 20 {
			time.Sleep(60 * time.Millisecond) // let tokens age into expiry
		}
	}
	st := srv.Stats()
	uploads := st.Calls["b2_upload_file"] + st.Calls["b2_upload_part"]
	if uploads <= 40 {
		t.Errorf("fail_some_uploads caused no retries: %v", st.Calls)
	}
	if st.Calls["b2_authorize_account"] < 2 {
		t.Errorf("expire_some_account_authorization_tokens caused no re-authorization: %v", st.Calls)
	}

	capped := newClient(t, ctx, u, b2.ForceCapExceeded())
	cb, err := capped.Bucket(ctx, "testmodes")
	if err != nil {
		t.Fatal(err)
	}
	w := cb.Object("capped").NewWriter(ctx)
	w.Write([]byte("x"))
	err = w.Close()
	if st, code := b2Status(err); st != 403 || code != "storage_cap_exceeded" {
		t.Errorf("cap exceeded upload: %v (%d %s)", err, st, code)
	}
}

func TestFaults(t *testing.T) {
	ctx := testCtx(t)
	srv, u := startServer(t, Config{})
	c := newClient(t, ctx, u)
	b := mustBucket(t, ctx, c, "faults")

	// 503 on every upload, bounded at two in a row.
	srv.SetFault("b2_upload_file", Fault{ErrorRate: 1, Status: 503, MaxConsecutive: 2})
	srv.ResetStats()
	put(t, ctx, b, "f", []byte("data"), 0, nil)
	if n := srv.Stats().Calls["b2_upload_file"]; n != 3 {
		t.Errorf("upload attempts = %d, want 3", n)
	}
	srv.SetFault("b2_upload_file", Fault{})

	// 429 with Retry-After on list_buckets; blazer waits and retries.
	srv.SetFault("b2_list_buckets", Fault{ErrorRate: 1, Status: 429, RetryAfter: 1, MaxConsecutive: 1})
	start := time.Now()
	if _, err := c.Bucket(ctx, "faults"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("Retry-After not honoured: %v", d)
	}
	srv.SetFault("b2_list_buckets", Fault{})

	// A dropped connection on a listing.
	srv.SetFault("b2_list_file_names", Fault{DropRate: 1, MaxConsecutive: 1})
	srv.ResetStats()
	it := b.List(ctx)
	n := 0
	for it.Next() {
		n++
	}
	if it.Err() != nil || n != 1 {
		t.Errorf("listing after drop: %d, %v", n, it.Err())
	}
	if got := srv.Stats().Calls["b2_list_file_names"]; got != 2 {
		t.Errorf("list calls = %d, want 2", got)
	}
	srv.SetFault("b2_list_file_names", Fault{})

	// Injected 401 on authorize becomes 503 so the client keeps trying.
	srv.SetFault("b2_authorize_account", Fault{ErrorRate: 1, Status: 401, MaxConsecutive: 1})
	newClient(t, ctx, u)
	srv.SetFault("b2_authorize_account", Fault{})

	// Per-minute rate limit.
	srv.SetFault("b2_get_file_info", Fault{PerMinute: 2, RetryAfter: 7})
	tok := authorizeRaw(t, u, 3)["authorizationToken"].(string)
	var codes []int
	for i := 0; i < 3; i++ {
		codes = append(codes, postJSON(t, u+"/b2api/v3/b2_get_file_info", tok, `{"fileId":"x"}`).status)
	}
	if fmt.Sprint(codes) != "[404 404 429]" {
		t.Errorf("rate limit statuses = %v", codes)
	}
	srv.SetFault("b2_get_file_info", Fault{})

	// Latency.
	srv.SetFault("*", Fault{Latency: 50 * time.Millisecond})
	start = time.Now()
	get(t, ctx, b, "f")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("latency not applied: %v", d)
	}
	srv.SetFault("*", Fault{})
}

func TestBadRequests(t *testing.T) {
	ctx := testCtx(t)
	_, u := startServer(t, Config{})
	if _, err := b2.NewClient(ctx, DefaultKeyID, "wrong", b2.APIBase(u)); err == nil {
		t.Fatal("bad credentials accepted")
	} else if st, _ := b2Status(err); st != 401 {
		t.Errorf("bad credentials: %v", err)
	}

	// The base package lets us send what b2 never would.
	acct, err := base.AuthorizeAccount(ctx, DefaultKeyID, DefaultKey, base.SetAPIBase(u))
	if err != nil {
		t.Fatal(err)
	}
	bk, err := acct.CreateBucket(ctx, "badreqs", "allPrivate", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.CreateBucket(ctx, "badreqs", "allPrivate", nil, nil); !codeIs(err, 400, "duplicate_bucket_name") {
		t.Errorf("duplicate bucket: %v", err)
	}
	if _, err := acct.CreateBucket(ctx, "x", "allPrivate", nil, nil); !codeIs(err, 400, "bad_request") {
		t.Errorf("short bucket name: %v", err)
	}
	up, err := bk.GetUploadURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("payload")
	sum := sha1.Sum(data)
	good := hex.EncodeToString(sum[:])
	_, err = up.UploadFile(ctx, bytes.NewReader(data), len(data), "f", "text/plain", strings.Repeat("0", 40), nil)
	if !codeIs(err, 400, "bad_request") {
		t.Errorf("wrong sha1: %v", err)
	}
	for _, name := range []string{"bad\x01name", "del\x7f", strings.Repeat("n", 1025), ""} {
		_, err = up.UploadFile(ctx, bytes.NewReader(data), len(data), name, "text/plain", good, nil)
		if !codeIs(err, 400, "bad_request") {
			t.Errorf("name %q: %v", name, err)
		}
	}
	_, err = up.UploadFile(ctx, bytes.NewReader(data), len(data), strings.Repeat("n", 1024), "text/plain", good, nil)
	if err != nil {
		t.Errorf("1024-byte name: %v", err)
	}
	_, err = up.UploadFile(ctx, bytes.NewReader(data), len(data), "ok", "text/plain", "do_not_verify", nil)
	if err != nil {
		t.Errorf("do_not_verify: %v", err)
	}
	fs, _, err := bk.ListFileNames(ctx, 10, "ok", "ok", "")
	if err != nil || len(fs) != 1 {
		t.Fatalf("list ok: %v %v", fs, err)
	}
	if fi, err := fs[0].GetFileInfo(ctx); err != nil || fi.SHA1 != "unverified:"+good {
		t.Errorf("do_not_verify sha1 = %+v, %v", fi, err)
	}

	// A wrong part SHA1 is refused on upload.
	lf, err := bk.StartLargeFile(ctx, "large", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := lf.GetUploadPartURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.UploadPart(ctx, bytes.NewReader(data), strings.Repeat("1", 40), len(data), 1); !codeIs(err, 400, "bad_request") {
		t.Errorf("wrong part sha1: %v", err)
	}
	if err := lf.CancelLargeFile(ctx); err != nil {
		t.Fatal(err)
	}

	// Unknown bucket: B2's message, which blazer maps to IsNotExist.
	if err := bk.DeleteBucket(ctx); !codeIs(err, 400, "cannot_delete_non_empty_bucket") {
		t.Errorf("delete non-empty: %v", err)
	}
	c := newClient(t, ctx, u)
	gone := mustBucket(t, ctx, c, "gone-bucket")
	if err := gone.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	it := gone.List(ctx)
	for it.Next() {
	}
	if !b2.IsNotExist(it.Err()) {
		t.Errorf("listing a deleted bucket: %v", it.Err())
	}
}

func codeIs(err error, status int, code string) bool {
	st, c := b2Status(err)
	return st == status && c == code
}

func TestConcurrentClients(t *testing.T) {
	ctx := testCtx(t)
	srv, u := startServer(t, Config{MinPartSize: 500})
	setup := newClient(t, ctx, u)
	mustBucket(t, ctx, setup, "concurrent")
	srv.SetFault("*", Fault{ErrorRate: 0.02, Status: 500, MaxConsecutive: 1})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := b2.NewClient(ctx, DefaultKeyID, DefaultKey, b2.APIBase(u))
			if err != nil {
				errs <- err
				return
			}
			b, err := c.Bucket(ctx, "concurrent")
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < 10; i++ {
				name := fmt.Sprintf("g%d/%d", g, i)
				data := randBytes(200 * i)
				w := b.Object(name).NewWriter(ctx)
				w.ChunkSize = 500
				w.ConcurrentUploads = 2
				if _, err := w.Write(data); err != nil {
					errs <- err
					return
				}
				if err := w.Close(); err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
				got, err := io.ReadAll(b.Object(name).NewReader(ctx))
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("%s: read back %d bytes, %v", name, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	srv.SetFault("*", Fault{})
	b, _ := setup.Bucket(ctx, "concurrent")
	var names []string
	it := b.List(ctx)
	for it.Next() {
		names = append(names, it.Object().Name())
	}
	if len(names) != 80 || !sort.StringsAreSorted(names) {
		t.Errorf("listed %d names", len(names))
	}
}
