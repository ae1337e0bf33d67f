package main

// This file holds what every command that talks to B2 shares: the
// BUCKET/GROUP[/PATH] argument, credentials, the endpoint, logging and
// opening a store and a group. The connection flags are the root
// command's, so every command (the group tools, gc, mount) shares them.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/spf13/pflag"
)

// Environment variables read by the commands.
const (
	envKeyID    = "B2_APPLICATION_KEY_ID"
	envKey      = "B2_APPLICATION_KEY"
	envEndpoint = "B2CFS_ENDPOINT"
)

// target is a parsed BUCKET/GROUP[/PATH] argument. Path is "" for the
// group's root.
type target struct {
	Bucket, Group, Path string
}

// String returns the target as the user writes it.
func (t target) String() string {
	if t.Path == "" {
		return t.Bucket + "/" + t.Group
	}
	return t.Bucket + "/" + t.Group + "/" + t.Path
}

// parseTarget parses "BUCKET/GROUP[/PATH]". A trailing "/" is allowed and
// dropped, so "b/g/dir/" is the directory "dir". The path is checked with
// core.CheckName (its errors match core.ErrBadName); the group name is
// checked when the group is opened.
func parseTarget(s string) (target, error) {
	bucket, rest, ok := strings.Cut(s, "/")
	if !ok || rest == "" || strings.HasPrefix(rest, "/") {
		return target{}, fmt.Errorf("%q: want BUCKET/GROUP or BUCKET/GROUP/PATH", s)
	}
	if err := checkBucketName(bucket); err != nil {
		return target{}, fmt.Errorf("%q: %w", s, err)
	}
	group, path, _ := strings.Cut(rest, "/")
	path = strings.TrimSuffix(path, "/")
	if path != "" {
		if err := core.CheckName(path); err != nil {
			return target{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	return target{Bucket: bucket, Group: group, Path: path}, nil
}

// checkBucketName applies B2's rule for bucket names: 6 to 63 letters,
// digits and hyphens.
// parseGroupTarget parses "BUCKET/GROUP" for command cmd, refusing a path.
func parseGroupTarget(cmd, s string) (target, error) {
	tg, err := parseTarget(s)
	if err != nil {
		return target{}, err
	}
	if tg.Path != "" {
		return target{}, fmt.Errorf("%s: want BUCKET/GROUP without a path, not %s", cmd, tg)
	}
	return tg, nil
}

func checkBucketName(b string) error {
	if len(b) < 6 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 6 to 63 characters", b)
	}
	for _, c := range []byte(b) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("bucket name %q may only hold letters, digits and hyphens", b)
		}
	}
	return nil
}

// credentials are a B2 application key. They never appear in output:
// String and LogValue redact them, and errors from B2 are scrubbed of them
// (see openStore).
type credentials struct {
	KeyID, Key string
}

func (c credentials) String() string { return "credentials{redacted}" }

// LogValue keeps credentials out of logs even when passed by mistake.
func (c credentials) LogValue() slog.Value { return slog.StringValue("redacted") }

// GoString keeps credentials out of %#v.
func (c credentials) GoString() string { return c.String() }

// loadCredentials reads the credentials file when file is not "", else the
// environment (getenv).
func loadCredentials(file string, getenv func(string) string) (credentials, error) {
	if file != "" {
		return readCredentialsFile(file)
	}
	c := credentials{KeyID: getenv(envKeyID), Key: getenv(envKey)}
	if c.KeyID == "" || c.Key == "" {
		return credentials{}, fmt.Errorf("no B2 credentials: set %s and %s, or pass --credentials FILE", envKeyID, envKey)
	}
	return c, nil
}

// readCredentialsFile reads lines "B2_APPLICATION_KEY_ID=..." and
// "B2_APPLICATION_KEY=..." (blank lines and "#" comments allowed, an
// optional "export " and quotes around values accepted, so a shell
// environment file works too). It refuses a file that group or others may
// access. Errors name the file and line, never the content.
func readCredentialsFile(file string) (credentials, error) {
	f, err := os.Open(file)
	if err != nil {
		return credentials{}, fmt.Errorf("credentials file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return credentials{}, fmt.Errorf("credentials file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return credentials{}, fmt.Errorf("credentials file %s is not a regular file", file)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return credentials{}, fmt.Errorf("credentials file %s has mode %04o, so group or others can read it; run: chmod 600 %s", file, perm, file)
	}
	var c credentials
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return credentials{}, fmt.Errorf("credentials file %s line %d: want NAME=VALUE", file, n)
		}
		k, v = strings.TrimSpace(k), unquote(strings.TrimSpace(v))
		switch k {
		case envKeyID:
			c.KeyID = v
		case envKey:
			c.Key = v
		default:
			return credentials{}, fmt.Errorf("credentials file %s line %d: unknown name %q (want %s or %s)", file, n, k, envKeyID, envKey)
		}
	}
	if err := sc.Err(); err != nil {
		return credentials{}, fmt.Errorf("credentials file %s: %w", file, err)
	}
	if c.KeyID == "" || c.Key == "" {
		return credentials{}, fmt.Errorf("credentials file %s must set both %s and %s", file, envKeyID, envKey)
	}
	return c, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// resolveEndpoint picks the B2 API base: the flag, else $B2CFS_ENDPOINT,
// else B2's own.
func resolveEndpoint(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if e := getenv(envEndpoint); e != "" {
		return e
	}
	return b2.DefaultEndpoint
}

// newLogger returns the commands' logger: text on w, warnings and errors
// only unless verbose.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// connFlags are the flags every command that talks to B2 takes: the root
// command's persistent flags.
type connFlags struct {
	credentials string
	endpoint    string
	timeout     time.Duration
	verbose     bool
}

// register adds --credentials, --endpoint, --timeout and -v to fs.
func (c *connFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.credentials, "credentials", "", "read `FILE` for B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY (mode 0600) instead of the environment")
	fs.StringVar(&c.endpoint, "endpoint", "", "B2 API `URL` (default $"+envEndpoint+", else "+b2.DefaultEndpoint+")")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "fail a B2 call that gets no answer for this `long`")
	fs.BoolVarP(&c.verbose, "verbose", "v", false, "log debug messages to stderr")
}

// storeOptions say how to open a bucket.
type storeOptions struct {
	Bucket      string
	Credentials credentials
	Endpoint    string       // "" is b2.DefaultEndpoint
	Logger      *slog.Logger // nil discards
	// Observe, when set, sees every B2 call attempt (b2.Config.Observe).
	Observe func(call, class, code string, d time.Duration)
	// Timeout bounds a call without an answer (b2.Config.Timeout); 0 is
	// the default.
	Timeout time.Duration
}

// groupOptions say how to open a group: its bucket, its name and the
// engine's options (whose Logger defaults to the store's).
type groupOptions struct {
	storeOptions
	Group string
	Core  core.Options
}

// options resolves the flags into storeOptions for bucket, reading
// credentials and the endpoint through getenv.
func (c *connFlags) options(bucket string, getenv func(string) string, logger *slog.Logger) (storeOptions, error) {
	creds, err := loadCredentials(c.credentials, getenv)
	if err != nil {
		return storeOptions{}, err
	}
	return storeOptions{
		Bucket:      bucket,
		Credentials: creds,
		Endpoint:    resolveEndpoint(c.endpoint, getenv),
		Logger:      logger,
		Timeout:     c.timeout,
	}, nil
}

// openStore authorises with B2 and opens the bucket. Its errors never
// contain the credentials.
func openStore(ctx context.Context, opts storeOptions) (*b2.Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger.Debug("opening bucket", "bucket", opts.Bucket, "endpoint", opts.Endpoint)
	s, err := b2.Open(ctx, b2.Config{
		Endpoint: opts.Endpoint,
		KeyID:    opts.Credentials.KeyID,
		Key:      opts.Credentials.Key,
		Bucket:   opts.Bucket,
		Observe:  opts.Observe,
		Timeout:  opts.Timeout,
		Logger:   logger,
	})
	if err != nil {
		err = redact(err, opts.Credentials.KeyID, opts.Credentials.Key)
		return nil, fmt.Errorf("open bucket %q at %s: %w", opts.Bucket, opts.Endpoint, err)
	}
	return s, nil
}

// openGroup opens the bucket and the group in it. The caller closes the
// group.
func openGroup(ctx context.Context, opts groupOptions) (*core.Group, *b2.Store, error) {
	s, err := openStore(ctx, opts.storeOptions)
	if err != nil {
		return nil, nil, err
	}
	co := opts.Core
	if co.Logger == nil {
		co.Logger = opts.Logger
	}
	g, err := core.NewGroup(s, opts.Group, co)
	if err != nil {
		return nil, nil, err
	}
	return g, s, nil
}

// redactedError replaces secrets in an error's text and keeps the chain for
// errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every non-empty secret in its text replaced.
func redact(err error, secrets ...string) error {
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
