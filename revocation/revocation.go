// Package revocation defines the revocation list that the issuer publishes
// and every verifier reads: one binary snapshot format and the JSON shape of
// individual entries (deltas, Server-Sent Events, single-id answers). The
// issuer writes these bytes and the verifier reads them through this one
// package, so there is exactly one definition of the format.
//
// The meaning of the list — which token each entry revokes, how entries
// for the same token, subject or key merge, when they stop mattering — is
// the Index type (index.go); the position of a reader on the log, and how
// it tells that the log was restored or replaced, is the Cursor (cursor.go).
//
// # Snapshot format (version 2)
//
// All integers are big-endian. Times are Unix nanoseconds (int64); 0 is
// the zero time (an entry that never expires). Strings are a 2-byte length
// and that many bytes.
//
//	offset  size  field
//	0       4     magic "SGRL"
//	4       2     format version (2)
//	6       2     flags (0; readers reject unknown bits)
//	8       8     list version: the revocation log sequence the snapshot includes
//	16      8     build time
//	24      8     token count n (ids inserted in the filter)
//	32      8     filter bits m
//	40      4     filter hash count k
//	44      4     filter word count w (= ceil(m/64))
//	48      8*w   filter words (bits-and-blooms/bloom/v3 layout)
//	...     2+e   log epoch (see Cursor)
//	...     2+t   tag of the entry at the list version ("" when none)
//	...     4     subject count s, then s times:
//	                2+len org, 2+len subject, 8 not-before, 8 expires
//	...     4     key count c, then c times:
//	                2+len kid, 8 revoked-at, 8 expires
//	...     4     pending count p, then p times (token revocations that
//	              take effect later, not in the filter):
//	                2+len token id, 8 valid-until, 8 expires
//	...     4     CRC-32C (Castagnoli) of every preceding byte
//
// Version 1 had no epoch, no tag and no pending list; it is no longer read
// or written.
//
// The filter holds the ids of revoked tokens that have not expired, sized
// from n and the configured false-positive rate (about 28.8 bits, 3.6 bytes,
// per id at the default 1e-6). A filter hit only means "maybe revoked": a
// verifier confirms it against exact entries (deltas since the snapshot, or
// GET /revocations/{id}) before refusing a token. Subject cut-offs ("every
// token of org/subject issued before T") and withdrawn key ids are few and
// travel as exact lists.
//
// # Entries (JSON)
//
// GET /revocations?since=C answers a Delta; each SSE event on
// /revocations/events carries one Entry (event "revocation", id = the
// Cursor after it); GET /revocations/{token_id} answers one Entry (token
// entries only). Times are RFC 3339; which id field is set depends on the
// kind; tag is the entry's random tag, epoch (on events) the log's:
//
//	{"seq":7,"tag":"9f2c41d07ab35e10","kind":"token","token_id":"bzlxyrtmpw4hxjbz6s43sexds4","org":"acme",
//	 "revoked_at":"2026-11-23T10:00:00Z","expires_at":"2026-12-23T10:00:00Z"}
//	{"seq":8,"tag":"...","kind":"subject","org":"acme","subject":"bob",
//	 "not_before":"2026-11-23T10:00:00.5Z","revoked_at":"...","expires_at":"..."}
//	{"seq":9,"tag":"...","kind":"key","kid":"spuILZR8...","revoked_at":"...","expires_at":"..."}
//	{"seq":10,"tag":"...","kind":"token","token_id":"...","valid_until":"2026-11-23T11:00:00Z",...}
//
// A token entry with valid_until takes effect then: the token stays valid
// until that time (the old value of a token regenerated with a grace
// period), and is revoked from then on.
//
//	{"from":6,"version":9,"epoch":"5be0c2a4d1f08e37","tag":"...","revocations":[...]}   (a Delta)
package revocation

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
)

// Magic opens every snapshot.
const Magic = "SGRL"

// FormatVersion is the snapshot format this package writes and reads.
const FormatVersion = 2

// ContentType is the media type of an encoded snapshot.
const ContentType = "application/vnd.signet.revocations.v2"

// DefaultFalsePositiveRate is the filter's false-positive rate when the
// issuer configures none.
const DefaultFalsePositiveRate = 1e-6

// ExpiryGrace is how long an entry stays on the list after its ExpiresAt.
// A verifier accepts a token until its exp plus a clock-skew leeway, so the
// list must go on refusing a revoked token for that long; a verifier's
// leeway may not exceed ExpiryGrace.
const ExpiryGrace = 5 * time.Minute

// Live reports whether an entry that expires at expires is still on the
// list at now: always for a zero expiry, else until expires+ExpiryGrace.
func Live(expires, now time.Time) bool {
	return expires.IsZero() || now.Before(expires.Add(ExpiryGrace))
}

// Kind says what an entry withdraws.
type Kind string

// Entry kinds.
const (
	KindToken   Kind = "token"   // one token, by TokenID
	KindSubject Kind = "subject" // tokens of Org/Subject issued before NotBefore
	KindKey     Kind = "key"     // every token signed by KeyID
)

// Entry is one revocation.
type Entry struct {
	Seq uint64 `json:"seq"`
	// Tag is the random tag the store gave the entry (see Cursor).
	Tag string `json:"tag,omitempty"`
	// Epoch is the log's epoch; set on SSE events, where a reader learns
	// its position from the entry alone.
	Epoch     string    `json:"epoch,omitempty"`
	Kind      Kind      `json:"kind"`
	TokenID   string    `json:"token_id,omitempty"`
	Org       string    `json:"org,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	// ValidUntil, on a token entry, is when the revocation takes effect:
	// the token stays valid until then (a token regenerated with a grace
	// period). Zero: at once.
	ValidUntil time.Time `json:"valid_until,omitzero"`
	KeyID      string    `json:"kid,omitempty"`
	RevokedAt  time.Time `json:"revoked_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Validate reports whether e is well formed for its kind.
func (e Entry) Validate() error {
	if (e.Tag != "" && !validID(e.Tag)) || (e.Epoch != "" && !validID(e.Epoch)) {
		return errors.New("revocation: entry with a malformed tag or epoch")
	}
	if e.Kind != KindToken && !e.ValidUntil.IsZero() {
		return fmt.Errorf("revocation: %s entry with valid_until (only token entries take effect later)", e.Kind)
	}
	switch e.Kind {
	case KindToken:
		if e.TokenID == "" {
			return errors.New("revocation: token entry without token_id")
		}
	case KindSubject:
		if e.Subject == "" || e.NotBefore.IsZero() {
			return errors.New("revocation: subject entry without subject or not_before")
		}
	case KindKey:
		if e.KeyID == "" {
			return errors.New("revocation: key entry without kid")
		}
	default:
		return fmt.Errorf("revocation: unknown entry kind %q", e.Kind)
	}
	return nil
}

// Delta is the answer to GET /revocations?since=From: every entry with
// From < Seq <= Version that has not expired, ordered by Seq. Epoch and Tag
// complete Version into the Cursor a reader holds after applying it.
type Delta struct {
	From    uint64  `json:"from"`
	Version uint64  `json:"version"`
	Epoch   string  `json:"epoch,omitempty"`
	Tag     string  `json:"tag,omitempty"`
	Entries []Entry `json:"revocations"`
}

// Cursor is the position a reader holds after applying d.
func (d Delta) Cursor() Cursor { return Cursor{Version: d.Version, Epoch: d.Epoch, Tag: d.Tag} }

// SubjectCutoff revokes every token of Org/Subject issued before NotBefore.
type SubjectCutoff struct {
	Org       string
	Subject   string
	NotBefore time.Time
	ExpiresAt time.Time
}

// KeyWithdrawal revokes every token signed by KeyID.
type KeyWithdrawal struct {
	KeyID     string
	RevokedAt time.Time
	ExpiresAt time.Time
}

// PendingToken is a token revocation that takes effect later: the token
// stays valid until ValidUntil.
type PendingToken struct {
	TokenID    string
	ValidUntil time.Time
	ExpiresAt  time.Time
}

// Snapshot is the whole revocation list at one version of one log.
type Snapshot struct {
	Version uint64
	// Epoch and Tag complete Version into the snapshot's Cursor; callers
	// set them after NewSnapshot.
	Epoch      string
	Tag        string
	BuiltAt    time.Time
	TokenCount uint64
	Subjects   []SubjectCutoff
	Keys       []KeyWithdrawal
	// Pending are the token revocations not yet in effect at BuiltAt; they
	// travel exactly, outside the filter (a filter hit means "revoked now").
	Pending []PendingToken
	filter  *bloom.BloomFilter
}

// NewSnapshot builds the snapshot of version from entries (of any kind),
// skipping those no longer Live at builtAt. fpRate <= 0 means
// DefaultFalsePositiveRate.
func NewSnapshot(version uint64, builtAt time.Time, entries []Entry, fpRate float64) *Snapshot {
	if fpRate <= 0 || fpRate >= 1 {
		fpRate = DefaultFalsePositiveRate
	}
	s := &Snapshot{Version: version, BuiltAt: builtAt}
	var tokens []string
	for _, e := range entries {
		if !Live(e.ExpiresAt, builtAt) {
			continue
		}
		switch e.Kind {
		case KindToken:
			if e.ValidUntil.After(builtAt) {
				s.Pending = append(s.Pending, PendingToken{TokenID: e.TokenID, ValidUntil: e.ValidUntil, ExpiresAt: e.ExpiresAt})
				continue
			}
			tokens = append(tokens, e.TokenID)
		case KindSubject:
			s.Subjects = append(s.Subjects, SubjectCutoff{Org: e.Org, Subject: e.Subject, NotBefore: e.NotBefore, ExpiresAt: e.ExpiresAt})
		case KindKey:
			s.Keys = append(s.Keys, KeyWithdrawal{KeyID: e.KeyID, RevokedAt: e.RevokedAt, ExpiresAt: e.ExpiresAt})
		}
	}
	n := uint(len(tokens))
	if n == 0 {
		n = 1 // a valid, tiny, empty filter
	}
	s.filter = bloom.NewWithEstimates(n, fpRate)
	for _, id := range tokens {
		s.filter.AddString(id)
	}
	s.TokenCount = uint64(len(tokens))
	return s
}

// Cursor is the position of the log the snapshot shows.
func (s *Snapshot) Cursor() Cursor { return Cursor{Version: s.Version, Epoch: s.Epoch, Tag: s.Tag} }

// Exact returns the entries the snapshot carries exactly (subject cut-offs,
// key withdrawals and pending token revocations), for an Index to fold.
func (s *Snapshot) Exact() []Entry {
	out := make([]Entry, 0, len(s.Subjects)+len(s.Keys))
	for _, c := range s.Subjects {
		out = append(out, Entry{Kind: KindSubject, Org: c.Org, Subject: c.Subject, NotBefore: c.NotBefore, ExpiresAt: c.ExpiresAt})
	}
	for _, k := range s.Keys {
		out = append(out, Entry{Kind: KindKey, KeyID: k.KeyID, RevokedAt: k.RevokedAt, ExpiresAt: k.ExpiresAt})
	}
	for _, p := range s.Pending {
		out = append(out, Entry{Kind: KindToken, TokenID: p.TokenID, ValidUntil: p.ValidUntil, ExpiresAt: p.ExpiresAt})
	}
	return out
}

// NewSnapshotWithFilter builds a snapshot around a filter of m bits and k
// hashes, whatever the count; tests use it to force false positives.
func NewSnapshotWithFilter(version uint64, builtAt time.Time, tokenIDs []string, m, k uint) *Snapshot {
	s := &Snapshot{Version: version, BuiltAt: builtAt, filter: bloom.New(m, k)}
	for _, id := range tokenIDs {
		s.filter.AddString(id)
	}
	s.TokenCount = uint64(len(tokenIDs))
	return s
}

// MayContainToken reports whether id may be in the filter. False means
// certainly not revoked by id (subject and key entries aside); true must be
// confirmed exactly.
func (s *Snapshot) MayContainToken(id string) bool {
	if s == nil || s.filter == nil || s.TokenCount == 0 {
		return false
	}
	return s.filter.TestString(id)
}

// FilterBits returns the filter's size in bits.
func (s *Snapshot) FilterBits() uint { return s.filter.Cap() }

const (
	headerSize = 48
	maxString  = 1 << 10
	// maxFilterWords bounds what a decoder allocates (512 MiB of filter).
	maxFilterWords = 1 << 26
)

// MarshalBinary encodes the snapshot in the format documented above.
func (s *Snapshot) MarshalBinary() ([]byte, error) {
	words := s.filter.BitSet().Words()
	m := s.filter.Cap()
	need := uint64(m+63) / 64
	size := headerSize + 8*int(need) + 4 + len(s.Epoch) + len(s.Tag) + 4 + 4 + 4
	for _, c := range s.Subjects {
		size += 4 + len(c.Org) + len(c.Subject) + 16
	}
	for _, k := range s.Keys {
		size += 2 + len(k.KeyID) + 16
	}
	size += 4
	for _, p := range s.Pending {
		size += 2 + len(p.TokenID) + 16
	}
	b := make([]byte, 0, size)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, FormatVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, s.Version)
	b = binary.BigEndian.AppendUint64(b, unixNano(s.BuiltAt))
	b = binary.BigEndian.AppendUint64(b, s.TokenCount)
	b = binary.BigEndian.AppendUint64(b, uint64(m))
	b = binary.BigEndian.AppendUint32(b, uint32(s.filter.K()))
	b = binary.BigEndian.AppendUint32(b, uint32(need))
	for i := uint64(0); i < need; i++ {
		var w uint64
		if i < uint64(len(words)) {
			w = words[i]
		}
		b = binary.BigEndian.AppendUint64(b, w)
	}
	var err error
	if b, err = appendString(b, s.Epoch); err != nil {
		return nil, err
	}
	if b, err = appendString(b, s.Tag); err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Subjects)))
	for _, c := range s.Subjects {
		if b, err = appendString(b, c.Org); err != nil {
			return nil, err
		}
		if b, err = appendString(b, c.Subject); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint64(b, unixNano(c.NotBefore))
		b = binary.BigEndian.AppendUint64(b, unixNano(c.ExpiresAt))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Keys)))
	for _, k := range s.Keys {
		if b, err = appendString(b, k.KeyID); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint64(b, unixNano(k.RevokedAt))
		b = binary.BigEndian.AppendUint64(b, unixNano(k.ExpiresAt))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Pending)))
	for _, p := range s.Pending {
		if b, err = appendString(b, p.TokenID); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint64(b, unixNano(p.ValidUntil))
		b = binary.BigEndian.AppendUint64(b, unixNano(p.ExpiresAt))
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return b, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// unixNano encodes t; the zero time (whose UnixNano is undefined) is 0.
func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// fromUnixNano decodes what unixNano encoded.
func fromUnixNano(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

func appendString(b []byte, s string) ([]byte, error) {
	if len(s) > maxString {
		return nil, fmt.Errorf("revocation: string of %d bytes exceeds %d", len(s), maxString)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...), nil
}

// Errors returned by Decode.
var (
	// ErrFormat means the bytes are not a snapshot this package can read.
	ErrFormat = errors.New("revocation: malformed snapshot")
	// ErrChecksum means the snapshot was damaged in transit or storage.
	ErrChecksum = errors.New("revocation: snapshot checksum mismatch")
)

// Decode parses an encoded snapshot. It never panics and allocates no more
// than the input's size justifies, whatever the bytes.
func Decode(b []byte) (*Snapshot, error) {
	if len(b) < headerSize+20 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrFormat, len(b))
	}
	if string(b[:4]) != Magic {
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != FormatVersion {
		return nil, fmt.Errorf("%w: format version %d, want %d", ErrFormat, v, FormatVersion)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, ErrChecksum
	}
	if f := binary.BigEndian.Uint16(b[6:8]); f != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrFormat, f)
	}
	s := &Snapshot{
		Version:    binary.BigEndian.Uint64(b[8:16]),
		BuiltAt:    fromUnixNano(binary.BigEndian.Uint64(b[16:24])),
		TokenCount: binary.BigEndian.Uint64(b[24:32]),
	}
	m := binary.BigEndian.Uint64(b[32:40])
	k := binary.BigEndian.Uint32(b[40:44])
	w := binary.BigEndian.Uint32(b[44:48])
	if m == 0 || k == 0 || k > 64 || w > maxFilterWords || uint64(w) != (m+63)/64 {
		return nil, fmt.Errorf("%w: filter m=%d k=%d words=%d", ErrFormat, m, k, w)
	}
	r := reader{b: body, off: headerSize}
	if uint64(len(body)-r.off) < uint64(w)*8 {
		return nil, fmt.Errorf("%w: filter truncated", ErrFormat)
	}
	words := make([]uint64, w)
	for i := range words {
		words[i] = binary.BigEndian.Uint64(body[r.off:])
		r.off += 8
	}
	s.filter = bloom.FromWithM(words, uint(m), uint(k))

	epoch, ok1 := r.str()
	tag, ok2 := r.str()
	if !ok1 || !ok2 || (epoch != "" && !validID(epoch)) || (tag != "" && !validID(tag)) {
		return nil, fmt.Errorf("%w: epoch or tag", ErrFormat)
	}
	s.Epoch, s.Tag = epoch, tag

	ns, ok := r.u32()
	if !ok || uint64(ns) > uint64(len(body)-r.off)/20 {
		return nil, fmt.Errorf("%w: subject list", ErrFormat)
	}
	s.Subjects = make([]SubjectCutoff, 0, ns)
	for i := uint32(0); i < ns; i++ {
		org, ok1 := r.str()
		sub, ok2 := r.str()
		nb, ok3 := r.u64()
		ex, ok4 := r.u64()
		if !(ok1 && ok2 && ok3 && ok4) {
			return nil, fmt.Errorf("%w: subject entry %d", ErrFormat, i)
		}
		s.Subjects = append(s.Subjects, SubjectCutoff{Org: org, Subject: sub,
			NotBefore: fromUnixNano(nb), ExpiresAt: fromUnixNano(ex)})
	}
	nk, ok := r.u32()
	if !ok || uint64(nk) > uint64(len(body)-r.off)/18 {
		return nil, fmt.Errorf("%w: key list", ErrFormat)
	}
	s.Keys = make([]KeyWithdrawal, 0, nk)
	for i := uint32(0); i < nk; i++ {
		kid, ok1 := r.str()
		ra, ok2 := r.u64()
		ex, ok3 := r.u64()
		if !(ok1 && ok2 && ok3) {
			return nil, fmt.Errorf("%w: key entry %d", ErrFormat, i)
		}
		s.Keys = append(s.Keys, KeyWithdrawal{KeyID: kid,
			RevokedAt: fromUnixNano(ra), ExpiresAt: fromUnixNano(ex)})
	}
	np, ok := r.u32()
	if !ok || uint64(np) > uint64(len(body)-r.off)/18 {
		return nil, fmt.Errorf("%w: pending list", ErrFormat)
	}
	s.Pending = make([]PendingToken, 0, np)
	for i := uint32(0); i < np; i++ {
		id, ok1 := r.str()
		vu, ok2 := r.u64()
		ex, ok3 := r.u64()
		if !(ok1 && ok2 && ok3) || id == "" {
			return nil, fmt.Errorf("%w: pending entry %d", ErrFormat, i)
		}
		s.Pending = append(s.Pending, PendingToken{TokenID: id, ValidUntil: fromUnixNano(vu), ExpiresAt: fromUnixNano(ex)})
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrFormat, len(body)-r.off)
	}
	return s, nil
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) u32() (uint32, bool) {
	if len(r.b)-r.off < 4 {
		return 0, false
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, true
}

func (r *reader) u64() (uint64, bool) {
	if len(r.b)-r.off < 8 {
		return 0, false
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, true
}

func (r *reader) str() (string, bool) {
	if len(r.b)-r.off < 2 {
		return "", false
	}
	n := int(binary.BigEndian.Uint16(r.b[r.off:]))
	r.off += 2
	if n > maxString || len(r.b)-r.off < n {
		return "", false
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s, true
}

// BitsPerToken reports the filter's size per inserted token id.
func (s *Snapshot) BitsPerToken() float64 {
	if s.TokenCount == 0 {
		return math.Inf(1)
	}
	return float64(s.filter.Cap()) / float64(s.TokenCount)
}
