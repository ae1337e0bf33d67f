package b2emu

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// lostClient is an HTTP client of its own, so that connections a lost reply
// breaks are not shared with the helpers of raw_test.go.
func lostClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// jsonReq is a JSON call the way blazer sends it.
func (e *rawEnv) jsonReq(name, body string) *http.Request {
	req, _ := http.NewRequest("POST", e.u+"/b2api/v2/"+name, strings.NewReader(body))
	req.Header.Set("Authorization", e.tok)
	return req
}

// uploadReq is an upload of data to an upload URL ("uploadUrl" and
// "authorizationToken" in r, an answer of b2_get_upload_url or
// b2_get_upload_part_url); part > 0 makes it a part upload.
func uploadReq(r rawResp, name string, part int, data string) *http.Request {
	req, _ := http.NewRequest("POST", r.body["uploadUrl"].(string), strings.NewReader(data))
	req.Header.Set("Authorization", r.body["authorizationToken"].(string))
	if part > 0 {
		req.Header.Set("X-Bz-Part-Number", fmt.Sprint(part))
	} else {
		req.Header.Set("X-Bz-File-Name", name)
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	sum := sha1.Sum([]byte(data))
	req.Header.Set("X-Bz-Content-Sha1", hex.EncodeToString(sum[:]))
	return req
}

// outcome sends req and describes what the client got: "error: ..." for a
// transport error (a dropped connection, a deadline), else the status and
// body. ok reports a success (status 200).
func outcome(client *http.Client, req *http.Request) (got string, ok bool) {
	resp, err := client.Do(req)
	if err != nil {
		return "error: " + err.Error(), false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, body), resp.StatusCode == http.StatusOK
}

// impatient gives req a deadline d that starts once req has been written
// in full, so that however slow the machine, the server has the whole call
// to apply before the client gives up.
func impatient(req *http.Request, d time.Duration) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(req.Context())
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { time.AfterFunc(d, cancel) }}
	return req.WithContext(httptrace.WithClientTrace(ctx, trace)), cancel
}

// waitLost waits until the server has counted n lost replies of call (the
// count is made once the reply is lost, which a client may notice first),
// then checks that the counts are exactly n.
func waitLost(t *testing.T, s *Server, call string, n int64) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); s.Stats().Lost[call] < n && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	st := s.Stats()
	if st.Lost[call] != n || st.Faults[call] != n {
		t.Errorf("%s: lost %d, faults %d, want %d", call, st.Lost[call], st.Faults[call], n)
	}
}

// bucketState is the revision and bucket info of e's bucket.
func (e *rawEnv) bucketState() (int, map[string]any) {
	e.t.Helper()
	r := e.call("b2_list_buckets", `{"accountId":"`+e.acct+`","bucketId":"`+e.bucketID+`"}`)
	bs, _ := r.body["buckets"].([]any)
	if r.status != 200 || len(bs) != 1 {
		e.t.Fatalf("list_buckets: %d %s", r.status, r.raw)
	}
	b := bs[0].(map[string]any)
	info, _ := b["bucketInfo"].(map[string]any)
	return int(b["revision"].(float64)), info
}

// versions maps each file name in e's bucket to the action of its newest
// version.
func (e *rawEnv) versions() map[string]string {
	e.t.Helper()
	r := e.call("b2_list_file_versions", `{"bucketId":"`+e.bucketID+`"}`)
	if r.status != 200 {
		e.t.Fatalf("list_file_versions: %d %s", r.status, r.raw)
	}
	out := map[string]string{}
	for _, f := range r.body["files"].([]any) {
		f := f.(map[string]any)
		if _, seen := out[f["fileName"].(string)]; !seen {
			out[f["fileName"].(string)] = f["action"].(string)
		}
	}
	return out
}

// mustUpload uploads a small file and returns its ID.
func (e *rawEnv) mustUpload(name string) string {
	e.t.Helper()
	r := e.upload(name, []byte("data of "+name), nil)
	if r.status != 200 {
		e.t.Fatalf("upload %s: %d %s", name, r.status, r.raw)
	}
	return r.body["fileId"].(string)
}

// TestLostEveryStateChangingCall loses the reply of each state-changing
// call, with the fault set on the call name and on "*": the client gets no
// success, yet the change is made.
func TestLostEveryStateChangingCall(t *testing.T) {
	cases := []struct {
		call    string
		prepare func(e *rawEnv) *http.Request // the call to lose, made ready without faults
		applied func(e *rawEnv) error         // nil if the call's change is there
	}{
		{"b2_update_bucket",
			func(e *rawEnv) *http.Request {
				return e.jsonReq("b2_update_bucket", `{"accountId":"`+e.acct+`","bucketId":"`+e.bucketID+`","bucketInfo":{"lost":"yes"},"ifRevisionIs":1}`)
			},
			func(e *rawEnv) error {
				if rev, info := e.bucketState(); rev != 2 || info["lost"] != "yes" {
					return fmt.Errorf("revision %d, info %v", rev, info)
				}
				return nil
			}},
		{"b2_upload_file",
			func(e *rawEnv) *http.Request {
				return uploadReq(e.call("b2_get_upload_url", `{"bucketId":"`+e.bucketID+`"}`), "up", 0, "uploaded")
			},
			func(e *rawEnv) error {
				if v := e.versions(); v["up"] != "upload" {
					return fmt.Errorf("versions %v", v)
				}
				return nil
			}},
		{"b2_upload_part",
			func(e *rawEnv) *http.Request {
				id := e.call("b2_start_large_file", `{"bucketId":"`+e.bucketID+`","fileName":"big","contentType":"b2/x-auto"}`).body["fileId"].(string)
				return uploadReq(e.call("b2_get_upload_part_url", `{"fileId":"`+id+`"}`), "", 1, "part one")
			},
			func(e *rawEnv) error {
				id := e.call("b2_list_unfinished_large_files", `{"bucketId":"`+e.bucketID+`"}`).body["files"].([]any)[0].(map[string]any)["fileId"].(string)
				if r := e.call("b2_list_parts", `{"fileId":"`+id+`"}`); len(r.body["parts"].([]any)) != 1 {
					return fmt.Errorf("parts %s", r.raw)
				}
				return nil
			}},
		{"b2_finish_large_file",
			func(e *rawEnv) *http.Request {
				id := e.call("b2_start_large_file", `{"bucketId":"`+e.bucketID+`","fileName":"big","contentType":"b2/x-auto"}`).body["fileId"].(string)
				var sums []string
				for i, part := range []string{"part one", "part two"} { // at least two, as B2 wants
					pu := e.call("b2_get_upload_part_url", `{"fileId":"`+id+`"}`)
					if got, ok := outcome(http.DefaultClient, uploadReq(pu, "", i+1, part)); !ok {
						e.t.Fatalf("upload part: %s", got)
					}
					sum := sha1.Sum([]byte(part))
					sums = append(sums, `"`+hex.EncodeToString(sum[:])+`"`)
				}
				return e.jsonReq("b2_finish_large_file", `{"fileId":"`+id+`","partSha1Array":[`+strings.Join(sums, ",")+`]}`)
			},
			func(e *rawEnv) error {
				if v := e.versions(); v["big"] != "upload" {
					return fmt.Errorf("versions %v", v)
				}
				return nil
			}},
		{"b2_delete_file_version",
			func(e *rawEnv) *http.Request {
				id := e.mustUpload("del")
				return e.jsonReq("b2_delete_file_version", `{"fileName":"del","fileId":"`+id+`"}`)
			},
			func(e *rawEnv) error {
				if v := e.versions(); len(v) != 0 {
					return fmt.Errorf("versions %v", v)
				}
				return nil
			}},
		{"b2_copy_file",
			func(e *rawEnv) *http.Request {
				id := e.mustUpload("src")
				return e.jsonReq("b2_copy_file", `{"sourceFileId":"`+id+`","fileName":"dst"}`)
			},
			func(e *rawEnv) error {
				if v := e.versions(); v["dst"] != "upload" {
					return fmt.Errorf("versions %v", v)
				}
				return nil
			}},
		{"b2_hide_file",
			func(e *rawEnv) *http.Request {
				e.mustUpload("hid")
				return e.jsonReq("b2_hide_file", `{"bucketId":"`+e.bucketID+`","fileName":"hid"}`)
			},
			func(e *rawEnv) error {
				if v := e.versions(); v["hid"] != "hide" {
					return fmt.Errorf("versions %v", v)
				}
				return nil
			}},
	}
	for _, tc := range cases {
		for _, on := range []string{tc.call, "*"} {
			t.Run(tc.call+"/"+on, func(t *testing.T) {
				s, u := startServer(t, Config{MinPartSize: 1})
				e := newRawEnv(t, u, "lost-bucket")
				req := tc.prepare(e)
				s.ResetStats()
				s.SetFault(on, Fault{LostRate: 1, MaxConsecutive: 100})
				got, ok := outcome(lostClient(t), req)
				s.SetFault(on, Fault{})
				if ok || !strings.HasPrefix(got, "error: ") {
					t.Errorf("client got %s, want a dropped connection", got)
				}
				waitLost(t, s, tc.call, 1)
				if n := s.Stats().Calls[tc.call]; n != 1 {
					t.Errorf("%s answered %d times, want 1", tc.call, n)
				}
				if err := tc.applied(e); err != nil {
					t.Errorf("%s not applied: %v", tc.call, err)
				}
			})
		}
	}
}

// TestLostModes loses replies of b2_update_bucket, b2_upload_file and
// b2_delete_file_version in each way.
func TestLostModes(t *testing.T) {
	s, u := startServer(t, Config{})
	e := newRawEnv(t, u, "lost-modes")
	client := lostClient(t)
	for i, tc := range []struct {
		mode LostMode
		want string // prefix of what the client gets
	}{
		{"", "error: "}, // the default is LostDrop
		{LostDrop, "error: "},
		{Lost500, `500 {"code":"internal_error"`},
		{Lost503, `503 {"code":"service_unavailable"`},
	} {
		f := Fault{LostRate: 1, LostAs: tc.mode, MaxConsecutive: 100}
		n := int64(i + 1)

		rev, _ := e.bucketState()
		s.SetFault("b2_update_bucket", f)
		got, _ := outcome(client, e.jsonReq("b2_update_bucket", fmt.Sprintf(`{"accountId":"%s","bucketId":"%s","bucketInfo":{"n":"%d"},"ifRevisionIs":%d}`, e.acct, e.bucketID, n, rev)))
		s.SetFault("b2_update_bucket", Fault{})
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: update_bucket: client got %s, want %s...", tc.mode, got, tc.want)
		}
		waitLost(t, s, "b2_update_bucket", n)
		if rev2, info := e.bucketState(); rev2 != rev+1 || info["n"] != fmt.Sprint(n) {
			t.Errorf("%q: update_bucket not applied: revision %d (was %d), info %v", tc.mode, rev2, rev, info)
		}

		name := fmt.Sprintf("file-%d", n)
		pu := e.call("b2_get_upload_url", `{"bucketId":"`+e.bucketID+`"}`)
		s.SetFault("b2_upload_file", f)
		got, _ = outcome(client, uploadReq(pu, name, 0, "content"))
		s.SetFault("b2_upload_file", Fault{})
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: upload_file: client got %s, want %s...", tc.mode, got, tc.want)
		}
		waitLost(t, s, "b2_upload_file", n)
		if v := e.versions(); v[name] != "upload" {
			t.Errorf("%q: upload_file not applied: versions %v", tc.mode, v)
		}

		id := e.mustUpload("doomed")
		s.SetFault("b2_delete_file_version", f)
		got, _ = outcome(client, e.jsonReq("b2_delete_file_version", `{"fileName":"doomed","fileId":"`+id+`"}`))
		s.SetFault("b2_delete_file_version", Fault{})
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: delete_file_version: client got %s, want %s...", tc.mode, got, tc.want)
		}
		waitLost(t, s, "b2_delete_file_version", n)
		if v := e.versions(); v["doomed"] != "" {
			t.Errorf("%q: delete_file_version not applied: versions %v", tc.mode, v)
		}
	}
}

// TestLostLate holds replies back far longer than the client waits: the
// client gets no success in time, yet the calls are applied.
func TestLostLate(t *testing.T) {
	s, u := startServer(t, Config{})
	e := newRawEnv(t, u, "lost-late")
	client := lostClient(t)
	for _, mode := range []LostMode{LostLate, LostMixed} {
		f := Fault{LostRate: 1, LostAs: mode, LateWait: 2 * time.Second, MaxConsecutive: 100}
		s.ResetStats()

		rev, _ := e.bucketState()
		req, cancel := impatient(e.jsonReq("b2_update_bucket", fmt.Sprintf(`{"accountId":"%s","bucketId":"%s","bucketInfo":{"mode":"%s"},"ifRevisionIs":%d}`, e.acct, e.bucketID, mode, rev)), 50*time.Millisecond)
		s.SetFault("b2_update_bucket", f)
		got, ok := outcome(client, req)
		s.SetFault("b2_update_bucket", Fault{})
		cancel()
		if ok {
			t.Errorf("%s: update_bucket: client got %s in time", mode, got)
		}
		waitLost(t, s, "b2_update_bucket", 1)
		if rev2, info := e.bucketState(); rev2 != rev+1 || info["mode"] != string(mode) {
			t.Errorf("%s: update_bucket not applied: revision %d (was %d), info %v", mode, rev2, rev, info)
		}

		name := "late-" + string(mode)
		pu := e.call("b2_get_upload_url", `{"bucketId":"`+e.bucketID+`"}`)
		req, cancel = impatient(uploadReq(pu, name, 0, "late content"), 50*time.Millisecond)
		s.SetFault("b2_upload_file", f)
		got, ok = outcome(client, req)
		s.SetFault("b2_upload_file", Fault{})
		cancel()
		if ok {
			t.Errorf("%s: upload_file: client got %s in time", mode, got)
		}
		waitLost(t, s, "b2_upload_file", 1)
		if v := e.versions(); v[name] != "upload" {
			t.Errorf("%s: upload_file not applied: versions %v", mode, v)
		}
	}

	// A client that waits long enough gets the reply, late.
	s.SetFault("b2_update_bucket", Fault{LostRate: 1, LostAs: LostLate, LateWait: 100 * time.Millisecond})
	rev, _ := e.bucketState()
	start := time.Now()
	got, ok := outcome(client, e.jsonReq("b2_update_bucket", fmt.Sprintf(`{"accountId":"%s","bucketId":"%s","bucketInfo":{},"ifRevisionIs":%d}`, e.acct, e.bucketID, rev)))
	s.SetFault("b2_update_bucket", Fault{})
	if !ok || !strings.Contains(got, fmt.Sprintf(`"revision":%d`, rev+1)) {
		t.Errorf("patient client got %s", got)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("late reply came after %v, before LateWait", d)
	}
}

// TestLostBounds checks that failed calls keep their reply, that lost
// replies count towards MaxConsecutive, and that /emulator/stats reports
// them.
func TestLostBounds(t *testing.T) {
	s, u := startServer(t, Config{})
	e := newRawEnv(t, u, "lost-bounds")
	client := lostClient(t)

	// A failed call changed nothing: its answer is delivered as is.
	s.SetFault("b2_delete_file_version", Fault{LostRate: 1, LostAs: Lost503})
	s.ResetStats()
	got, _ := outcome(client, e.jsonReq("b2_delete_file_version", `{"fileName":"none","fileId":"4_znone"}`))
	if !strings.HasPrefix(got, "400 ") || !strings.Contains(got, "file_not_present") {
		t.Errorf("failed delete: client got %s, want 400 file_not_present", got)
	}
	if st := s.Stats(); st.Lost["b2_delete_file_version"] != 0 || st.Faults["b2_delete_file_version"] != 0 {
		t.Errorf("failed delete counted as a fault: %+v", st)
	}
	s.SetFault("b2_delete_file_version", Fault{})

	// Two lost replies in a row, then one passes, then they are lost again.
	s.SetFault("b2_update_bucket", Fault{LostRate: 1, LostAs: Lost500, MaxConsecutive: 2})
	s.ResetStats()
	var statuses []string
	for range 4 {
		got, _ := outcome(client, e.jsonReq("b2_update_bucket", `{"accountId":"`+e.acct+`","bucketId":"`+e.bucketID+`","bucketInfo":{}}`))
		statuses = append(statuses, got[:3])
	}
	s.SetFault("b2_update_bucket", Fault{})
	if fmt.Sprint(statuses) != "[500 500 200 500]" {
		t.Errorf("statuses = %v, want [500 500 200 500]", statuses)
	}
	if rev, _ := e.bucketState(); rev != 5 {
		t.Errorf("revision %d after four applied updates, want 5", rev)
	}
	waitLost(t, s, "b2_update_bucket", 3)

	r := e.get("/emulator/stats", nil)
	var st struct {
		Calls  map[string]int64 `json:"calls"`
		Faults map[string]int64 `json:"faults"`
		Lost   map[string]int64 `json:"lost"`
	}
	if err := json.Unmarshal(r.raw, &st); err != nil {
		t.Fatalf("stats %s: %v", r.raw, err)
	}
	if st.Calls["b2_update_bucket"] != 4 || st.Faults["b2_update_bucket"] != 3 || st.Lost["b2_update_bucket"] != 3 {
		t.Errorf("/emulator/stats = %s", r.raw)
	}
}
