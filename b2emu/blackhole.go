package b2emu

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// BlackHole is an endpoint that accepts connections, reads the requests
// sent on them and never answers: B2 behind a firewall that drops its
// replies, or a hung front end. It stands in for the emulator on its
// address during an outage test.
type BlackHole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn // GUARDED_BY(mu)
	paths []string   // GUARDED_BY(mu); the paths of the requests received
}

// ListenBlackHole starts a black hole on addr, retrying for a few seconds
// while the port is still held by a listener that was just closed.
func ListenBlackHole(addr string) (*BlackHole, error) {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	return NewBlackHole(ln), nil
}

// NewBlackHole starts a black hole on ln (for instance a listener of an
// in-memory network, package memnet). Close closes ln.
func NewBlackHole(ln net.Listener) *BlackHole {
	b := &BlackHole{ln: ln}
	go b.accept()
	return b
}

func (b *BlackHole) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
		go func() {
			r := bufio.NewReader(c)
			for {
				req, err := http.ReadRequest(r)
				if err != nil {
					return
				}
				b.mu.Lock()
				b.paths = append(b.paths, req.URL.Path)
				b.mu.Unlock()
			}
		}()
	}
}

// Paths returns the paths of the requests received so far.
func (b *BlackHole) Paths() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.paths...)
}

// Close stops listening and closes every connection it holds.
func (b *BlackHole) Close() error {
	err := b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	return err
}
