package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// requireTool skips a test without the command cmd (Debian package pkg),
// or fails it with B2CFS_REQUIRE_FUSE=1 (as in CI, which installs it).
func requireTool(tb testing.TB, cmd, pkg string) {
	tb.Helper()
	if _, err := exec.LookPath(cmd); err == nil {
		return
	}
	if os.Getenv("B2CFS_REQUIRE_FUSE") == "1" {
		tb.Fatalf("%s required (B2CFS_REQUIRE_FUSE=1) but not installed (package %s)", cmd, pkg)
	}
	tb.Skipf("%s not installed (package %s)", cmd, pkg)
}

func requireSqlite(tb testing.TB) { requireTool(tb, "sqlite3", "sqlite3") }

// sqlite runs the sqlite3 command on db with script on stdin and returns
// its output.
func sqlite(tb testing.TB, db, script string) (string, error) {
	tb.Helper()
	cmd := exec.Command("sqlite3", "-batch", "-bail", db)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestSqliteTwoHosts: sqlite3 with its default (rollback journal) locking
// on one database from two mounts at once. Each host inserts 50 rows, one
// transaction each, from one sqlite3 process that keeps the database open
// throughout, with a busy timeout: sqlite's byte-range locks map onto the
// file's distributed lock, so its transactions exclude each other across
// hosts and every row lands. Both hosts then count 100 rows, 50 from each,
// and PRAGMA integrity_check answers ok.
//
// Reads through a descriptor opened before another host's commit see that
// commit only once the file's state is refreshed when the lock is taken
// (lockTaken, package fs).
func TestSqliteTwoHosts(t *testing.T) {
	requireSqlite(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("sql")
	if out, err := sqlite(t, a.path("db"), `CREATE TABLE t(id INTEGER PRIMARY KEY, host TEXT NOT NULL, n INTEGER NOT NULL);`); err != nil {
		t.Fatalf("create table: %v\n%s", err, out)
	}
	b := e.mount("sql")
	const rows = 50
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, h := range []struct {
		name string
		m    *mount
	}{{"a", a}, {"b", b}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var script strings.Builder
			script.WriteString(".timeout 60000\n")
			for i := range rows {
				fmt.Fprintf(&script, "INSERT INTO t(host, n) VALUES('%s', %d);\n", h.name, i)
				// A pause with the database open and unlocked lets the
				// other host in, so that the hosts' transactions
				// interleave (sqlite's busy handler alone lets one host
				// win every time).
				script.WriteString(".shell sleep 0.03\n")
			}
			hostStart := time.Now()
			if out, err := sqlite(t, h.m.path("db"), script.String()); err != nil {
				errs <- fmt.Errorf("host %s: sqlite3: %v\n%s", h.name, err, out)
				return
			}
			t.Logf("host %s: %d inserts in %v", h.name, rows, time.Since(hostStart))
		}()
	}
	wg.Wait()
	close(errs)
	failed := false
	for err := range errs {
		t.Error(err)
		failed = true
	}
	took := time.Since(start)
	for _, m := range []*mount{a, b} {
		out, err := sqlite(t, m.path("db"), ".timeout 60000\nSELECT count(*), sum(host = 'a'), sum(host = 'b'), count(DISTINCT host || '/' || n) FROM t;\nPRAGMA integrity_check;\n")
		if err != nil {
			t.Fatalf("%s: check: %v\n%s", m.dir, err, out)
		}
		if want := fmt.Sprintf("%d|%d|%d|%d\nok", 2*rows, rows, rows, 2*rows); out != want {
			t.Errorf("%s: rows (total|from a|from b|distinct) and integrity_check:\n%s\nwant:\n%s", m.dir, out, want)
			failed = true
		}
	}
	if failed {
		return
	}
	// How often the writer changed along the rows: 1 when one host wrote
	// all its rows before the other, more when their transactions
	// interleaved.
	out, err := sqlite(t, a.path("db"), "SELECT count(*) FROM t x JOIN t y ON y.id = x.id + 1 WHERE x.host != y.host;\n")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%d rows from two hosts in %v (%.0f ms per transaction); the writing host changed %s times along the rows",
		2*rows, took, float64(took.Milliseconds())/(2*rows), out)
}
