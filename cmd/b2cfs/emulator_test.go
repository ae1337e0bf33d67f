package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		spec string
		call string
		want b2emu.Fault
	}{
		{"b2_upload_file:latency=30ms,jitter=5ms,error=0.1,status=503,code=busy,retry-after=1,drop=0.05,max=2,per-minute=60",
			"b2_upload_file", b2emu.Fault{Latency: 30 * time.Millisecond, Jitter: 5 * time.Millisecond, ErrorRate: 0.1, Status: 503,
				Code: "busy", RetryAfter: 1, DropRate: 0.05, MaxConsecutive: 2, PerMinute: 60}},
		{"b2_update_bucket:lost=0.3", "b2_update_bucket", b2emu.Fault{LostRate: 0.3}},
		{"*:lost=0.3,lost-as=503,late=40s", "*", b2emu.Fault{LostRate: 0.3, LostAs: b2emu.Lost503, LateWait: 40 * time.Second}},
		{"b2_upload_file:lost=1,lost-as=500", "b2_upload_file", b2emu.Fault{LostRate: 1, LostAs: b2emu.Lost500}},
		{"b2_hide_file:lost=1,lost-as=drop,max=10", "b2_hide_file", b2emu.Fault{LostRate: 1, LostAs: b2emu.LostDrop, MaxConsecutive: 10}},
		{"b2_copy_file:lost=0.5,lost-as=late,late=2s", "b2_copy_file", b2emu.Fault{LostRate: 0.5, LostAs: b2emu.LostLate, LateWait: 2 * time.Second}},
		{"b2_delete_file_version:lost=0.2,lost-as=mixed", "b2_delete_file_version", b2emu.Fault{LostRate: 0.2, LostAs: b2emu.LostMixed}},
	} {
		call, f, err := parseFault(tc.spec)
		if err != nil || call != tc.call || f != tc.want {
			t.Errorf("parseFault(%q) = %q %+v %v, want %q %+v", tc.spec, call, f, err, tc.call, tc.want)
		}
	}
	for _, bad := range []string{"nocolon", ":error=1", "x:error=2", "x:bogus=1", "x:latency", "x:status=abc",
		"x:lost=1.5", "x:lost=-0.1", "x:lost=often", "x:lost-as=404", "x:lost-as=", "x:lost-as=Drop",
		"x:late=soon", "x:late=0s", "x:late=-1s"} {
		if _, _, err := parseFault(bad); err == nil {
			t.Errorf("parseFault(%q) accepted", bad)
		}
	}
}

func TestEmulatorCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs bytes.Buffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		o := emulatorOptions{listen: "127.0.0.1:0", keyID: b2emu.DefaultKeyID, key: b2emu.DefaultKey,
			buckets: []string{"cmd-bucket"}, faults: []string{"b2_list_buckets:latency=1ms"}}
		done <- runEmulator(ctx, o, &out, &errs, ready)
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("emulator exited: %v (%s)", err, errs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("emulator did not start")
	}
	req, _ := http.NewRequest("GET", url+"/b2api/v3/b2_authorize_account", nil)
	req.SetBasicAuth(b2emu.DefaultKeyID, b2emu.DefaultKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var auth struct {
		AccountID string `json:"accountId"`
		Token     string `json:"authorizationToken"`
	}
	json.NewDecoder(resp.Body).Decode(&auth)
	resp.Body.Close()
	req, _ = http.NewRequest("POST", url+"/b2api/v3/b2_list_buckets", strings.NewReader(`{"accountId":"`+auth.AccountID+`"}`))
	req.Header.Set("Authorization", auth.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Buckets []struct {
			Name string `json:"bucketName"`
		} `json:"buckets"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Buckets) != 1 || list.Buckets[0].Name != "cmd-bucket" {
		t.Errorf("buckets = %+v", list.Buckets)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("emulator: %v", err)
	}
	lines := strings.Split(out.String(), "\n")
	for _, want := range []string{
		"  endpoint: " + url,
		"  key id:   " + b2emu.DefaultKeyID,
		"  key:      " + b2emu.DefaultKey,
		"    export B2_APPLICATION_KEY_ID=" + b2emu.DefaultKeyID + " B2_APPLICATION_KEY=" + b2emu.DefaultKey,
		"    export B2CFS_ENDPOINT=" + url + " B2_ENVIRONMENT=" + url,
		"  b2cfs: pass --endpoint " + url + " (or set B2CFS_ENDPOINT)",
		"  B2 command-line tool: b2 account authorize (with the exports above)",
		"    [emu]",
		"    type = b2",
		"    account = " + b2emu.DefaultKeyID,
		"    key = " + b2emu.DefaultKey,
		"    endpoint = " + url,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("output lacks the line %q:\n%s", want, out.String())
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"b2cfs-emu-key":         "b2cfs-emu-key",
		"http://127.0.0.1:8787": "http://127.0.0.1:8787",
		"K000a/b+c=":            "K000a/b+c=",
		"":                      "''",
		"a b":                   "'a b'",
		"it's":                  `'it'\''s'`,
		"$HOME":                 "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDispatch(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, &errs); code != 0 || !strings.Contains(out.String(), "emulator") {
		t.Errorf("help: %d %q", code, out.String())
	}
	errs.Reset()
	if code := run(context.Background(), []string{"nosuch"}, &out, &errs); code != 1 || !strings.HasPrefix(errs.String(), "b2cfs: ") || strings.Count(errs.String(), "\n") != 1 {
		t.Errorf("unknown command: %d %q", code, errs.String())
	}
	errs.Reset()
	if code := run(context.Background(), []string{"emulator", "--fault", "bad"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "b2cfs: fault") {
		t.Errorf("bad fault: %d %q", code, errs.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"emulator", "--help"}, &out, &errs); code != 0 || !strings.Contains(out.String(), "Examples:") || !strings.Contains(out.String(), "lost-as=") {
		t.Errorf("--help: %d %q", code, out.String())
	}
}
