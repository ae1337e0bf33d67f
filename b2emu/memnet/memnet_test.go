package memnet_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/b2cfs/b2cfs/b2emu/memnet"
)

// An HTTP server and client on one network, in simulated time: requests
// are answered, a handler's wait takes no wall time, an address is taken
// once, and dialling it while nothing listens fails as a refused TCP
// connection does (what core/b2 takes for an outage).
func TestNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		ln, err := n.Listen("b2.test:80")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Listen("b2.test:80"); !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("second listener on one address: %v, want EADDRINUSE", err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Hour)
			io.WriteString(w, "hello "+r.URL.Path)
		})}
		go srv.Serve(ln)
		tr := n.Transport()
		c := &http.Client{Transport: tr}
		start := time.Now()
		resp, err := c.Get("http://b2.test:80/x")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "hello /x" || time.Since(start) != time.Hour {
			t.Errorf("answer %q (%v) after %v, want %q after an hour of simulated time", b, err, time.Since(start), "hello /x")
		}

		srv.Close()
		tr.CloseIdleConnections()
		_, err = n.DialContext(context.Background(), "tcp", "b2.test:80")
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial with nothing listening: %v, want a refused dial", err)
		}
		if ln2, err := n.Listen("b2.test:80"); err != nil {
			t.Errorf("listen again after close: %v", err)
		} else {
			ln2.Close()
		}
	})
}
