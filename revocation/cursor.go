package revocation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Cursor names one position on one revocation log: the list version (the
// Seq of the log's latest entry), the log's epoch, and the tag of the entry
// at that version.
//
// The epoch is a random id the store gives the log when it is created, so
// the logs of two databases never share one. The tag is a random id the
// store gives each entry as it is appended. A database restored from a
// backup keeps its epoch but goes back to an older version; the entries it
// then appends reuse Seqs that running verifiers have already passed, but
// with new tags. So a reader that resumes from a cursor can tell whether
// the log it reads is still the one it followed: same epoch, a version no
// higher than the log's, and the same tag at that version. When any of the
// three differs, the reader loads a fresh snapshot.
//
// Text form: "<version>.<epoch>.<tag>", with empty trailing parts left
// out (a log without entries has no tag). The ETag of a snapshot is the
// quoted cursor; since= and Last-Event-ID accept a cursor or a bare
// version (a bare version is not checked against the log).
type Cursor struct {
	Version uint64
	Epoch   string
	Tag     string
}

// maxCursorPart bounds the epoch and the tag.
const maxCursorPart = 64

// String returns the text form of c.
func (c Cursor) String() string {
	s := strconv.FormatUint(c.Version, 10)
	switch {
	case c.Tag != "":
		return s + "." + c.Epoch + "." + c.Tag
	case c.Epoch != "":
		return s + "." + c.Epoch
	}
	return s
}

// ErrCursor means a cursor's text form is malformed.
var ErrCursor = errors.New("revocation: malformed cursor")

// ParseCursor parses the text form of a cursor, or a bare version.
func ParseCursor(s string) (Cursor, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return Cursor{}, fmt.Errorf("%w: too many parts", ErrCursor)
	}
	v, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: the version must be a non-negative integer", ErrCursor)
	}
	c := Cursor{Version: v}
	for i, p := range parts[1:] {
		if !validID(p) {
			return Cursor{}, fmt.Errorf("%w: part %d is not an id", ErrCursor, i+2)
		}
	}
	if len(parts) > 1 {
		c.Epoch = parts[1]
	}
	if len(parts) > 2 {
		c.Tag = parts[2]
	}
	return c, nil
}

// validID reports whether s can be an epoch or a tag: 1 to 64 characters
// of [0-9A-Za-z_-].
func validID(s string) bool {
	if s == "" || len(s) > maxCursorPart {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= '0' && b <= '9', b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b == '-', b == '_':
		default:
			return false
		}
	}
	return true
}

// ValidID reports whether s is acceptable as an epoch or an entry tag.
func ValidID(s string) bool { return validID(s) }
