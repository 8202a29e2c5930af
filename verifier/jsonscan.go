package verifier

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// A small, strict decoder for the flat JSON objects in a JWS header and
// JWT claims. encoding/json would do, but it costs a good part of the
// verifier's time budget (reflection), and it matches member names
// case-insensitively ({"ALG":"none"} fills Alg), which invites parser
// differentials in security-relevant headers. This decoder matches names
// exactly, rejects duplicate known members, invalid UTF-8 and trailing
// data, and skips unknown members of any shape up to a bounded depth.

var errJSON = errors.New("invalid JSON")

const maxJSONDepth = 32

type jsonScanner struct {
	b   []byte
	i   int
	tmp []byte // scratch for keys with escapes
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

// object calls member for each member of the top-level object; member
// must consume the value (with one of the value methods or skip).
func (s *jsonScanner) object(member func(key []byte) error) error {
	if !s.eat('{') {
		return errJSON
	}
	if s.eat('}') {
		return s.end()
	}
	for {
		s.ws()
		key, err := s.rawString(true)
		if err != nil {
			return err
		}
		if !s.eat(':') {
			return errJSON
		}
		s.ws()
		if err := member(key); err != nil {
			return err
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

// rawString reads a string and returns its decoded bytes. Without escapes
// it returns a sub-slice of the input (no copy); with escapes it decodes
// into scratch space (key) or a fresh slice.
func (s *jsonScanner) rawString(key bool) ([]byte, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, errJSON
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
				return nil, errJSON
			}
			return out, nil
		case c == '\\':
			return s.escapedString(start, key)
		case c < 0x20:
			return nil, errJSON
		}
		s.i++
	}
	return nil, errJSON
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
	b, err := s.rawString(false)
	if err != nil {
		return "", err
	}
	return string(b), nil
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
	if len(num) <= 15 {
		var n int64
		plain := true
		for _, c := range num {
			if c < '0' || c > '9' {
				plain = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if plain {
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

// skip consumes any value.
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
		_, err := s.rawString(false)
		return err
	case c == '{':
		s.i++
		if s.eat('}') {
			return nil
		}
		for {
			s.ws()
			if _, err := s.rawString(false); err != nil {
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
