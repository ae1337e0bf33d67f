package integration

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// TestTokensExpireUnderWrites: with account and upload tokens that expire
// every 300 ms, and then an emulator restarted from its saved state (which
// knows none of the tokens handed out before), a mount writes and reads on
// without one error: every call path re-authorises on expired_auth_token
// and bad_auth_token, uploads included.
func TestTokensExpireUnderWrites(t *testing.T) {
	dir := t.TempDir()
	cfg := b2emu.Config{TokenLifetime: 300 * time.Millisecond, Dir: dir}
	e := newEnv(t, cfg)
	m := e.mount("tokens", "format=b2cfs")
	write := func(phase string, n int) {
		for i := range n {
			name := fmt.Sprintf("%s-%02d", phase, i)
			data := bytes.Repeat([]byte(name), 20_000)
			if err := os.WriteFile(m.path(name), data, 0o644); err != nil {
				t.Fatalf("%s: write %s: %v", phase, name, err)
			}
			if got, err := os.ReadFile(m.path(name)); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: read %s back: %d bytes, %v", phase, name, len(got), err)
			}
			time.Sleep(50 * time.Millisecond) // let tokens expire between calls
		}
	}
	write("expiring", 30)
	auths := e.calls()["b2_authorize_account"]
	if auths < 2 {
		t.Errorf("tokens that expire every 300 ms were never renewed: %d authorisations", auths)
	}

	// A new emulator process on the same address and state.
	e.stop()
	emu, err := b2emu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	e.emu = emu
	e.start()
	write("restarted", 10)
	for _, phase := range []string{"expiring-29", "restarted-09"} {
		if _, err := object(t, e.group("tokens"), phase); err != nil {
			t.Errorf("%s not in B2: %v", phase, err)
		}
	}
	if log := m.log.String(); bytes.Contains([]byte(log), []byte("errno=EIO")) {
		t.Errorf("EIO under token expiry:\n%s", log)
	}
	t.Logf("%d authorisations over 40 writes and reads with 300 ms tokens and one restart", auths+e.calls()["b2_authorize_account"])
}
