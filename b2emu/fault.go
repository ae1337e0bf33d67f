package b2emu

import (
	"bytes"
	"context"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"time"
)

// Fault describes trouble to inject into answers to one B2 call name.
// The zero Fault injects nothing.
//
// DropRate, ErrorRate and LostRate share one random draw per call, so their
// sum should be at most 1. Drops and errors happen before the call is
// applied; a lost reply happens after it.
type Fault struct {
	Latency, Jitter time.Duration // added before answering
	ErrorRate       float64       // 0..1 probability of answering an injected error
	Status          int           // e.g. 429, 500, 503, 401; default 503
	Code            string        // default from Status
	RetryAfter      int           // seconds; sends Retry-After when > 0 (injected errors and LostAs503)
	DropRate        float64       // probability of dropping the connection without answer
	MaxConsecutive  int           // after this many consecutive injected faults on a call name the next call passes; default 3
	PerMinute       int           // more than this many calls per minute answer 429 + Retry-After

	// LostRate is the 0..1 probability that the call is applied and its
	// reply then lost as LostAs says. Only replies the call answered with
	// status 200 are lost: a call that failed changed nothing and is
	// answered as usual (and counts as a call that passed). Lost replies
	// count towards MaxConsecutive like other injected faults.
	LostRate float64
	LostAs   LostMode      // how a reply is lost; "" is LostDrop
	LateWait time.Duration // how long LostLate holds a reply back; default DefaultLateWait
}

// LostMode says how the reply of an applied call is lost.
type LostMode string

// Lost modes. Any other value is taken as LostDrop.
const (
	LostDrop  LostMode = "drop"  // close the connection without answering
	Lost500   LostMode = "500"   // answer 500 internal_error instead of the reply
	Lost503   LostMode = "503"   // answer 503 service_unavailable instead of the reply
	LostLate  LostMode = "late"  // hold the reply back for LateWait, then send it if the client still waits
	LostMixed LostMode = "mixed" // one of the four above, picked at random per lost reply
)

// DefaultLateWait is LostLate's wait when Fault.LateWait is 0: longer than a
// client's usual per-call deadline (b2cfs's is 30 s by default).
const DefaultLateWait = 40 * time.Second

// lostReply is how to lose the reply of one call: a concrete mode (never
// LostMixed) and what that mode needs.
type lostReply struct {
	mode       LostMode
	wait       time.Duration // for LostLate
	retryAfter int           // for Lost503
}

// Stall holds every request that arrives in the next d until d has
// passed, then answers it as usual, as a server stopped (SIGSTOP) or
// starved of CPU for d would: no call is answered meanwhile.
func (s *Server) Stall(d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.stallEnd = time.Now().Add(d)
}

// stall waits out a Stall under way. A request whose client gave up
// meanwhile is still served once the stall ends, as a stopped server that
// resumes serves what it had read: nothing is answered during the stall.
func (s *Server) stall() {
	s.fmu.Lock()
	end := s.stallEnd
	s.fmu.Unlock()
	time.Sleep(time.Until(end))
}

// SetFault sets the fault for call, a B2 call name such as
// "b2_upload_file", or "*" for every call without a fault of its own.
// The zero Fault clears it.
func (s *Server) SetFault(call string, f Fault) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, call)
	} else {
		s.faults[call] = f
	}
	// Start the bounds afresh for the calls this fault covers.
	if call == "*" {
		s.consec = map[string]int{}
		s.window = map[string][]time.Time{}
	} else {
		delete(s.consec, call)
		delete(s.window, call)
	}
}

// defaultCode is the B2 error code sent for an injected status.
func defaultCode(status int) string {
	switch status {
	case 400:
		return "bad_request"
	case 401:
		return "expired_auth_token"
	case 403:
		return "access_denied"
	case 404:
		return "not_found"
	case 408:
		return "request_timeout"
	case 409:
		return "conflict"
	case 416:
		return "range_not_satisfiable"
	case 429:
		return "too_many_requests"
	case 503:
		return "service_unavailable"
	}
	return "internal_error"
}

// injectFault applies the fault configured for name: it sleeps the latency,
// then decides whether to drop the connection (drop), answer an error
// (err), or apply the call and lose its reply (lost, nil for none); at most
// one of them is set. Injected faults on a call name are bounded by
// MaxConsecutive; rate limiting is bounded by its one-minute window. A
// caller that got lost but does not lose the reply (the call failed) must
// call passed.
func (s *Server) injectFault(ctx context.Context, name string) (drop bool, err *apiError, lost *lostReply) {
	s.fmu.Lock()
	key := name
	f, ok := s.faults[name]
	if !ok {
		key = "*"
		f, ok = s.faults["*"]
	}
	if !ok {
		s.fmu.Unlock()
		return false, nil, nil
	}
	delay := f.Latency
	if f.Jitter > 0 {
		delay += rand.N(f.Jitter)
	}
	now := time.Now()
	if f.PerMinute > 0 {
		w := s.window[key]
		i := 0
		for i < len(w) && now.Sub(w[i]) >= time.Minute {
			i++
		}
		w = w[i:]
		if len(w) >= f.PerMinute {
			s.window[key] = w
			retry := f.RetryAfter
			if retry <= 0 {
				retry = int((time.Minute-now.Sub(w[0]))/time.Second) + 1
			}
			s.fmu.Unlock()
			sleepCtx(ctx, delay)
			return false, &apiError{status: 429, code: "too_many_requests",
				msg: "rate limit exceeded for " + name, retryAfter: retry}, nil
		}
		s.window[key] = append(w, now)
	}
	max := f.MaxConsecutive
	if max <= 0 {
		max = 3
	}
	var injected bool
	if s.consec[name] < max {
		switch r := rand.Float64(); {
		case r < f.DropRate:
			drop, injected = true, true
		case r < f.DropRate+f.ErrorRate:
			status := f.Status
			if status == 0 {
				status = 503
			}
			code := f.Code
			if name == "b2_authorize_account" && status == 401 {
				// blazer gives up on a 401 from authorize; an injected,
				// transient fault must not look like bad credentials.
				status, code = 503, ""
			}
			if code == "" {
				code = defaultCode(status)
			}
			err = &apiError{status: status, code: code, msg: "injected fault", retryAfter: f.RetryAfter}
			injected = true
		case r < f.DropRate+f.ErrorRate+f.LostRate:
			lost, injected = newLostReply(f), true
		}
	}
	if injected {
		s.consec[name]++
	} else {
		s.consec[name] = 0
	}
	s.fmu.Unlock()
	sleepCtx(ctx, delay)
	return drop, err, lost
}

// newLostReply resolves f's LostAs (and LostMixed) to one concrete way of
// losing a reply.
func newLostReply(f Fault) *lostReply {
	mode := f.LostAs
	if mode == LostMixed {
		mode = []LostMode{LostDrop, Lost500, Lost503, LostLate}[rand.N(4)]
	}
	switch mode {
	case Lost500, Lost503, LostLate:
	default:
		mode = LostDrop
	}
	wait := f.LateWait
	if wait <= 0 {
		wait = DefaultLateWait
	}
	return &lostReply{mode: mode, wait: wait, retryAfter: f.RetryAfter}
}

// passed records that a call injectFault chose to lose the reply of failed,
// so its reply was delivered: it ends the run of consecutive faults on name
// like any call that passes.
func (s *Server) passed(name string) {
	s.fmu.Lock()
	s.consec[name] = 0
	s.fmu.Unlock()
}

// loseReply loses the reply buf holds, which the applied call answered
// with 200, the way lost says. w is the connection's own writer (for
// hijacking) and cw the counting writer wrapping it. It returns when the
// reply is lost, or for LostLate when it was sent late or the client left.
func loseReply(w http.ResponseWriter, cw *countingWriter, r *http.Request, buf *replyBuffer, lost *lostReply) {
	const msg = "injected fault: the call was applied and its reply lost"
	switch lost.mode {
	case Lost500:
		writeError(cw, errf(http.StatusInternalServerError, "internal_error", msg))
	case Lost503:
		writeError(cw, &apiError{status: http.StatusServiceUnavailable, code: "service_unavailable", msg: msg, retryAfter: lost.retryAfter})
	case LostLate:
		// Reading the body to its end lets the server notice a client that
		// hangs up, which ends the wait through the request's context.
		io.Copy(io.Discard, r.Body)
		sleepCtx(r.Context(), lost.wait)
		if r.Context().Err() != nil {
			dropConn(w, cw)
			return
		}
		buf.deliver(cw)
	default:
		dropConn(w, cw)
	}
}

// dropConn closes the connection of w without an answer; the handler must
// not write after it. cw records the status -1 for the log.
func dropConn(w http.ResponseWriter, cw *countingWriter) {
	cw.status = -1
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// replyBuffer is an http.ResponseWriter that keeps a handler's answer so it
// can be delivered or lost once the call has been applied.
type replyBuffer struct {
	header http.Header
	status int // 0 until the handler writes
	body   bytes.Buffer
}

func newReplyBuffer() *replyBuffer { return &replyBuffer{header: http.Header{}} }

func (b *replyBuffer) Header() http.Header { return b.header }

func (b *replyBuffer) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *replyBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// code is the status of the kept answer; an empty answer is a 200.
func (b *replyBuffer) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// deliver sends the kept answer to w.
func (b *replyBuffer) deliver(w http.ResponseWriter) {
	maps.Copy(w.Header(), b.header)
	w.WriteHeader(b.code())
	w.Write(b.body.Bytes())
}

// testModes are the X-Bz-Test-Mode values a request carries.
type testModes struct {
	failSomeUploads bool
	expireTokens    bool
	capExceeded     bool
}

// parseTestModes reads every X-Bz-Test-Mode header line; unknown values are
// ignored.
func parseTestModes(r *http.Request) testModes {
	var m testModes
	for _, v := range r.Header.Values("X-Bz-Test-Mode") {
		switch v {
		case "fail_some_uploads":
			m.failSomeUploads = true
		case "expire_some_account_authorization_tokens":
			m.expireTokens = true
		case "force_cap_exceeded":
			m.capExceeded = true
		}
	}
	return m
}

// Test-mode rates. fail_some_uploads fails an upload with this probability
// but never twice in a row on the same upload call name;
// expire_some_account_authorization_tokens expires a token with this
// probability once the token has served testExpireMinUses calls and is at
// least testExpireMinAge old, so the call retried with a fresh token passes.
const (
	testFailRate      = 0.25
	testExpireRate    = 0.2
	testExpireMinUses = 3
	testExpireMinAge  = 50 * time.Millisecond
)

// testFailUpload reports whether fail_some_uploads should fail this upload.
func (s *Server) testFailUpload(name string) bool {
	key := "test-mode:" + name
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.consec[key] > 0 || rand.Float64() >= testFailRate {
		s.consec[key] = 0
		return false
	}
	s.consec[key]++
	return true
}
