package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func newCache(t *testing.T, max int64) *Cache {
	t.Helper()
	c, err := New(t.TempDir(), max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func fillWith(data []byte, calls *atomic.Int32) FillFunc {
	return func(ctx context.Context, w io.Writer) error {
		calls.Add(1)
		_, err := w.Write(data)
		return err
	}
}

func TestReadWhileFilling(t *testing.T) {
	c := newCache(t, 1<<20)
	step := make(chan struct{})
	v := c.Open("f", "k1", func(ctx context.Context, w io.Writer) error {
		w.Write([]byte("hello "))
		<-step
		w.Write([]byte("world"))
		return nil
	})
	defer v.Release()
	buf := make([]byte, 5)
	if n, err := v.ReadAt(t.Context(), buf, 0); n != 5 || err != nil || string(buf) != "hello" {
		t.Fatalf("ReadAt of filled bytes: %d %v %q", n, err, buf)
	}
	done := make(chan string)
	go func() {
		b := make([]byte, 20)
		n, err := v.ReadAt(context.Background(), b, 6)
		if err != io.EOF {
			done <- "err " + err.Error()
		}
		done <- string(b[:n])
	}()
	close(step)
	if got := <-done; got != "world" {
		t.Fatalf("read past the filled part: %q", got)
	}
}

func TestCancelledWait(t *testing.T) {
	c := newCache(t, 1<<20)
	block := make(chan struct{})
	defer close(block)
	v := c.Open("f", "k", func(ctx context.Context, w io.Writer) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return ctx.Err()
	})
	defer v.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.ReadAt(ctx, make([]byte, 1), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestFilledOnce(t *testing.T) {
	c := newCache(t, 1<<20)
	var calls atomic.Int32
	for range 3 {
		v := c.Open("f", "k", fillWith([]byte("data"), &calls))
		if _, err := v.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		v.Release()
	}
	if calls.Load() != 1 {
		t.Fatalf("filled %d times, want once", calls.Load())
	}
	v := c.Open("f", "k2", fillWith([]byte("other"), &calls))
	defer v.Release()
	v.Wait(t.Context())
	if calls.Load() != 2 {
		t.Fatal("another key must be filled on its own")
	}
}

func TestFailedFillRetried(t *testing.T) {
	c := newCache(t, 1<<20)
	v := c.Open("f", "k", func(ctx context.Context, w io.Writer) error { return errors.New("boom") })
	if _, err := v.Wait(t.Context()); err == nil {
		t.Fatal("fill error not reported")
	}
	v.Release()
	var calls atomic.Int32
	v = c.Open("f", "k", fillWith([]byte("ok"), &calls))
	defer v.Release()
	if n, err := v.Wait(t.Context()); err != nil || n != 2 || calls.Load() != 1 {
		t.Fatalf("second open: %d %v calls %d", n, err, calls.Load())
	}
}

func TestEvictionSparesHeld(t *testing.T) {
	c := newCache(t, 10)
	var calls atomic.Int32
	held := c.Open("a", "k", fillWith(bytes.Repeat([]byte("a"), 8), &calls))
	held.Wait(t.Context())
	other := c.Open("b", "k", fillWith(bytes.Repeat([]byte("b"), 8), &calls))
	other.Wait(t.Context())
	other.Release()
	// Over budget: b is evicted, a is held and stays readable.
	if used := c.Used(); used != 8 {
		t.Fatalf("used %d bytes, want 8 (only the held version)", used)
	}
	buf := make([]byte, 8)
	if _, err := held.ReadAt(t.Context(), buf, 0); err != nil || string(buf) != "aaaaaaaa" {
		t.Fatalf("held version: %q %v", buf, err)
	}
	held.Release()
	v := c.Open("b", "k", fillWith([]byte("bbbbbbbb"), &calls))
	v.Wait(t.Context())
	v.Release()
	if calls.Load() != 3 {
		t.Fatalf("fills: %d, want 3 (b refilled after eviction)", calls.Load())
	}
	ents, _ := os.ReadDir(filepath.Join(c.Dir(), "versions"))
	if len(ents) != 1 {
		t.Fatalf("%d files in versions/, want 1", len(ents))
	}
}

func TestPutKeepDiscard(t *testing.T) {
	c := newCache(t, 1<<20)
	f, err := c.NewFile()
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("committed")
	v, err := c.Put("f", "k", f, 9)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	v2 := c.Open("f", "k", fillWith(nil, &calls))
	buf := make([]byte, 9)
	if _, err := v2.ReadAt(t.Context(), buf, 0); err != nil || string(buf) != "committed" || calls.Load() != 0 {
		t.Fatalf("Put version: %q %v, fills %d", buf, err, calls.Load())
	}
	v.Release()
	v2.Release()

	f, _ = c.NewFile()
	f.WriteString("rejected")
	path, err := c.Keep(f, "dir/name")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "rejected" || filepath.Dir(path) != c.RecoveryDir() {
		t.Fatalf("kept %s: %q", path, b)
	}
	f, _ = c.NewFile()
	c.Discard(f)
	if ents, _ := os.ReadDir(filepath.Join(c.Dir(), "dirty")); len(ents) != 0 {
		t.Fatalf("dirty/ not empty: %v", ents)
	}
}

func TestLeftoversRecovered(t *testing.T) {
	dir := t.TempDir()
	c, err := New(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := c.NewFile()
	f.WriteString("unsaved")
	f.Close() // the process dies here
	if _, err := New(dir, 1<<20); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "recovery"))
	if len(ents) != 1 {
		t.Fatalf("recovery/ has %d files, want the leftover", len(ents))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "recovery", ents[0].Name())); string(b) != "unsaved" {
		t.Fatalf("leftover content %q", b)
	}
}

func TestStatsAndKeepWith(t *testing.T) {
	c, err := New(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	v := c.Open("f", "k", fillWith([]byte("hello"), &calls))
	if _, err := v.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	v2 := c.Open("f", "k", fillWith(nil, &calls))
	v.Release()
	v2.Release()
	if s := c.Stats(); s.Hits != 1 || s.Misses != 1 || s.FilledBytes != 5 || s.UsedBytes != 5 {
		t.Errorf("stats %+v, want 1 hit, 1 miss, 5 bytes filled and used", s)
	}

	f, _ := c.NewFile()
	f.WriteString("rejected")
	path, err := c.KeepWith(f, Kept{Group: "g", Name: "dir/name", Base: "b", Reason: "EBUSY"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path + KeptSuffix)
	if err != nil {
		t.Fatal(err)
	}
	var k Kept
	if err := json.Unmarshal(b, &k); err != nil || k.Name != "dir/name" || k.Group != "g" || k.Size != 8 || k.Time.IsZero() || k.Reason != "EBUSY" {
		t.Errorf("description %s: %+v %v", b, k, err)
	}
}
