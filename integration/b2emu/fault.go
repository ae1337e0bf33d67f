package b2emu

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"
)

// Fault describes trouble to inject into answers to one B2 call name.
// The zero Fault injects nothing.
type Fault struct {
	Latency, Jitter time.Duration // added before answering
	ErrorRate       float64       // 0..1 probability of answering an injected error
	Status          int           // e.g. 429, 500, 503, 401; default 503
	Code            string        // default from Status
	RetryAfter      int           // seconds; sends Retry-After when > 0
	DropRate        float64       // probability of dropping the connection without answer
	MaxConsecutive  int           // after this many consecutive injected faults on a call name the next call passes; default 3
	PerMinute       int           // more than this many calls per minute answer 429 + Retry-After
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
// then decides whether to drop the connection (drop) or answer an error
// (err). Injected errors and drops on a call name are bounded by
// MaxConsecutive; rate limiting is bounded by its one-minute window.
func (s *Server) injectFault(ctx context.Context, name string) (drop bool, err *apiError) {
	s.fmu.Lock()
	key := name
	f, ok := s.faults[name]
	if !ok {
		key = "*"
		f, ok = s.faults["*"]
	}
	if !ok {
		s.fmu.Unlock()
		return false, nil
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
				msg: "rate limit exceeded for " + name, retryAfter: retry}
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
		}
	}
	if injected {
		s.consec[name]++
	} else {
		s.consec[name] = 0
	}
	s.fmu.Unlock()
	sleepCtx(ctx, delay)
	return drop, err
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
