package token

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// A small, strict decoder for the JSON objects of a JOSE header and JWT
// claims. encoding/json would do, but it matches member names
// case-insensitively ({"JTI":"x"} fills a field tagged jti), lets the last
// of two duplicate members win and, through a Decoder, ignores what follows
// the value: three ways for two readers of the same signed bytes to
// disagree. It also costs a good part of the verifier's time budget
// (reflection). This decoder
//
//   - matches member names exactly,
//   - refuses a member name that appears twice in any object, at any depth
//     (names compared after unescaping, so "\u006a\u0074\u0069" is "jti"),
//   - refuses invalid UTF-8, lone surrogates, control characters and
//     anything after the top-level object,
//   - skips unknown members of any shape, up to maxJSONDepth levels.

// errJSON is the scanner's one error; callers turn it into a reason.
var errJSON = errors.New("invalid JSON")

// errDuplicate is a member name seen twice in one object.
var errDuplicate = errors.New("duplicate member")

const maxJSONDepth = 32

// seenInline is how many member names of one object are tracked without
// allocating; objects with more members spill to the heap.
const seenInline = 8

type jsonScanner struct {
	b   []byte
	i   int
	tmp []byte // scratch for names with escapes
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// addName appends name to the member names of one object, or reports
// errDuplicate when it is there already. Callers start from a slice of a
// local array of seenInline entries, so objects of up to that many names
// cost no allocation (a pointer from a struct to its own array would send
// the struct to the heap). Names without escapes are sub-slices of the
// input; escaped ones are copied, since the scratch space they were
// decoded into is reused.
func addName(names [][]byte, name []byte, escaped bool) ([][]byte, error) {
	for _, m := range names {
		if bytes.Equal(m, name) {
			return names, errDuplicate
		}
	}
	if escaped {
		name = bytes.Clone(name)
	}
	return append(names, name), nil
}

// object calls member for each member of the top-level object; member
// must consume the value (with one of the value methods or skip) and
// returns known=false for names it does not know, which are then checked
// for repeats here (known members are the callers' to check: they keep a
// bit set, which is cheaper). Nothing may follow the object.
func (s *jsonScanner) object(member func(key []byte) (known bool, err error)) error {
	if !s.eat('{') {
		return errJSON
	}
	if s.eat('}') {
		return s.end()
	}
	var inline [seenInline][]byte
	unknown := inline[:0]
	for {
		s.ws()
		key, escaped, err := s.rawString(true)
		if err != nil {
			return err
		}
		if !s.eat(':') {
			return errJSON
		}
		s.ws()
		known, err := member(key)
		if err != nil {
			return err
		}
		if !known {
			// An escaped key lives in s.tmp, which only the next
			// top-level name overwrites (values and nested names are
			// decoded into fresh slices); add copies it.
			if unknown, err = addName(unknown, key, escaped); err != nil {
				return err
			}
		}
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return s.end()
		}
		return errJSON
	}
}

func (s *jsonScanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errJSON
	}
	return nil
}

// rawString reads a string and returns its decoded bytes and whether it
// had escapes. Without escapes it returns a sub-slice of the input (no
// copy); with escapes it decodes into scratch space (key) or a fresh slice.
func (s *jsonScanner) rawString(key bool) ([]byte, bool, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, errJSON
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			if !utf8.Valid(out) {
				return nil, false, errJSON
			}
			return out, false, nil
		case c == '\\':
			out, err := s.escapedString(start, key)
			return out, true, err
		case c < 0x20:
			return nil, false, errJSON
		}
		s.i++
	}
	return nil, false, errJSON
}

func (s *jsonScanner) escapedString(start int, key bool) ([]byte, error) {
	var out []byte
	if key {
		out = s.tmp[:0]
	}
	out = append(out, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if key {
				s.tmp = out
			}
			if !utf8.Valid(out) {
				return nil, errJSON
			}
			return out, nil
		case c < 0x20:
			return nil, errJSON
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, errJSON
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, errJSON
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if r2, ok = s.hex4(); !ok {
						return nil, errJSON
					}
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, errJSON // lone surrogate
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, errJSON
		}
	}
	return nil, errJSON
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// str reads a string value.
func (s *jsonScanner) str() (string, error) {
	b, _, err := s.rawString(false)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// bytesValue reads a string value without copying when it has no escapes;
// the result is valid until the input changes.
func (s *jsonScanner) bytesValue() ([]byte, error) {
	b, _, err := s.rawString(false)
	return b, err
}

// strOrStrings reads a string or an array of strings (the aud claim).
func (s *jsonScanner) strOrStrings() ([]string, error) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, err := s.str()
		if err != nil {
			return nil, err
		}
		return []string{v}, nil
	}
	if !s.eat('[') {
		return nil, errJSON
	}
	out := []string{}
	if s.eat(']') {
		return out, nil
	}
	for {
		s.ws()
		v, err := s.str()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if s.eat(',') {
			continue
		}
		if s.eat(']') {
			return out, nil
		}
		return nil, errJSON
	}
}

// maxNumericDate bounds NumericDate values (year 5138) so that conversion
// to time.Time cannot overflow.
const maxNumericDate = 1e11

// numericDate reads a JWT NumericDate: a non-negative JSON number of
// seconds, fractions allowed.
func (s *jsonScanner) numericDate() (time.Time, error) {
	start := s.i
	if err := s.number(); err != nil {
		return time.Time{}, err
	}
	num := s.b[start:s.i]
	// Fast path: a plain integer, which is what signet issues.
	if len(num) <= 11 {
		var n int64
		plain := true
		for _, c := range num {
			if c < '0' || c > '9' {
				plain = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if plain && n <= maxNumericDate {
			return time.Unix(n, 0), nil
		}
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || f < 0 || f > maxNumericDate || math.IsNaN(f) {
		return time.Time{}, errJSON
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// number consumes a JSON number.
func (s *jsonScanner) number() error {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return errJSON
	}
	if s.b[s.i] == '0' {
		s.i++
	} else if !s.digits() {
		return errJSON
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return errJSON
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return errJSON
		}
	}
	if s.i == start {
		return errJSON
	}
	return nil
}

func (s *jsonScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// skip consumes any value; objects inside it are held to the same rule of
// unique member names.
func (s *jsonScanner) skip(depth int) error {
	if depth > maxJSONDepth {
		return errJSON
	}
	s.ws()
	if s.i >= len(s.b) {
		return errJSON
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, err := s.rawString(false)
		return err
	case c == '{':
		s.i++
		if s.eat('}') {
			return nil
		}
		var inline [seenInline][]byte
		names := inline[:0]
		for {
			s.ws()
			// Names here are read as values (fresh slice when escaped),
			// so a deeper object cannot overwrite them.
			name, _, err := s.rawString(false)
			if err != nil {
				return err
			}
			if names, err = addName(names, name, false); err != nil {
				return err
			}
			if !s.eat(':') {
				return errJSON
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				return nil
			}
			return errJSON
		}
	case c == '[':
		s.i++
		if s.eat(']') {
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if s.eat(',') {
				continue
			}
			if s.eat(']') {
				return nil
			}
			return errJSON
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return nil
			}
		}
		return errJSON
	}
}
