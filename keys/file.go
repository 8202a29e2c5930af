package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

const (
	// fileVersion is the key file format this package writes and reads.
	fileVersion = 1
	// fileSuffix ends the name of every key file.
	fileSuffix = ".json"
	// lockName is the flock(2) target inside the key directory.
	lockName = ".lock"
	// maxFileSize bounds what is read from a key file; an RSA-4096 private
	// JWK with metadata is about 4 KiB.
	maxFileSize = 64 << 10
	// minRSABits is the smallest RSA modulus accepted for RS256.
	minRSABits = 2048
	// rsaBits is the modulus size of generated RSA keys.
	rsaBits = 2048
	// maxTTLSecondsLimit bounds max_ttl_seconds so that it fits a
	// time.Duration.
	maxTTLSecondsLimit = math.MaxInt64 / int64(time.Second)
)

// recordedTTL rounds d up to whole seconds, the unit key files record, so
// that a recorded lifetime never falls short of the configured one.
func recordedTTL(d time.Duration) time.Duration {
	if r := d % time.Second; r != 0 {
		if d > time.Duration(math.MaxInt64)-time.Second {
			return time.Duration(maxTTLSecondsLimit) * time.Second
		}
		d += time.Second - r
	}
	return d
}

// keyFile is the on-disk JSON form of one key.
type keyFile struct {
	Version   int        `json:"version"`
	KID       string     `json:"kid"`
	Algorithm string     `json:"algorithm"`
	Seq       uint64     `json:"seq"`
	CreatedAt time.Time  `json:"created_at"`
	SignFrom  time.Time  `json:"sign_from"`
	RevokedAt *time.Time `json:"revoked_at"`
	// MaxTTLSeconds is the longest token lifetime, in whole seconds, the
	// key may have signed. Optional: files written before it existed lack
	// it (zero), which means unknown.
	MaxTTLSeconds int64           `json:"max_ttl_seconds,omitempty"`
	Key           json.RawMessage `json:"key"`
}

// fileStat identifies one version of a key file so that Reload can tell
// cheaply whether it changed. An atomic rename gives the name a new inode.
type fileStat struct {
	size  int64
	mtime time.Time
	ino   uint64
}

// entry is one key as loaded into memory. It is immutable once built;
// changes produce a new entry.
type entry struct {
	name      string // file name, "<kid>.json"
	stat      fileStat
	kid       string
	alg       jwa.SignatureAlgorithm
	seq       uint64
	createdAt time.Time
	signFrom  time.Time
	revokedAt *time.Time
	// maxTTL is the recorded longest lifetime of a token the key may have
	// signed, a whole number of seconds; zero when the file predates the
	// field (unknown).
	maxTTL    time.Duration
	private   jwk.Key // the private JWK as stored; written back on changes
	signer    any     // raw private key for jws.Sign
	public    any     // raw public key for verification
	publicJWK []byte  // JSON of the public JWK: kid, alg, use and public params
}

// before orders keys by (sign_from, seq, kid).
func (e *entry) before(o *entry) bool {
	if !e.signFrom.Equal(o.signFrom) {
		return e.signFrom.Before(o.signFrom)
	}
	if e.seq != o.seq {
		return e.seq < o.seq
	}
	return e.kid < o.kid
}

// supportedAlgorithm reports whether alg is one signet signs with.
func supportedAlgorithm(alg string) bool {
	switch jwa.SignatureAlgorithm(alg) {
	case jwa.EdDSA, jwa.ES256, jwa.RS256:
		return true
	}
	return false
}

// generateKey creates a new private key for alg and returns it as a JWK
// whose kid is its thumbprint.
func generateKey(alg jwa.SignatureAlgorithm) (jwk.Key, error) {
	var raw any
	var err error
	switch alg {
	case jwa.EdDSA:
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case jwa.ES256:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.RS256:
		raw, err = rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, fmt.Errorf("keys: generate: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	kid, err := Thumbprint(key)
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := key.Set(name, v); err != nil {
			return nil, fmt.Errorf("keys: generate %s key: set %s: %w", alg, name, err)
		}
	}
	return key, nil
}

// newEntry builds the in-memory form of a key from its metadata and private
// JWK, checking that the key fits the algorithm and the kid. The errors it
// returns never contain key bytes.
func newEntry(kf *keyFile, key jwk.Key) (*entry, error) {
	if !supportedAlgorithm(kf.Algorithm) {
		return nil, fmt.Errorf("algorithm %q is not EdDSA, ES256 or RS256", kf.Algorithm)
	}
	alg := jwa.SignatureAlgorithm(kf.Algorithm)
	kid, err := Thumbprint(key)
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	if kid != kf.KID {
		return nil, fmt.Errorf("kid %q is not the key's RFC 7638 thumbprint %q", kf.KID, kid)
	}
	if kf.CreatedAt.IsZero() || kf.SignFrom.IsZero() {
		return nil, errors.New("created_at and sign_from are required")
	}
	if kf.MaxTTLSeconds < 0 || kf.MaxTTLSeconds > maxTTLSecondsLimit {
		return nil, fmt.Errorf("max_ttl_seconds %d is negative or above %d", kf.MaxTTLSeconds, maxTTLSecondsLimit)
	}
	var raw any
	if err := key.Raw(&raw); err != nil {
		return nil, errors.New("private key cannot be decoded")
	}
	var public any
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		if alg != jwa.EdDSA {
			return nil, fmt.Errorf("an Ed25519 key cannot sign %s", alg)
		}
		if len(k) != ed25519.PrivateKeySize {
			return nil, errors.New("Ed25519 private key has the wrong length")
		}
		public = k.Public()
	case *ecdsa.PrivateKey:
		if k.Curve == nil || k.Curve != elliptic.P256() || alg != jwa.ES256 {
			return nil, fmt.Errorf("an EC key cannot sign %s unless it is on P-256 and the algorithm is ES256", alg)
		}
		public = k.Public()
	case *rsa.PrivateKey:
		if alg != jwa.RS256 {
			return nil, fmt.Errorf("an RSA key cannot sign %s", alg)
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
		if err := k.Validate(); err != nil {
			return nil, errors.New("RSA private key is inconsistent")
		}
		k.Precompute()
		public = k.Public()
	default:
		return nil, fmt.Errorf("key type %s is not a private signing key", key.KeyType())
	}
	pub, err := jwk.FromRaw(public)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := pub.Set(name, v); err != nil {
			return nil, fmt.Errorf("public key: set %s: %w", name, err)
		}
	}
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	e := &entry{
		name:      kid + fileSuffix,
		kid:       kid,
		alg:       alg,
		seq:       kf.Seq,
		createdAt: kf.CreatedAt.UTC(),
		signFrom:  kf.SignFrom.UTC(),
		maxTTL:    time.Duration(kf.MaxTTLSeconds) * time.Second,
		private:   key,
		signer:    raw,
		public:    public,
		publicJWK: pubJSON,
	}
	if kf.RevokedAt != nil {
		t := kf.RevokedAt.UTC()
		e.revokedAt = &t
	}
	return e, nil
}

// readEntry loads and checks one key file. Errors name the file and never
// contain its bytes.
func readEntry(dir, name string, st fileStat) (*entry, error) {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keys: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("keys: %s: %w: larger than %d bytes", path, ErrCorruptKey, maxFileSize)
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		// The decoder's messages may quote input; report only where.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("keys: %s: %w: invalid JSON at byte %d", path, ErrCorruptKey, se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("keys: %s: %w: field %q has the wrong type", path, ErrCorruptKey, te.Field)
		}
		return nil, fmt.Errorf("keys: %s: %w: invalid JSON", path, ErrCorruptKey)
	}
	if kf.Version != fileVersion {
		return nil, fmt.Errorf("keys: %s: %w: format version %d, want %d", path, ErrCorruptKey, kf.Version, fileVersion)
	}
	if want := strings.TrimSuffix(name, fileSuffix); kf.KID != want {
		return nil, fmt.Errorf("keys: %s: %w: kid %q does not match the file name", path, ErrCorruptKey, kf.KID)
	}
	if len(kf.Key) == 0 {
		return nil, fmt.Errorf("keys: %s: %w: no key", path, ErrCorruptKey)
	}
	key, err := jwk.ParseKey(kf.Key)
	if err != nil {
		// jwx errors may echo parts of the JWK; keep them out.
		return nil, fmt.Errorf("keys: %s: %w: key is not a valid JWK", path, ErrCorruptKey)
	}
	e, err := newEntry(&kf, key)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w: %w", path, ErrCorruptKey, err)
	}
	e.name = name
	e.stat = st
	return e, nil
}

// encodeEntry renders e as the JSON of its key file.
func encodeEntry(e *entry) ([]byte, error) {
	keyJSON, err := json.Marshal(e.private)
	if err != nil {
		return nil, fmt.Errorf("encode key %s: %w", e.kid, err)
	}
	kf := keyFile{
		Version:   fileVersion,
		KID:       e.kid,
		Algorithm: string(e.alg),
		Seq:       e.seq,
		CreatedAt: e.createdAt,
		SignFrom:  e.signFrom,
		RevokedAt: e.revokedAt,
		// Rounded up again in case an entry was built with a fraction.
		MaxTTLSeconds: int64(recordedTTL(e.maxTTL) / time.Second),
		Key:           keyJSON,
	}
	data, err := json.MarshalIndent(&kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode key %s: %w", e.kid, err)
	}
	return append(data, '\n'), nil
}

// writeEntry stores e as <dir>/<kid>.json atomically: a temporary file in
// the same directory, fsync, rename over the target, fsync of the
// directory.
func writeEntry(dir string, e *entry) error {
	data, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	target := filepath.Join(dir, e.kid+fileSuffix)
	// The leading dot and the .tmp suffix keep half-written files out of
	// every directory scan.
	tmp, err := os.CreateTemp(dir, "."+e.kid+".*.tmp")
	if err != nil {
		return fmt.Errorf("keys: write %s: %w", target, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("keys: write %s: %w", target, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("keys: write %s: %w", target, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("keys: write %s: sync: %w", target, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keys: write %s: %w", target, err)
	}
	if err := os.Rename(tmpName, target); err != nil {
		return fmt.Errorf("keys: write %s: %w", target, err)
	}
	ok = true
	return syncDir(dir)
}

// removeStaleTemps deletes temporary files that writeEntry left behind when
// its process died between creating and renaming one. They may hold a
// private key (even of a key since pruned), so they must not linger. Only
// holders of the directory lock write temporary files, so one found while
// holding it is an orphan.
func removeStaleTemps(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("keys: read directory %s: %w", dir, err)
	}
	removed := false
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".tmp") || !de.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keys: remove stale %s: %w", path, err)
		}
		removed = true
	}
	if !removed {
		return nil
	}
	return syncDir(dir)
}

// removeEntry deletes the file of e and syncs the directory.
func removeEntry(dir string, e *entry) error {
	path := filepath.Join(dir, e.name)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keys: remove %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keys: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keys: sync %s: %w", dir, err)
	}
	return nil
}

// prepareDir creates dir (and its parents) with mode 0700 when it is
// missing. An existing directory that group or other may access is
// tightened to 0700 (its owner bits kept) and reported to warn, since
// whoever may list or write the directory may read key names, swap a key
// file or plant one, whatever the files' own modes; one that cannot be
// tightened (a read-only mount, another owner) is refused.
func prepareDir(dir string, warn func(msg string, args ...any)) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keys: create directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("keys: stat %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("keys: %s is not a directory", dir)
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	tight := perm &^ 0o077
	if err := os.Chmod(dir, tight); err != nil {
		return fmt.Errorf("keys: directory %s: %w: mode %04o lets group or other access it and it cannot be tightened (%w); want 0700 (chmod 700 %s)", dir, ErrInsecureFile, perm, err, dir)
	}
	warn("keys: the key directory let group or other access it; tightened it", "dir", dir, "was", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", tight))
	return nil
}

// scanDir lists the key files in dir with their stats. It refuses files that
// group or other may access and anything under a key name that is not a
// regular file.
func scanDir(dir string) (map[string]fileStat, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("keys: read directory %s: %w", dir, err)
	}
	out := make(map[string]fileStat, len(des))
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, fileSuffix) {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symlinks, as mounted secrets use them
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by a prune in another process meanwhile
			}
			return nil, fmt.Errorf("keys: stat %s: %w", path, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("keys: %s: not a regular file", path)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("keys: %s: %w: mode %04o lets group or other access a private key; want 0600 (chmod 600 %s)", path, ErrInsecureFile, perm, path)
		}
		out[name] = statOf(fi)
	}
	return out, nil
}

// statOf is the identity of one version of a file.
func statOf(fi os.FileInfo) fileStat {
	st := fileStat{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// dirLock is a held flock(2) on <dir>/.lock.
type dirLock struct{ f *os.File }

// lockDir takes the exclusive lock of dir, waiting for other holders. Every
// call opens its own file description, so two Keyrings in one process
// exclude each other as two processes do.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keys: lock %s: %w", path, err)
	}
	// Retry a bounded number of times when a signal interrupts the wait.
	for range 1000 {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("keys: lock %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock; closing the descriptor drops it.
func (l *dirLock) unlock() {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN) //nolint:errcheck // Close releases it anyway
	l.f.Close()
}
