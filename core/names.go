package core

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"strings"
	"unicode/utf8"
)

// KeyLen is the length of a key: 40 lower-case hex characters.
const KeyLen = 40

// MaxNameBytes is the longest object name in FormatBlazer, whose B2 file
// names hold "<name>/<key>" and are at most 1,024 bytes.
const MaxNameBytes = 1024 - 1 - KeyLen

// MaxPathBytes is the longest object name in FormatB2cfs, where names live
// only in the index. It is well above Linux's PATH_MAX (4,096), since a
// tree may be deeper than any path one system call can name (a process
// works in it relative to a directory it entered), as on a local disk.
const MaxPathBytes = 32<<10 - 1

// ReservedPrefix starts the names b2cfs keeps for itself: the stored files
// of b2cfs-format groups (.b2cfs/data/, .b2cfs/manifest/) and the objects
// the namespace gives a meaning to (package namespace).
const ReservedPrefix = ".b2cfs/"

// newCommitID returns a random id for the commit log (idLen hex digits).
func newCommitID() string {
	var b [idLen / 2]byte
	rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func newKey() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func validKey(k string) bool {
	if len(k) != KeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckName reports whether name can be an object of a group: non-empty,
// valid UTF-8, at most MaxPathBytes, no control characters or DEL, and not
// starting or ending with "/" nor containing "//". A group's format may
// allow less (Group.MaxName).
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty object name", ErrBadName)
	case len(name) > MaxPathBytes:
		return fmt.Errorf("%w: object name is %d bytes, at most %d", ErrBadName, len(name), MaxPathBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: object name %q is not UTF-8", ErrBadName, name)
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		return fmt.Errorf("%w: object name %q has an empty path element", ErrBadName, name)
	}
	for _, r := range name {
		if r < 32 || r == 127 {
			return fmt.Errorf("%w: object name %q has a control character", ErrBadName, name)
		}
	}
	return nil
}

// checkGroupName checks that the bucket-info key of the group fits B2's
// rules: 1 to 50 bytes of letters, digits and "-_.~" (the safe subset of
// the characters B2 allows in info keys).
func checkGroupName(group string) error {
	key := blazerMetaKey + group
	if group == "" {
		return fmt.Errorf("%w: empty group name", ErrBadName)
	}
	if len(key) > 50 {
		return fmt.Errorf("%w: group name %q is too long: bucket-info key %q is %d bytes, B2 allows 50 (group names can be at most %d bytes)",
			ErrBadName, group, key, len(key), 50-len(blazerMetaKey))
	}
	for _, c := range []byte(group) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return fmt.Errorf("%w: group name %q may only hold letters, digits and - _ . ~", ErrBadName, group)
		}
	}
	return nil
}

// MaxName returns the longest object name the group's format allows:
// MaxNameBytes in FormatBlazer, MaxPathBytes in FormatB2cfs.
func (g *Group) MaxName() int {
	if g.format().hasAttrs() {
		return MaxPathBytes
	}
	return MaxNameBytes
}

// checkName is CheckName within the group's MaxName.
func (g *Group) checkName(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if max := g.MaxName(); len(name) > max {
		return fmt.Errorf("%w: object name is %d bytes, at most %d fit in a B2 file name", ErrBadName, len(name), max)
	}
	return nil
}
