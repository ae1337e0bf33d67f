// Package memnet is an in-memory network for tests: listeners and a dialer
// joined by net.Pipe. An HTTP server and its clients on one Network can run
// inside a testing/synctest bubble, where a goroutine waiting on a
// connection is durably blocked and time is simulated: tests of deadlines,
// retries and outages then take no wall time, and load cannot break them.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// Network is a set of listeners by address. Safe for concurrent use.
type Network struct {
	mu sync.Mutex
	ls map[string]*listener // GUARDED_BY(mu)
}

// New returns an empty network.
func New() *Network { return &Network{ls: map[string]*listener{}} }

// Listen listens on addr, any "host:port" string. It fails if something
// listens there already; once the listener is closed the address is free
// at once.
func (n *Network) Listen(addr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.ls[addr]; ok {
		return nil, &net.OpError{Op: "listen", Net: "memnet", Addr: address(addr), Err: syscall.EADDRINUSE}
	}
	l := &listener{n: n, addr: address(addr), conns: make(chan net.Conn), done: make(chan struct{})}
	n.ls[addr] = l
	return l, nil
}

// DialContext connects to the listener on addr. With none there, or once
// it closes, it fails as a refused TCP connection does: a *net.OpError
// with Op "dial" wrapping syscall.ECONNREFUSED.
func (n *Network) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	l := n.ls[addr]
	n.mu.Unlock()
	refused := &net.OpError{Op: "dial", Net: network, Addr: address(addr), Err: syscall.ECONNREFUSED}
	if l == nil {
		return nil, refused
	}
	select {
	case <-l.done:
		return nil, refused
	default:
	}
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, refused
	case <-ctx.Done():
		return nil, &net.OpError{Op: "dial", Net: network, Addr: address(addr), Err: ctx.Err()}
	}
}

// Transport returns a new HTTP transport that dials on n.
func (n *Network) Transport() *http.Transport {
	return &http.Transport{DialContext: n.DialContext}
}

// listener is one address's listener.
type listener struct {
	n     *Network
	addr  address
	conns chan net.Conn // dialled connections, handed over by DialContext
	done  chan struct{} // closed by Close
	once  sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	closed := fmt.Errorf("memnet: accept on %s: %w", l.addr, net.ErrClosed)
	select {
	case c := <-l.conns:
		select {
		case <-l.done:
			// Handed over as the listener closed: a closed TCP
			// listener accepts nothing either.
			c.Close()
			return nil, closed
		default:
			return c, nil
		}
	case <-l.done:
		return nil, closed
	}
}

// Close stops accepting; connections made before stay open.
func (l *listener) Close() error {
	err := errors.New("memnet: listener already closed")
	l.once.Do(func() {
		close(l.done)
		l.n.mu.Lock()
		if l.n.ls[string(l.addr)] == l {
			delete(l.n.ls, string(l.addr))
		}
		l.n.mu.Unlock()
		err = nil
	})
	return err
}

func (l *listener) Addr() net.Addr { return l.addr }

// address is a memnet address.
type address string

func (a address) Network() string { return "memnet" }
func (a address) String() string  { return string(a) }
