package issuer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-auth/signet/store"
)

// maxPasswordBytes is bcrypt's limit: bytes past it would be ignored, so
// longer passwords are refused rather than silently truncated.
const maxPasswordBytes = 72

// passwordFits reports whether bcrypt reads every byte of password. It is
// the one rule for both sides: HashPassword refuses to set a longer
// password (for the API and the CLI alike), and sign-in refuses a longer
// one without consulting the stored hash, since bcrypt would compare only
// its first 72 bytes and let a 72-byte password sign in with anything
// appended.
func passwordFits(password string) bool { return len(password) <= maxPasswordBytes }

// maxEmailLen is the longest email address accepted (RFC 5321 path limit).
const maxEmailLen = 254

// nameRE is the shape of usernames and organization names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// validName reports whether s has the shape of a username or org name.
func validName(s string) bool { return nameRE.MatchString(s) }

// PasswordPolicy is what HashPassword enforces. Zero values mean the
// defaults: MinLength 8 (never less), BcryptCost bcrypt.DefaultCost.
type PasswordPolicy struct {
	MinLength  int
	BcryptCost int
}

// HashPassword checks password against p and returns its bcrypt hash. A
// password shorter than MinLength characters or longer than 72 bytes is
// refused with an *Error (invalid_request) that does not repeat it.
func HashPassword(password string, p PasswordPolicy) (string, error) {
	minLen := max(p.MinLength, defaultMinPasswordLength)
	cost := p.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("hash password: bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if !utf8.ValidString(password) {
		return "", errorf(ECodeInvalid, "The password must be valid UTF-8 text.")
	}
	if n := utf8.RuneCountInString(password); n < minLen {
		return "", errorf(ECodeInvalid, "The password is too short: it needs at least %d characters.", minLen)
	}
	if !passwordFits(password) {
		return "", errorf(ECodeInvalid, "The password is too long: at most %d bytes are used by bcrypt.", maxPasswordBytes)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// ValidateUser reports, as an *Error (invalid_request), the first field of
// u that cannot be stored: username and org are 1-64 characters of a-z,
// 0-9, '.', '_' and '-' starting with a letter or digit; the role is admin
// or member; the email has one '@' with text on both sides and no spaces.
// The password hash is not checked.
func ValidateUser(u store.User) error {
	if !validName(u.Username) {
		return errorf(ECodeInvalid, "The username must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.")
	}
	if !validName(u.Org) {
		return errorf(ECodeInvalid, "The organization must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.")
	}
	if !u.Role.Valid() {
		return errorf(ECodeInvalid, "The role must be admin or member.")
	}
	if err := validateEmail(u.Email); err != nil {
		return err
	}
	return nil
}

func validateEmail(email string) error {
	local, domain, ok := strings.Cut(email, "@")
	switch {
	case !ok || local == "" || domain == "" || strings.Contains(domain, "@"):
		return errorf(ECodeInvalid, "The email address must have exactly one '@' with text on both sides.")
	case len(email) > maxEmailLen || !utf8.ValidString(email):
		return errorf(ECodeInvalid, "The email address must be valid text of at most %d bytes.", maxEmailLen)
	}
	for _, r := range email {
		if r <= ' ' || r == 0x7f {
			return errorf(ECodeInvalid, "The email address must not contain spaces or control characters.")
		}
	}
	return nil
}
