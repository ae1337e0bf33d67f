package fs

import (
	"testing"

	"bazil.org/fuse"
)

func TestOpName(t *testing.T) {
	for _, tc := range []struct {
		req  fuse.Request
		want string
	}{
		{&fuse.ReadRequest{}, "Read"},
		{&fuse.LookupRequest{}, "Lookup"},
		{&fuse.FlushRequest{}, "Flush"},
	} {
		if got := opName(tc.req); got != tc.want {
			t.Errorf("opName(%T) = %q, want %q", tc.req, got, tc.want)
		}
	}
}
