package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    target
		wantErr string
	}{
		{in: "my-bucket/grp", want: target{"my-bucket", "grp", ""}},
		{in: "my-bucket/grp/", want: target{"my-bucket", "grp", ""}},
		{in: "my-bucket/grp/a/b.txt", want: target{"my-bucket", "grp", "a/b.txt"}},
		{in: "my-bucket/grp/dir/", want: target{"my-bucket", "grp", "dir"}},
		{in: "my-bucket", wantErr: "want BUCKET/GROUP"},
		{in: "my-bucket/", wantErr: "want BUCKET/GROUP"},
		{in: "my-bucket//x", wantErr: "want BUCKET/GROUP"},
		{in: "/grp/x", wantErr: "bucket name"},
		{in: "bad_bucket/grp", wantErr: "letters, digits and hyphens"},
		{in: "abc/grp", wantErr: "6 to 63"},
		{in: "my-bucket/grp/a//b", wantErr: "empty path element"},
		{in: "my-bucket/grp/a\x01b", wantErr: "control character"},
	}
	for _, tt := range tests {
		got, err := parseTarget(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTarget(%q) = %+v, %v; want error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseTarget("my-bucket/grp/a//b"); !errors.Is(err, core.ErrBadName) {
		t.Errorf("bad path: %v, want core.ErrBadName", err)
	}
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	return p
}

func TestLoadCredentials(t *testing.T) {
	env := mapEnv(map[string]string{envKeyID: "env-id", envKey: "env-secret"})
	c, err := loadCredentials("", env)
	if err != nil || c.KeyID != "env-id" || c.Key != "env-secret" {
		t.Errorf("from env: %+v %v", c, err)
	}
	if _, err := loadCredentials("", mapEnv(map[string]string{envKeyID: "x"})); err == nil || !strings.Contains(err.Error(), "--credentials") {
		t.Errorf("missing key: %v", err)
	}

	good := writeFile(t, "creds", "# b2cfs\n\nB2_APPLICATION_KEY_ID=file-id\nexport B2_APPLICATION_KEY = \"file-secret\"\n", 0o600)
	c, err = loadCredentials(good, env) // the file wins over the environment
	if err != nil || c.KeyID != "file-id" || c.Key != "file-secret" {
		t.Errorf("from file: %+v %v", c, err)
	}

	loose := writeFile(t, "loose", "B2_APPLICATION_KEY_ID=file-id\nB2_APPLICATION_KEY=file-secret\n", 0o644)
	_, err = loadCredentials(loose, env)
	if err == nil || !strings.Contains(err.Error(), loose) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("0644 file: %v, want refusal naming the file and chmod 600", err)
	}
	groupOnly := writeFile(t, "group", "B2_APPLICATION_KEY_ID=file-id\nB2_APPLICATION_KEY=file-secret\n", 0o640)
	if _, err := loadCredentials(groupOnly, env); err == nil {
		t.Error("0640 file accepted")
	}

	for name, content := range map[string]string{
		"noequals": "B2_APPLICATION_KEY_ID=file-id\nsupersecretvalue\n",
		"unknown":  "B2_APPLICATION_KEY_ID=file-id\nB2_KEY=supersecretvalue\n",
		"partial":  "B2_APPLICATION_KEY=supersecretvalue\n",
	} {
		_, err := loadCredentials(writeFile(t, name, content, 0o600), env)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "supersecretvalue") {
			t.Errorf("%s: error shows a secret: %v", name, err)
		}
	}
	if _, err := loadCredentials(filepath.Join(t.TempDir(), "missing"), env); err == nil {
		t.Error("missing file accepted")
	}
	for _, s := range []string{c.String(), c.GoString(), c.LogValue().String()} {
		if strings.Contains(s, "file-secret") || strings.Contains(s, "file-id") {
			t.Errorf("credentials printed: %s", s)
		}
	}
}

func TestResolveEndpoint(t *testing.T) {
	env := mapEnv(map[string]string{envEndpoint: "http://env:1"})
	if got := resolveEndpoint("http://flag:1", env); got != "http://flag:1" {
		t.Errorf("flag: %s", got)
	}
	if got := resolveEndpoint("", env); got != "http://env:1" {
		t.Errorf("env: %s", got)
	}
	if got := resolveEndpoint("", mapEnv(nil)); got != b2.DefaultEndpoint {
		t.Errorf("default: %s", got)
	}
}

func TestOpenStoreHidesCredentials(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := openStore(ctx, storeOptions{Bucket: e.bucket, Endpoint: e.url,
		Credentials: credentials{KeyID: "wrong-key-id-1234", Key: "wrong-secret-5678"}})
	if err == nil {
		t.Fatal("bad credentials accepted")
	}
	if strings.Contains(err.Error(), "wrong-secret-5678") || strings.Contains(err.Error(), "wrong-key-id-1234") {
		t.Errorf("error shows credentials: %v", err)
	}
	_, err = openStore(ctx, storeOptions{Bucket: "no-such-bucket", Endpoint: e.url,
		Credentials: credentials{KeyID: b2emu.DefaultKeyID, Key: b2emu.DefaultKey}})
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") || strings.Contains(err.Error(), b2emu.DefaultKey) {
		t.Errorf("unknown bucket: %v", err)
	}
	g, s, err := openGroup(ctx, groupOptions{Group: "g", storeOptions: storeOptions{Bucket: e.bucket, Endpoint: e.url,
		Credentials: credentials{KeyID: b2emu.DefaultKeyID, Key: b2emu.DefaultKey}}})
	if err != nil || g == nil || s == nil {
		t.Fatalf("openGroup: %v", err)
	}
	g.Close()
	_, _, err = openGroup(ctx, groupOptions{Group: "bad group", storeOptions: storeOptions{Bucket: e.bucket, Endpoint: e.url,
		Credentials: credentials{KeyID: b2emu.DefaultKeyID, Key: b2emu.DefaultKey}}})
	if !errors.Is(err, core.ErrBadName) {
		t.Errorf("bad group name: %v", err)
	}
}

func TestRedact(t *testing.T) {
	base := errors.New("auth failed for key s3cr3t")
	err := redact(base, "", "s3cr3t")
	if strings.Contains(err.Error(), "s3cr3t") || !errors.Is(err, base) {
		t.Errorf("redact = %v", err)
	}
	if redact(base, "other") != base {
		t.Error("redact changed an error without secrets")
	}
}

func TestCredentialsFileCommand(t *testing.T) {
	e := newTestEnv(t)
	noEnv := map[string]string{envEndpoint: e.url}
	content := "B2_APPLICATION_KEY_ID=" + b2emu.DefaultKeyID + "\nB2_APPLICATION_KEY=" + b2emu.DefaultKey + "\n"
	good := writeFile(t, "good", content, 0o600)
	bad := writeFile(t, "bad", content, 0o644)
	if _, stderr, err := e.runEnv("ls", noEnv, "", "--credentials", good, e.bucket+"/g"); err != nil {
		t.Errorf("0600 file: %v %s", err, stderr)
	}
	_, _, err := e.runEnv("ls", noEnv, "", "--credentials", bad, e.bucket+"/g")
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("0644 file: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), b2emu.DefaultKey) {
		t.Errorf("error shows the key: %v", err)
	}
	_, _, err = e.runEnv("ls", noEnv, "", e.bucket+"/g")
	if err == nil || !strings.Contains(err.Error(), envKeyID) {
		t.Errorf("no credentials: %v", err)
	}
}
