package b2emu

import (
	"bytes"
	"strings"
	"testing"

	"github.com/Backblaze/blazer/b2"
)

func TestDirPersistence(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	s1, err := New(Config{Dir: dir, MinPartSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s1.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, ctx, u)
	b := mustBucket(t, ctx, c, "persisted")
	if err := b.Update(ctx, &b2.BucketAttrs{Info: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	small, large := []byte("small file"), randBytes(3500)
	put(t, ctx, b, "small", small, 0, nil)
	put(t, ctx, b, "large", large, 1000, nil)
	put(t, ctx, b, "hidden", []byte("h"), 0, nil)
	if err := b.Object("hidden").Hide(ctx); err != nil {
		t.Fatal(err)
	}
	// An unfinished large file survives too.
	a := authorizeRaw(t, u, 3)
	e1 := &rawEnv{t: t, u: u, tok: a["authorizationToken"].(string)}
	bl := e1.call("b2_list_buckets", `{"accountId":"`+a["accountId"].(string)+`"}`)
	bucketID := bl.body["buckets"].([]any)[0].(map[string]any)["bucketId"].(string)
	if r := e1.call("b2_start_large_file", `{"bucketId":"`+bucketID+`","fileName":"unfinished","contentType":"text/plain"}`); r.status != 200 {
		t.Fatalf("start: %s", r.raw)
	}
	s1.Close()

	s2, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	u2, err := s2.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c2 := newClient(t, ctx, u2)
	b2h, err := c2.Bucket(ctx, "persisted")
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := b2h.Attrs(ctx)
	if err != nil || attrs.Info["k"] != "v" {
		t.Fatalf("attrs after restart: %+v %v", attrs, err)
	}
	if got := get(t, ctx, b2h, "small"); !bytes.Equal(got, small) {
		t.Errorf("small = %q", got)
	}
	if got := get(t, ctx, b2h, "large"); !bytes.Equal(got, large) {
		t.Errorf("large: %d bytes", len(got))
	}
	if _, err := b2h.Object("hidden").Attrs(ctx); !b2.IsNotExist(err) {
		t.Errorf("hidden after restart: %v", err)
	}
	// Revisions carried over: a handle from before the update would conflict.
	raw := authorizeRaw(t, u2, 3)
	e := &rawEnv{t: t, u: u2, tok: raw["authorizationToken"].(string)}
	r := e.call("b2_list_buckets", `{"accountId":"`+raw["accountId"].(string)+`"}`)
	bk := r.body["buckets"].([]any)[0].(map[string]any)
	if bk["revision"].(float64) != 2 {
		t.Errorf("revision after restart = %v", bk["revision"])
	}
	r = e.call("b2_update_bucket", `{"bucketId":"`+bk["bucketId"].(string)+`","ifRevisionIs":1,"bucketInfo":{"k":"w"}}`)
	if r.status != 409 || r.code != "conflict" {
		t.Errorf("stale update after restart: %d %s", r.status, r.raw)
	}
	r = e.call("b2_list_unfinished_large_files", `{"bucketId":"`+bucketID+`"}`)
	if fs := r.body["files"].([]any); len(fs) != 1 || fs[0].(map[string]any)["fileName"] != "unfinished" {
		t.Errorf("unfinished after restart: %s", r.raw)
	}
	// New uploads keep working and IDs do not collide.
	put(t, ctx, b2h, "after", []byte("after"), 0, nil)
	it := b2h.List(ctx, b2.ListHidden())
	var names []string
	for it.Next() {
		names = append(names, it.Object().Name())
	}
	if got := strings.Join(names, " "); got != "after hidden hidden large small" {
		t.Errorf("versions after restart: %s", got)
	}
}

func TestCloseListen(t *testing.T) {
	ctx := testCtx(t)
	s, u := startServer(t, Config{})
	c := newClient(t, ctx, u)
	b := mustBucket(t, ctx, c, "outage")
	put(t, ctx, b, "f", []byte("before"), 0, nil)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(u, "http://")
	if _, err := s.Listen(addr); err != nil {
		t.Fatalf("Listen again: %v", err)
	}
	if s.URL() != u {
		t.Errorf("URL = %s, want %s", s.URL(), u)
	}
	if got := get(t, ctx, b, "f"); string(got) != "before" {
		t.Errorf("after restart: %q", got)
	}
	put(t, ctx, b, "g", []byte("after"), 0, nil)

	// While closed, a client waits; once back, the call completes.
	s.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.Bucket(ctx, "outage")
		done <- err
	}()
	if _, err := s.Listen(addr); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("call across outage: %v", err)
	}
}
