package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	blazer "github.com/Backblaze/blazer/b2"

	"github.com/b2cfs/b2cfs/b2emu"
)

// BenchmarkWorkloads runs everyday workloads once each on a mount, with a
// latency added to every B2 call, and on a plain local directory (the
// floor), and prints one markdown table of times and B2 calls:
//
//	go test ./integration -run '^$' -bench Workloads -benchtime 1x -v
//
// B2CFS_LATENCY sets the latency (a Go duration, default 30ms) and
// B2CFS_BENCH_BIG the size of the sequential workload (bytes, or with a
// KiB, MiB or GiB suffix; default 256MiB). Each workload has its own
// emulator and mounts; the calls counted are those of the workload alone,
// not of its fixtures. A workload runs once whatever b.N is: later rounds
// report the figures of the first.
func BenchmarkWorkloads(b *testing.B) {
	lat := workloadLatency(b)
	big := bigSize(b)
	workloads := []struct {
		key, name string
		run       func(b *testing.B, e *env) wlResult
	}{
		{"sed", "20 × `sed -i 's/a/b/' f` on a 200-byte file", wlSed},
		{"append", "20 × `echo line >> log`", wlAppend},
		{"tar", "`tar x` of 100 small files", wlTar},
		{"parallel", "8 parallel writers × 5 new files", wlParallel},
		{"sequential", "1 writer × 40 new files", wlSequential},
		{"hosts", "4 mounts × 5 new files, all at once", wlHosts},
		{"visible", "a change visible on the other host", wlVisible},
		{"flock", "flock-protected increments across 2 mounts", wlFlock},
		{"big", fmt.Sprintf("sequential %s write and read", sizeString(big)), func(b *testing.B, e *env) wlResult { return wlBig(b, e, big) }},
	}
	var rows []wlRow
	for _, w := range workloads {
		var res *wlResult
		ok := b.Run(w.key, func(b *testing.B) {
			if res == nil {
				e := newEnv(b, b2emu.Config{})
				e.emu.SetFault("*", b2emu.Fault{Latency: lat})
				r := w.run(b, e)
				res = &r
				b.Logf("calls: %s", callList(r.calls))
			}
			res.report(b)
		})
		rows = append(rows, wlRow{name: w.name, res: res, failed: !ok})
	}
	fmt.Print(workloadTable(lat, rows))
}

// wlResult is what one workload measured.
type wlResult struct {
	fs    time.Duration    // on the mount
	calls map[string]int64 // B2 calls of the workload on the mount
	local time.Duration    // on a local directory; 0: not applicable
	note  string           // workload-specific figures for the table

	fsCell, localCell string             // overrides of the time cells
	metrics           map[string]float64 // extra metrics, by unit
}

// wlRow is a line of the table: res is nil if the workload did not run
// to its end.
type wlRow struct {
	name   string
	res    *wlResult
	failed bool
}

func (r *wlResult) report(b *testing.B) {
	b.ReportMetric(float64(r.fs.Milliseconds()), "b2cfs-ms")
	if r.local > 0 {
		b.ReportMetric(float64(r.local.Microseconds())/1000, "local-ms")
	}
	b.ReportMetric(float64(totalCalls(r.calls)), "calls")
	b.ReportMetric(float64(r.calls["b2_update_bucket"]), "updates")
	b.ReportMetric(float64(r.calls["b2_list_buckets"]), "listings")
	b.ReportMetric(float64(uploads(r.calls)), "uploads")
	for unit, v := range r.metrics {
		b.ReportMetric(v, unit)
	}
}

func workloadTable(lat time.Duration, rows []wlRow) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nb2cfs workloads, %v added to every B2 call; B2 calls as total (b2_update_bucket / b2_list_buckets / uploads)\n\n", lat)
	sb.WriteString("| workload | b2cfs time | b2cfs B2 calls | local dir time | notes |\n")
	sb.WriteString("| --- | ---: | ---: | ---: | --- |\n")
	for _, row := range rows {
		r := row.res
		if r == nil {
			status := "not run"
			if row.failed {
				status = "FAILED"
			}
			fmt.Fprintf(&sb, "| %s | %s | | | |\n", row.name, status)
			continue
		}
		fsCell, localCell := r.fsCell, r.localCell
		if fsCell == "" {
			fsCell = roundDur(r.fs)
		}
		if localCell == "" {
			localCell = "—"
			if r.local > 0 {
				localCell = roundDur(r.local)
			}
		}
		fmt.Fprintf(&sb, "| %s | %s | %d (%d / %d / %d) | %s | %s |\n", row.name, fsCell,
			totalCalls(r.calls), r.calls["b2_update_bucket"], r.calls["b2_list_buckets"], uploads(r.calls),
			localCell, r.note)
	}
	return sb.String()
}

// wlSed: 20 sequential "sed -i 's/a/b/' f" on a 200-byte file.
func wlSed(b *testing.B, e *env) wlResult {
	const n = 20
	orig := strings.Repeat("a", 40) + strings.Repeat("x", 159) + "\n"
	want := strings.Repeat("b", n) + orig[n:]
	run := func(dir string) time.Duration {
		writeFile(b, filepath.Join(dir, "f"), orig)
		start := time.Now()
		for i := range n {
			if err := runCmd(dir, "sed", "-i", "s/a/b/", "f"); err != nil {
				b.Fatalf("sed run %d of %d: %v", i+1, n, err)
			}
		}
		d := time.Since(start)
		checkFile(b, filepath.Join(dir, "f"), want)
		return d
	}
	m := e.mount("sed")
	return e.measure(func() time.Duration { return run(m.dir) }, func() time.Duration { return run(b.TempDir()) }, n)
}

// wlAppend: 20 sequential "echo line >> log" by sh.
func wlAppend(b *testing.B, e *env) wlResult {
	const n = 20
	run := func(dir string) time.Duration {
		writeFile(b, filepath.Join(dir, "log"), "")
		start := time.Now()
		for i := range n {
			if err := runCmd(dir, "sh", "-c", "echo line >> log"); err != nil {
				b.Fatalf("append %d of %d: %v", i+1, n, err)
			}
		}
		d := time.Since(start)
		checkFile(b, filepath.Join(dir, "log"), strings.Repeat("line\n", n))
		return d
	}
	m := e.mount("append")
	return e.measure(func() time.Duration { return run(m.dir) }, func() time.Duration { return run(b.TempDir()) }, n)
}

// wlTar: "tar -xf" of 100 files of 100 to 2000 bytes in 5 directories,
// into an existing directory.
func wlTar(b *testing.B, e *env) wlResult {
	src := b.TempDir()
	rnd := rand.New(rand.NewPCG(1, 2))
	files := map[string][]byte{}
	for i := range 100 {
		name := fmt.Sprintf("d%d/f%03d", i%5, i)
		data := make([]byte, 100+rnd.IntN(1901))
		for j := range data {
			data[j] = 'a' + byte(rnd.IntN(26))
		}
		files[name] = data
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755); err != nil {
			b.Fatal(err)
		}
		writeFile(b, filepath.Join(src, name), string(data))
	}
	archive := filepath.Join(b.TempDir(), "files.tar")
	runIn(b, src, "tar", "-cf", archive, ".")
	run := func(dir string) time.Duration {
		sub := filepath.Join(dir, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		runIn(b, dir, "tar", "-xf", archive, "-C", sub)
		d := time.Since(start)
		for name, data := range files {
			checkFile(b, filepath.Join(sub, name), string(data))
		}
		return d
	}
	m := e.mount("tarx")
	return e.measure(func() time.Duration { return run(m.dir) }, func() time.Duration { return run(b.TempDir()) }, len(files))
}

// wlParallel: 8 goroutines write 5 new files of 100 bytes each.
func wlParallel(b *testing.B, e *env) wlResult {
	m := e.mount("parallel")
	return e.measure(func() time.Duration { return writeMany(b, []string{m.dir}, 8, 5) },
		func() time.Duration { return writeMany(b, []string{b.TempDir()}, 8, 5) }, 40)
}

// wlSequential: one goroutine writes 40 new files of 100 bytes.
func wlSequential(b *testing.B, e *env) wlResult {
	m := e.mount("sequential")
	return e.measure(func() time.Duration { return writeMany(b, []string{m.dir}, 1, 40) },
		func() time.Duration { return writeMany(b, []string{b.TempDir()}, 1, 40) }, 40)
}

// wlHosts: 4 mounts of one group, each with 5 goroutines writing a new
// file each, all started together; locally 20 goroutines in one
// directory.
func wlHosts(b *testing.B, e *env) wlResult {
	var dirs []string
	for range 4 {
		dirs = append(dirs, e.mount("hosts").dir)
	}
	r := e.measure(func() time.Duration { return writeMany(b, dirs, 5, 1) },
		func() time.Duration { return writeMany(b, []string{b.TempDir()}, 20, 1) }, 20)
	// Every commit is in B2, whichever host made it.
	g := e.group("hosts")
	for i := range dirs {
		for w := range 5 {
			name := fmt.Sprintf("h%d-w%d-f0", i, w)
			if got, err := object(b, g, name); err != nil || got != fileContent(name) {
				b.Fatalf("B2 holds %q (%v) for %s", got, err, name)
			}
		}
	}
	return r
}

// wlVisible: mount A replaces a file that mount B has read; the time is
// from A's write until B reads the new content (polling every 10 ms).
func wlVisible(b *testing.B, e *env) wlResult {
	a, other := e.mount("visible"), e.mount("visible")
	writeFile(b, a.path("f"), "old\n")
	waitContent(b, other.path("f"), "old\n", 30*time.Second, 10*time.Millisecond)
	var written time.Duration
	r := e.measure(func() time.Duration {
		start := time.Now()
		writeFile(b, a.path("f"), "new\n")
		written = time.Since(start)
		waitContent(b, other.path("f"), "new\n", 30*time.Second, 10*time.Millisecond)
		return time.Since(start)
	}, nil, 1)
	r.note = fmt.Sprintf("A's write returned after %s", roundDur(written))
	r.metrics["write-ms"] = float64(written.Milliseconds())
	return r
}

// wlFlock: one process on each of two mounts makes 20 increments of a
// counter under flock(1); locally two processes in one directory.
func wlFlock(b *testing.B, e *env) wlResult {
	requireFlock(b)
	const each = 20
	a, other := e.mount("flock"), e.mount("flock")
	writeFile(b, a.path("counter"), "0\n")
	waitContent(b, other.path("counter"), "0\n", 30*time.Second, 10*time.Millisecond)
	local := b.TempDir()
	writeFile(b, filepath.Join(local, "counter"), "0\n")
	r := e.measure(func() time.Duration { return flockIncrements(b, []string{a.dir, other.dir}, each) },
		func() time.Duration { return flockIncrements(b, []string{local, local}, each) }, 2*each)
	want := strconv.Itoa(2 * each)
	// Through B2: a mount's view may be index_ttl old.
	if got, err := object(b, e.group("flock"), "counter"); err != nil || strings.TrimSpace(got) != want {
		b.Fatalf("B2 holds counter %q (%v) after %s increments: lost update", got, err, want)
	}
	checkFile(b, filepath.Join(local, "counter"), want+"\n")
	fsRate, localRate := 2*each/r.fs.Seconds(), 2*each/r.local.Seconds()
	r.note = fmt.Sprintf("%.1f incr/s (local %.0f incr/s)", fsRate, localRate)
	r.metrics["b2cfs-incr/s"] = fsRate
	r.metrics["local-incr/s"] = localRate
	return r
}

// flockIncrements runs one process per directory, each making n
// increments of dir/counter under flock(1), and returns when all are done.
func flockIncrements(b *testing.B, dirs []string, n int) time.Duration {
	script := fmt.Sprintf(`i=0
while [ $i -lt %d ]; do
	flock counter -c 'n=$(cat counter); echo $((n+1)) > counter' || exit 1
	i=$((i+1))
done`, n)
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, dir := range dirs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", script)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("increments in %s: %v\n%s", dir, err, out)
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return d
}

// wlBig: size bytes written through one mount and read through another
// that has nothing cached, then with blazer's Writer and Reader on the
// same emulator.
func wlBig(b *testing.B, e *env, size int64) wlResult {
	ctx := context.Background()
	a := e.mount("big")
	e.emu.ResetStats()
	start := time.Now()
	wsum := writeStream(b, a.path("big"), size)
	fsW := time.Since(start)
	calls := e.calls()

	r := e.mount("big") // a fresh host: nothing cached
	e.emu.ResetStats()
	start = time.Now()
	if rsum := readStream(b, r.path("big"), size); rsum != wsum {
		b.Fatalf("read through the mount: checksum %08x, wrote %08x", rsum, wsum)
	}
	fsR := time.Since(start)
	for k, v := range e.calls() {
		calls[k] += v
	}

	client, err := blazer.NewClient(ctx, b2emu.DefaultKeyID, b2emu.DefaultKey, blazer.APIBase(e.url))
	if err != nil {
		b.Fatal(err)
	}
	bk, err := client.Bucket(ctx, bucket)
	if err != nil {
		b.Fatal(err)
	}
	e.emu.ResetStats()
	start = time.Now()
	w := bk.Object("direct/big").NewWriter(ctx)
	if err := copyChunks(w, newStream(), size); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	blW := time.Since(start)
	start = time.Now()
	br := bk.Object("direct/big").NewReader(ctx)
	bsum, n, err := checksum(br)
	br.Close()
	if err != nil || n != size || bsum != wsum {
		b.Fatalf("blazer read %d bytes, checksum %08x (want %08x): %v", n, bsum, wsum, err)
	}
	blR := time.Since(start)
	blCalls := totalCalls(e.calls())

	local := filepath.Join(b.TempDir(), "big")
	start = time.Now()
	writeStream(b, local, size)
	locW := time.Since(start)
	start = time.Now()
	readStream(b, local, size)
	locR := time.Since(start)

	mib := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	res := wlResult{
		fs: fsW + fsR, calls: calls, local: locW + locR,
		fsCell:    fmt.Sprintf("W %s (%.1f MiB/s), R %s (%.1f MiB/s)", roundDur(fsW), mib(fsW), roundDur(fsR), mib(fsR)),
		localCell: fmt.Sprintf("W %s, R %s (page cache)", roundDur(locW), roundDur(locR)),
		note: fmt.Sprintf("blazer W %.1f MiB/s, R %.1f MiB/s (%d calls); b2cfs/blazer: W %.2f, R %.2f",
			mib(blW), mib(blR), blCalls, blW.Seconds()/fsW.Seconds(), blR.Seconds()/fsR.Seconds()),
		metrics: map[string]float64{
			"b2cfs-write-MiB/s":  mib(fsW),
			"b2cfs-read-MiB/s":   mib(fsR),
			"blazer-write-MiB/s": mib(blW),
			"blazer-read-MiB/s":  mib(blR),
			"write-ratio":        blW.Seconds() / fsW.Seconds(),
			"read-ratio":         blR.Seconds() / fsR.Seconds(),
		},
	}
	return res
}

// measure runs onMount with the emulator's counters reset, then onLocal
// (nil: not applicable). ops is the number of operations, for the note.
func (e *env) measure(onMount, onLocal func() time.Duration, ops int) wlResult {
	e.emu.ResetStats()
	r := wlResult{fs: onMount(), metrics: map[string]float64{}}
	r.calls = e.calls()
	if onLocal != nil {
		r.local = onLocal()
	}
	if ops > 1 {
		r.note = fmt.Sprintf("%.0f ms and %.1f calls per op", float64(r.fs.Milliseconds())/float64(ops), float64(totalCalls(r.calls))/float64(ops))
	}
	return r
}

// writeMany starts perDir goroutines in each of dirs, all at once, each
// writing files new files of 100 bytes in turn, and returns when all are
// done.
func writeMany(b *testing.B, dirs []string, perDir, files int) time.Duration {
	var wg sync.WaitGroup
	errs := make(chan error, len(dirs)*perDir*files)
	gate := make(chan struct{})
	for i, dir := range dirs {
		for w := range perDir {
			wg.Go(func() {
				<-gate
				for f := range files {
					name := fmt.Sprintf("h%d-w%d-f%d", i, w, f)
					if err := os.WriteFile(filepath.Join(dir, name), []byte(fileContent(name)), 0o644); err != nil {
						errs <- err
					}
				}
			})
		}
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	d := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	for i, dir := range dirs {
		for w := range perDir {
			for f := range files {
				name := fmt.Sprintf("h%d-w%d-f%d", i, w, f)
				checkFile(b, filepath.Join(dir, name), fileContent(name))
			}
		}
	}
	return d
}

// fileContent is the 100 bytes writeMany writes to name.
func fileContent(name string) string {
	s := name + ": " + strings.Repeat("x", 100)
	return s[:99] + "\n"
}

// newStream returns the bytes of the sequential workload, the same for
// every writer.
func newStream() io.Reader { return rand.NewChaCha8([32]byte{'b', 'i', 'g'}) }

// chunk is the size of one write or read of the sequential workload.
const chunk = 1 << 20

// writeStream writes size bytes of newStream to a new file at path in
// chunks and returns their checksum.
func writeStream(b *testing.B, path string, size int64) uint32 {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	err = copyChunks(f, io.TeeReader(newStream(), h), size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	return h.Sum32()
}

// readStream reads the file at path in chunks, checks its size and
// returns its checksum.
func readStream(b *testing.B, path string, size int64) uint32 {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sum, n, err := checksum(f)
	if err != nil || n != size {
		b.Fatalf("read %d bytes of %s, want %d: %v", n, path, size, err)
	}
	return sum
}

// copyChunks copies size bytes from src to dst in writes of chunk bytes
// (io.Copy would write 32 KiB at a time to an *os.File).
func copyChunks(dst io.Writer, src io.Reader, size int64) error {
	buf := make([]byte, chunk)
	for size > 0 {
		p := buf[:min(size, chunk)]
		if _, err := io.ReadFull(src, p); err != nil {
			return err
		}
		if _, err := dst.Write(p); err != nil {
			return err
		}
		size -= int64(len(p))
	}
	return nil
}

// checksum reads r to its end in reads of chunk bytes.
func checksum(r io.Reader) (uint32, int64, error) {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	buf := make([]byte, chunk)
	var n int64
	for {
		k, err := r.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			return h.Sum32(), n, nil
		}
		if err != nil {
			return h.Sum32(), n, err
		}
	}
}

// runIn runs a command in dir, failing the benchmark if it fails.
func runIn(b *testing.B, dir, name string, args ...string) {
	b.Helper()
	if err := runCmd(dir, name, args...); err != nil {
		b.Fatal(err)
	}
}

// runCmd runs a command in dir; its error carries the output.
func runCmd(dir, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("in %s: %s %s: %v\n%s", dir, name, strings.Join(args, " "), err, out)
	}
	return nil
}

func writeFile(b *testing.B, path, data string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		b.Fatal(err)
	}
}

// checkFile fails the benchmark unless the file at path holds want.
func checkFile(b *testing.B, path, want string) {
	b.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, []byte(want)) {
		b.Fatalf("%s holds %q (%v), want %q", path, got, err, want)
	}
}

// waitContent polls path every poll until it holds want, for at most d.
func waitContent(b *testing.B, path, want string, d, poll time.Duration) {
	b.Helper()
	deadline := time.Now().Add(d)
	for {
		got, err := os.ReadFile(path)
		if err == nil && string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %v %s holds %q (%v), want %q", d, path, got, err, want)
		}
		time.Sleep(poll)
	}
}

func uploads(calls map[string]int64) int64 {
	return calls["b2_upload_file"] + calls["b2_upload_part"]
}

// callList lists calls by name, the most frequent first.
func callList(calls map[string]int64) string {
	var names []string
	for name := range calls {
		names = append(names, name)
	}
	slices.SortFunc(names, func(x, y string) int {
		if calls[x] != calls[y] {
			return int(calls[y] - calls[x])
		}
		return strings.Compare(x, y)
	})
	var parts []string
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%s %d", name, calls[name]))
	}
	return strings.Join(parts, ", ")
}

func roundDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// workloadLatency is B2CFS_LATENCY, default 30ms.
func workloadLatency(b *testing.B) time.Duration {
	s := os.Getenv("B2CFS_LATENCY")
	if s == "" {
		return 30 * time.Millisecond
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		b.Fatalf("B2CFS_LATENCY=%q: want a duration such as 30ms", s)
	}
	return d
}

// bigSize is B2CFS_BENCH_BIG, default 256 MiB.
func bigSize(b *testing.B) int64 {
	s := os.Getenv("B2CFS_BENCH_BIG")
	if s == "" {
		return 256 << 20
	}
	n, err := parseSize(s)
	if err != nil {
		b.Fatalf("B2CFS_BENCH_BIG: %v", err)
	}
	return n
}

// parseSize parses a byte count: an integer, optionally followed by KiB,
// MiB or GiB.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive integer, optionally with KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// sizeString writes n in the largest binary unit that divides it.
func sizeString(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
