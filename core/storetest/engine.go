package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/b2cfs/b2cfs/core"
)

// Increments runs workers goroutines, spread over groups (one per host),
// each adding rounds to one counter through Operate, and checks that none is
// lost. check is a group with a fresh view used to read the result.
func Increments(t *testing.T, groups []*core.Group, check *core.Group, workers, rounds int) {
	t.Helper()
	if failed := increments(t, groups, check, workers, rounds, false); failed > 0 {
		t.Fatalf("%d increments failed", failed)
	}
}

// FaultyIncrements is Increments on stores that inject faults: a worker
// whose Operate fails tries again until it has added rounds. The counter
// must end at exactly workers*rounds, so an increment reported as failed
// that happened all the same is caught as surely as a lost one. No
// failure may leave its outcome unknown (core.ErrUnknownOutcome). It
// returns how many Operate calls failed.
func FaultyIncrements(t *testing.T, groups []*core.Group, check *core.Group, workers, rounds int) int {
	t.Helper()
	return increments(t, groups, check, workers, rounds, true)
}

func increments(t *testing.T, groups []*core.Group, check *core.Group, workers, rounds int, retry bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(g *core.Group) {
			defer wg.Done()
			misses := 0
			for i := 0; i < rounds; {
				err := g.Operate(ctx, "counter", Increment)
				switch {
				case err == nil:
					i, misses = i+1, 0
					continue
				case errors.Is(err, core.ErrUnknownOutcome) || !retry || ctx.Err() != nil:
					errs <- err
					return
				case misses > 50:
					errs <- fmt.Errorf("50 increments in a row failed, last: %w", err)
					return
				}
				misses++
				failed.Add(1)
			}
		}(groups[w%len(groups)])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r, err := check.NewReader(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(workers * rounds); string(b) != want {
		t.Fatalf("counter = %s, want %s (%d increments reported failed)", b, want, failed.Load())
	}
	return int(failed.Load())
}

// LockedIncrements runs one worker per group (host), each adding rounds to
// a counter under the group's lock on lockName: lock, read, commit with the
// key read, unlock. Any step that fails is retried (the commit on a fresh
// read, still under the lock). The counter must end at exactly
// len(groups)*rounds, no commit under the lock may conflict (that would
// mean two holders), and the lock must end free. It returns how many steps
// failed and were retried.
func LockedIncrements(t *testing.T, groups []*core.Group, check *core.Group, lockName string, rounds int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	errs := make(chan error, len(groups))
	for _, g := range groups {
		wg.Add(1)
		go func(g *core.Group) {
			defer wg.Done()
			m := g.Mutex(ctx, lockName)
			retry := func(what string, f func() error) bool {
				for misses := 0; ; misses++ {
					err := f()
					if err == nil {
						return true
					}
					if errors.Is(err, core.ErrUnknownOutcome) || errors.Is(err, core.ErrConflict) || misses > 50 || ctx.Err() != nil {
						errs <- fmt.Errorf("%s: %w", what, err)
						return false
					}
					failed.Add(1)
				}
			}
			for i := 0; i < rounds; i++ {
				if !retry("lock", func() error { return m.LockContext(ctx, core.Exclusive) }) {
					return
				}
				ok := retry("increment under the lock", func() error {
					key, value, err := readObj(ctx, g, "counter")
					if err != nil {
						return err
					}
					out, err := Increment([]byte(value))
					if err != nil {
						return err
					}
					_, err = g.Commit(ctx, "counter", key, bytes.NewReader(out), int64(len(out)))
					return err
				})
				if !ok || !retry("unlock", func() error { return m.UnlockContext(ctx) }) {
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, value, err := readObj(ctx, check, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(len(groups) * rounds); value != want {
		t.Fatalf("counter = %s, want %s (%d steps failed and were retried)", value, want, failed.Load())
	}
	for {
		hs, err := check.Holders(ctx, lockName)
		if err == nil && len(hs) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("lock not free at the end: holders %+v, %v", hs, err)
		}
		time.Sleep(10 * time.Millisecond) // failed attempts are undone in the background
	}
	return int(failed.Load())
}

// Increment is an Operate function that adds one to a decimal counter
// (a missing object counts as 0).
func Increment(b []byte) ([]byte, error) {
	n := 0
	if len(b) > 0 {
		var err error
		if n, err = strconv.Atoi(string(b)); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

// casInput is one operation on the register of one object.
type casInput struct {
	obj   string
	write bool
	key   string // write: the key the writer read
	value string // write: the new value
}

// casOutput is what the operation saw.
type casOutput struct {
	failed bool   // write: failed for another reason than a conflict (no effect)
	ok     bool   // write: committed (false: ErrConflict)
	key    string // read: key read; write: new key
	value  string // read: value read
}

type register struct{ key, value string }

// casModel is a compare-and-swap register per object, keyed by version.
var casModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			o := op.Input.(casInput).obj
			by[o] = append(by[o], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return register{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(register), input.(casInput), output.(casOutput)
		if !in.write {
			return out.key == s.key && out.value == s.value, s
		}
		if out.failed {
			return true, s
		}
		if !out.ok {
			return s.key != in.key, s
		}
		return s.key == in.key, register{key: out.key, value: in.value}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(casInput), output.(casOutput)
		if !in.write {
			return fmt.Sprintf("read(%s) -> %q@%.6s", in.obj, out.value, out.key)
		}
		return fmt.Sprintf("cas(%s, %.6s, %q) -> %v", in.obj, in.key, in.value, out.ok)
	},
}

// Linearizable records a history of concurrent reads and compare-and-swap
// writes on two objects from several groups (hosts) and checks it against
// a compare-and-swap register model. Groups must read with IndexTTL < 0:
// reads within a TTL are stale by design. On stores that inject faults, a
// failed read is left out of the history and a write that failed for
// another reason than a conflict counts as one without effect, which the
// model checks; a write whose outcome stayed unknown fails the test.
func Linearizable(t *testing.T, groups []*core.Group, opsPerWorker int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var clock atomic.Int64
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	for w := 0; w < 2*len(groups); w++ {
		wg.Add(1)
		go func(w int, g *core.Group) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < opsPerWorker; i++ {
				obj := []string{"x", "y"}[rnd.IntN(2)]
				in := casInput{obj: obj}
				call := clock.Add(1)
				key, value, err := readObj(ctx, g, obj)
				ret := clock.Add(1)
				if err != nil && faulty(err) {
					continue
				}
				if err != nil {
					t.Errorf("read %s: %v", obj, err)
					return
				}
				op := porcupine.Operation{ClientId: w, Input: in, Call: call, Output: casOutput{key: key, value: value}, Return: ret}
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
				if rnd.IntN(3) == 0 {
					continue
				}
				in = casInput{obj: obj, write: true, key: key, value: fmt.Sprintf("w%d-%d", w, i)}
				call = clock.Add(1)
				nk, err := g.Commit(ctx, obj, key, bytes.NewReader([]byte(in.value)), int64(len(in.value)))
				ret = clock.Add(1)
				if err != nil && !errors.Is(err, core.ErrConflict) && !faulty(err) {
					t.Errorf("commit %s: %v", obj, err)
					return
				}
				out := casOutput{ok: err == nil, failed: err != nil && !errors.Is(err, core.ErrConflict), key: nk}
				op = porcupine.Operation{ClientId: w, Input: in, Call: call, Output: out, Return: ret}
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}(w, groups[w%len(groups)])
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	writes := 0
	for _, op := range history {
		if op.Input.(casInput).write && op.Output.(casOutput).ok {
			writes++
		}
	}
	if writes == 0 {
		t.Fatal("no write committed: the history proves nothing")
	}
	res, _ := porcupine.CheckOperationsVerbose(casModel, history, time.Minute)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations (%d committed writes) is not linearizable (%v)", len(history), writes, res)
	}
	t.Logf("%d operations, %d committed writes: linearizable", len(history), writes)
}

// faulty reports whether err is an injected fault the engine may report:
// B2 unavailable, with a known outcome.
func faulty(err error) bool {
	return errors.Is(err, core.ErrUnavailable) && !errors.Is(err, core.ErrUnknownOutcome)
}

func readObj(ctx context.Context, g *core.Group, obj string) (key, value string, err error) {
	r, err := g.NewReader(ctx, obj)
	if errors.Is(err, core.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return r.Key, string(b), err
}
