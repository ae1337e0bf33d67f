package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/spf13/cobra"
)

func newEmulatorCmd(c cli) *cobra.Command {
	var o emulatorOptions
	cmd := &cobra.Command{
		Use:     "emulator [flags]",
		Short:   "run a local B2 API emulator for testing",
		Long:    emulatorHelp,
		Example: emulatorExample,
		Args:    argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEmulator(cmd.Context(), o, c.stdout, c.stderr, nil)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.listen, "listen", "127.0.0.1:8787", "address to listen on (loopback by default)")
	fl.StringVar(&o.dir, "dir", "", "directory to keep state in across restarts (default: memory only)")
	fl.StringVar(&o.keyID, "key-id", b2emu.DefaultKeyID, "application key ID to accept")
	fl.StringVar(&o.key, "key", b2emu.DefaultKey, "application key to accept")
	fl.IntVar(&o.infoValue, "info-value-bytes", 2048, "maximum bytes of one bucket-info value")
	fl.Int64Var(&o.minPart, "min-part-size", 5_000_000, "minimum size of a large-file part other than the last")
	fl.BoolVarP(&o.verbose, "verbose", "v", false, "log every request")
	fl.StringArrayVar(&o.buckets, "bucket", nil, "create bucket `NAME` at start (repeatable)")
	fl.StringArrayVar(&o.faults, "fault", nil, "inject the faults `SPEC` says: 'CALL:setting=value,...' (repeatable; see above)")
	return cmd
}

// emulatorOptions are the emulator's flags.
type emulatorOptions struct {
	listen, dir, keyID, key string
	infoValue               int
	minPart                 int64
	verbose                 bool
	buckets, faults         []string
}

const emulatorHelp = `Runs a local emulator of the Backblaze B2 native API (see package
b2emu) until interrupted. Point b2cfs or any B2 client at the
printed endpoint with the printed credentials.

Faults (--fault, repeatable) take a B2 call name, or * for all calls, and
comma-separated settings:
  latency=DUR jitter=DUR   delay before answering (e.g. 30ms)
  error=P status=N code=S  answer an error with probability P (default 503)
  retry-after=SECONDS      send Retry-After with injected errors and lost-as=503
  drop=P                   drop the connection with probability P
  lost=P                   apply the call, then lose its reply with probability P
                           (only successful replies; the change stays made)
  lost-as=HOW              how a reply is lost: drop (default, close the
                           connection), 500, 503 (answer that error instead),
                           late (hold it back, then send it), or mixed (any)
  late=DUR                 how long lost-as=late holds a reply (default 40s)
  max=N                    at most N injected faults in a row (default 3)
  per-minute=N             answer 429 above N calls per minute
Drops and errors happen before the call is applied; lost replies after.
`

const emulatorExample = `  b2cfs emulator --listen 127.0.0.1:8787 --dir /tmp/b2emu --bucket test-bucket \
    --fault 'b2_upload_file:error=0.1,status=503' \
    --fault 'b2_list_buckets:per-minute=60,retry-after=1' \
    --fault 'b2_update_bucket:lost=0.3,lost-as=mixed,late=40s'`

// runEmulator runs the emulator as o says until ctx ends. If ready is not
// nil it receives the endpoint once serving starts.
func runEmulator(ctx context.Context, o emulatorOptions, stdout, stderr io.Writer, ready chan<- string) error {
	cfg := b2emu.Config{
		KeyID:             o.keyID,
		Key:               o.key,
		Dir:               o.dir,
		MaxInfoValueBytes: o.infoValue,
		MinPartSize:       o.minPart,
	}
	if o.verbose {
		cfg.Logf = log.New(stderr, "", log.LstdFlags|log.Lmicroseconds).Printf
	}
	if o.dir != "" {
		if err := os.MkdirAll(o.dir, 0o700); err != nil {
			return err
		}
	}
	srv, err := b2emu.New(cfg)
	if err != nil {
		return err
	}
	for _, b := range o.buckets {
		if err := srv.CreateBucket(b); err != nil {
			return fmt.Errorf("bucket %q: %v", b, err)
		}
	}
	for _, spec := range o.faults {
		call, f, err := parseFault(spec)
		if err != nil {
			return err
		}
		srv.SetFault(call, f)
	}
	url, err := srv.Listen(o.listen)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "B2 emulator serving at %s\n", url)
	printClientSettings(stdout, url, o.keyID, o.key)
	if len(o.buckets) > 0 {
		fmt.Fprintf(stdout, "  buckets: %s\n", strings.Join(o.buckets, ", "))
	}
	fmt.Fprintf(stdout, "  counters: %s/emulator/stats (POST %s/emulator/reset)\n", url, url)
	if ready != nil {
		ready <- url
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "B2 emulator stopped")
	return nil
}

// printClientSettings prints, ready to paste, how b2cfs and other B2
// clients reach the emulator at url with keyID and key: the three values,
// shell export lines (B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY are
// read by b2cfs and the B2 command-line tool, B2CFS_ENDPOINT by b2cfs,
// B2_ENVIRONMENT by the B2 command-line tool, which takes a URL there as
// the API base to authorize against), and an rclone-style remote.
func printClientSettings(w io.Writer, url, keyID, key string) {
	fmt.Fprintf(w, "  endpoint: %s\n  key id:   %s\n  key:      %s\n", url, keyID, key)
	fmt.Fprintf(w, "  shell (b2cfs, B2 command-line tool):\n")
	fmt.Fprintf(w, "    export B2_APPLICATION_KEY_ID=%s B2_APPLICATION_KEY=%s\n", shellQuote(keyID), shellQuote(key))
	fmt.Fprintf(w, "    export B2CFS_ENDPOINT=%s B2_ENVIRONMENT=%s\n", shellQuote(url), shellQuote(url))
	fmt.Fprintf(w, "  b2cfs: pass --endpoint %s (or set B2CFS_ENDPOINT)\n", url)
	fmt.Fprintf(w, "  B2 command-line tool: b2 account authorize (with the exports above)\n")
	fmt.Fprintf(w, "  rclone-style config:\n    [emu]\n    type = b2\n    account = %s\n    key = %s\n    endpoint = %s\n", keyID, key, url)
}

// shellQuote quotes s for a POSIX shell unless it is made only of
// characters that need no quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/@%+=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// parseFault parses "CALL:key=value,...".
func parseFault(spec string) (string, b2emu.Fault, error) {
	var f b2emu.Fault
	call, settings, ok := strings.Cut(spec, ":")
	if !ok || call == "" {
		return "", f, fmt.Errorf("fault %q: want CALL:setting=value[,setting=value]", spec)
	}
	for _, kv := range strings.Split(settings, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", f, fmt.Errorf("fault %q: %q is not setting=value", spec, kv)
		}
		var err error
		switch k {
		case "latency":
			f.Latency, err = time.ParseDuration(v)
		case "jitter":
			f.Jitter, err = time.ParseDuration(v)
		case "error":
			f.ErrorRate, err = parseRate(v)
		case "drop":
			f.DropRate, err = parseRate(v)
		case "lost":
			f.LostRate, err = parseRate(v)
		case "lost-as":
			f.LostAs, err = parseLostMode(v)
		case "late":
			f.LateWait, err = time.ParseDuration(v)
			if err == nil && f.LateWait <= 0 {
				err = errors.New("must be positive")
			}
		case "status":
			f.Status, err = strconv.Atoi(v)
		case "code":
			f.Code = v
		case "retry-after":
			f.RetryAfter, err = strconv.Atoi(v)
		case "max":
			f.MaxConsecutive, err = strconv.Atoi(v)
		case "per-minute":
			f.PerMinute, err = strconv.Atoi(v)
		default:
			err = errors.New("unknown setting")
		}
		if err != nil {
			return "", f, fmt.Errorf("fault %q: %s: %v", spec, k, err)
		}
	}
	return call, f, nil
}

// parseLostMode parses a lost-as value.
func parseLostMode(v string) (b2emu.LostMode, error) {
	switch m := b2emu.LostMode(v); m {
	case b2emu.LostDrop, b2emu.Lost500, b2emu.Lost503, b2emu.LostLate, b2emu.LostMixed:
		return m, nil
	}
	return "", errors.New("want drop, 500, 503, late or mixed")
}

func parseRate(v string) (float64, error) {
	p, err := strconv.ParseFloat(v, 64)
	if err == nil && (p < 0 || p > 1) {
		err = errors.New("must be between 0 and 1")
	}
	return p, err
}
