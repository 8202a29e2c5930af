package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/signet-auth/signet/token"
)

// TokenType is the JWS "typ" header of every token this package signs
// (RFC 9068): token.Type.
const TokenType = token.Type

// Defaults applied by Open to zero Config fields.
const (
	// DefaultDir is the key directory when Config.Dir is empty: under the
	// working directory's data/, beside the default store, never in a
	// source tree.
	DefaultDir = "data/keys"
	// DefaultAlgorithm is the algorithm of generated keys when
	// Config.Algorithm is empty: ES256, which every mainstream JWT library
	// and the Kubernetes API server accept.
	DefaultAlgorithm = "ES256"
	// DefaultMaxTTL is the longest token lifetime assumed when
	// Config.MaxTTL is zero (tokens.max_ttl's default).
	DefaultMaxTTL = 8760 * time.Hour
	// DefaultRunInterval is Run's interval when it is given none.
	DefaultRunInterval = 10 * time.Second
)

// unknownKidReloadInterval limits how often Verify re-reads the directory
// for a kid it does not know, so that random kids cannot make every
// request scan the disk.
const unknownKidReloadInterval = time.Second

// Errors returned by this package, checked with errors.Is.
var (
	// ErrUnknownKey: no key with that kid is on disk.
	ErrUnknownKey = errors.New("keys: unknown key")
	// ErrBadSignature: the signature does not verify with the key named by
	// kid, or the token's alg is not that key's algorithm.
	ErrBadSignature = errors.New("keys: bad signature")
	// ErrMalformed: the token is not a compact JWS signet could have
	// issued (encoding, header, forbidden header parameters).
	ErrMalformed = errors.New("keys: malformed token")
	// ErrNoSigningKey: no key may sign at this time.
	ErrNoSigningKey = errors.New("keys: no signing key")
	// ErrCorruptKey: a key file does not parse or does not hold a usable
	// private key.
	ErrCorruptKey = errors.New("keys: corrupt key file")
	// ErrInsecureFile: a key file, or the key directory, may be accessed by
	// group or other.
	ErrInsecureFile = errors.New("keys: insecure key file permissions")
)

// Config configures a Keyring. Zero values mean defaults.
type Config struct {
	// Dir holds the key files; created with mode 0700 if missing (parents
	// too). An existing directory that group or other may access is
	// tightened to 0700 with a warning in the log, or refused
	// (ErrInsecureFile) when that fails; never silently used. Default
	// "data/keys".
	Dir string
	// Algorithm of generated keys: ES256 (default), EdDSA or RS256. When
	// the newest key on disk has another algorithm, Run switches through
	// an ordinary rotation (see adoptAlgorithm).
	Algorithm string
	// PublishDelay is how long a key rotated without "now" is published
	// before it signs; zero means it signs at once.
	PublishDelay time.Duration
	// RotationPeriod rotates automatically (in Run) once the newest key's
	// sign_from is this old; zero means manual rotation only.
	RotationPeriod time.Duration
	// MaxTTL is the longest lifetime of a token. Each key file records the
	// largest MaxTTL (rounded up to whole seconds) of any keyring that
	// generated it or loaded it while it signed or was next; a retired key
	// stays published, and a revoked key on disk, for the larger of that
	// record and MaxTTL after it stopped signing, so lowering MaxTTL never
	// drops a key whose tokens are still valid. Default 8760h.
	MaxTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives key changes and Run's failures; default discards.
	Logger *slog.Logger
}

// withDefaults fills zero values and validates the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	if !supportedAlgorithm(c.Algorithm) {
		return c, fmt.Errorf("keys: algorithm %q: want EdDSA, ES256 or RS256", c.Algorithm)
	}
	if c.PublishDelay < 0 || c.RotationPeriod < 0 || c.MaxTTL < 0 {
		return c, errors.New("keys: PublishDelay, RotationPeriod and MaxTTL must not be negative")
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Keyring holds the keys of one key directory in memory. All methods are
// safe for concurrent use; Sign, Verify, JWKS and List read an immutable
// snapshot without locking.
type Keyring struct {
	cfg Config
	log *slog.Logger

	// mu guards files and lastReload and serialises snapshot rebuilds.
	// Lock order: the directory flock first, then mu.
	mu         sync.Mutex
	files      map[string]*entry // by file name, as last read
	lastReload time.Time

	cur atomic.Pointer[view]
}

// Open loads the key directory, creating it if missing. When it holds no key
// that may sign now, Open generates one that signs at once (under the
// directory lock, so concurrent first starts create one key). A directory
// that group or other may access is tightened to 0700 with a warning (and
// refused when it cannot be); a key file they may access, or one that does
// not parse, fails Open with an error naming the file.
func Open(cfg Config) (*Keyring, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(cfg.Dir, cfg.Logger.Warn); err != nil {
		return nil, err
	}
	k := &Keyring{cfg: cfg, log: cfg.Logger, files: map[string]*entry{}}
	k.cur.Store(buildView(nil, cfg.Now(), cfg.MaxTTL, nil))
	if _, err := k.Reload(); err != nil {
		return nil, err
	}
	if err := k.ensureSigning(); err != nil {
		return nil, err
	}
	if err := k.recordMaxTTL(); err != nil {
		// Signing works without it, and Run retries; until it succeeds,
		// lowering MaxTTL would end the key's publication too early.
		k.log.Warn("keys: cannot record max_ttl in the key files; Run retries", "err", err)
	}
	return k, nil
}

// Sign signs payload, JWT claims as token.Claims writes them, with the
// current signing key and returns the compact JWS and the kid. The
// protected header holds alg, kid and typ "at+jwt". A payload that
// token.ParseClaims refuses (not one JSON object, a duplicate or
// case-variant member, no iss, exp or jti, ...) is refused: nothing is
// signed that a verifier cannot read.
//
// Before signing, the signing key's file is opened and compared (inode,
// size, mtime) with the version loaded. Every change to a key is an atomic
// rename, so a key withdrawn by another process (signet keys revoke, a
// replica sharing the directory) is noticed by the first Sign after the
// change, not at the next Reload: the directory is re-read and the token
// is signed with the key that signs now. Opening, rather than a stat, makes
// NFS clients revalidate with the server (close-to-open consistency). When
// the key changed and the directory cannot be re-read, Sign fails rather
// than sign with a key that may be withdrawn.
func (k *Keyring) Sign(payload []byte) (tok string, kid string, err error) {
	var c token.Claims
	if err := token.ParseClaims(payload, &c); err != nil {
		return "", "", fmt.Errorf("keys: sign: %w", err)
	}
	s := k.current().signing
	if s == nil {
		return "", "", fmt.Errorf("keys: sign: %w", ErrNoSigningKey)
	}
	if !k.onDisk(s) {
		if _, err := k.Reload(); err != nil {
			return "", "", fmt.Errorf("keys: sign: key %s changed on disk: %w", s.kid, err)
		}
		if s = k.current().signing; s == nil {
			return "", "", fmt.Errorf("keys: sign: %w", ErrNoSigningKey)
		}
	}
	// jws.Sign writes alg into the headers, so each call gets its own.
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, s.kid); err != nil {
		return "", "", fmt.Errorf("keys: sign: %w", err)
	}
	if err := hdr.Set(jws.TypeKey, TokenType); err != nil {
		return "", "", fmt.Errorf("keys: sign: %w", err)
	}
	out, err := jws.Sign(payload, jws.WithKey(s.alg, s.signer, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", "", fmt.Errorf("keys: sign with %s: %w", s.kid, err)
	}
	return string(out), s.kid, nil
}

// onDisk reports whether e's file still is the version e was loaded from.
func (k *Keyring) onDisk(e *entry) bool {
	f, err := os.Open(filepath.Join(k.cfg.Dir, e.name))
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return statOf(fi).equal(e.stat)
}

// JWKS returns the RFC 7517 key set of the published keys (next, signing,
// retired; newest first), each with kid, alg, use "sig", kty and the public
// parameters only. The bytes are cached and shared: callers must not
// modify them. They change only when the published set changes.
func (k *Keyring) JWKS() []byte {
	return k.current().jwks
}

// JWKSVersion returns a hash of the JWKS bytes (base64url SHA-256), fit for
// an ETag.
func (k *Keyring) JWKSVersion() string {
	return k.current().version
}

// List describes every key on disk, newest first, with states at the
// current time.
func (k *Keyring) List() []KeyInfo {
	return k.current().list()
}

// Ready returns nil when a signing key is loaded, else an error wrapping
// ErrNoSigningKey.
func (k *Keyring) Ready() error {
	if k.current().signing == nil {
		return fmt.Errorf("keys: %w", ErrNoSigningKey)
	}
	return nil
}

// Rotate adds a new key of the configured algorithm. It is published at
// once and signs from now+PublishDelay, or at once when now is true (the
// way out for a compromised key; tokens signed meanwhile by the old key
// stay valid unless it is revoked). With now, every key still waiting to
// sign (state next) is withdrawn in the same change, as Revoke does, so
// that no key rotated earlier takes over from the new one at its scheduled
// time; such a key never signed, so no token needs revoking for it.
func (k *Keyring) Rotate(now bool) (KeyInfo, error) {
	// Generating (slow for RSA) happens before taking the lock.
	key, err := generateKey(jwa.SignatureAlgorithm(k.cfg.Algorithm))
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keys: rotate: %w", err)
	}
	var kid string
	var withdrawn []string
	err = k.change(func(v *view, t time.Time) ([]*entry, []*entry, error) {
		signFrom := t
		if !now {
			signFrom = t.Add(k.cfg.PublishDelay)
		}
		e, err := newGenerated(key, v.maxSeq()+1, t, signFrom, k.cfg.MaxTTL)
		if err != nil {
			return nil, nil, err
		}
		kid = e.kid
		writes := []*entry{e}
		withdrawn = withdrawn[:0]
		if now {
			for _, p := range v.entries {
				if p.revokedAt == nil && p.signFrom.After(t) {
					w := *p
					rt := t
					w.revokedAt = &rt
					writes = append(writes, &w)
					withdrawn = append(withdrawn, p.kid)
				}
			}
		}
		return writes, nil, nil
	})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keys: rotate: %w", err)
	}
	info, ok := k.current().info(kid)
	if !ok {
		return KeyInfo{}, fmt.Errorf("keys: rotate: key %s vanished after writing", kid)
	}
	for _, w := range withdrawn {
		k.log.Info("keys: withdrew a key waiting to sign, superseded by rotate --now", "kid", w, "by", kid)
	}
	k.log.Info("keys: rotated", "kid", kid, "sign_from", info.SignFrom, "state", info.State)
	return info, nil
}

// Revoke withdraws the key kid: it leaves the JWKS at once, never signs
// again, and stays on disk (so Verify still recognises its tokens) until
// every token it signed has expired. If it was the signing key, the key due
// to sign next (a published next key, brought forward) or else the most
// recent retired key takes over; when none is left, a new key is generated
// that signs at once. Revoking a revoked key returns it unchanged. An
// unknown kid gives ErrUnknownKey. Recording the withdrawal in the
// revocation list is the caller's task.
func (k *Keyring) Revoke(kid string) (KeyInfo, error) {
	err := k.change(func(v *view, t time.Time) ([]*entry, []*entry, error) {
		e := v.byKID[kid]
		if e == nil {
			return nil, nil, ErrUnknownKey
		}
		if e.revokedAt != nil {
			return nil, nil, nil
		}
		// Expired keys go first: revoking their successor would otherwise
		// bring them back into the JWKS or even to signing.
		var removes []*entry
		for _, p := range v.prunable {
			if p != e {
				removes = append(removes, p)
			}
		}
		revoked := *e
		rt := t
		revoked.revokedAt = &rt
		writes := []*entry{&revoked}
		if e != v.signing {
			return writes, removes, nil
		}
		// Keys are oldest first: the first next key is due soonest.
		for _, n := range v.entries {
			if n.revokedAt == nil && n.signFrom.After(t) {
				forward := *n
				forward.signFrom = t
				return append(writes, &forward), removes, nil
			}
		}
		for i := len(v.entries) - 1; i >= 0; i-- {
			r := v.entries[i]
			if r != e && r.revokedAt == nil && !slices.Contains(removes, r) {
				return writes, removes, nil // r signs by derivation
			}
		}
		key, err := generateKey(jwa.SignatureAlgorithm(k.cfg.Algorithm))
		if err != nil {
			return nil, nil, err
		}
		fresh, err := newGenerated(key, v.maxSeq()+1, t, t, k.cfg.MaxTTL)
		if err != nil {
			return nil, nil, err
		}
		return append(writes, fresh), removes, nil
	})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keys: revoke %s: %w", kid, err)
	}
	v := k.current()
	info, ok := v.info(kid)
	if !ok {
		return KeyInfo{}, fmt.Errorf("keys: revoke %s: key vanished after writing", kid)
	}
	signing := ""
	if v.signing != nil {
		signing = v.signing.kid
	}
	k.log.Warn("keys: revoked", "kid", kid, "signing", signing)
	return info, nil
}

// Reload re-reads the key directory and reports whether any key file was
// added, removed or changed. Unchanged files (same name, size, mtime and
// inode) are not read again, so a Reload that finds nothing new costs one
// directory listing and a stat per key. On error the keys loaded before
// stay in use.
func (k *Keyring) Reload() (changed bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked()
}

// reloadLocked is Reload with k.mu held.
func (k *Keyring) reloadLocked() (bool, error) {
	now := k.cfg.Now()
	k.lastReload = now
	stats, err := scanDir(k.cfg.Dir)
	if err != nil {
		return false, err
	}
	changed := len(stats) != len(k.files)
	files := make(map[string]*entry, len(stats))
	for name, st := range stats {
		if old, ok := k.files[name]; ok && old.stat.equal(st) {
			files[name] = old
			continue
		}
		changed = true
		e, err := readEntry(k.cfg.Dir, name, st)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // pruned by another process since the listing
			}
			return false, err
		}
		files[name] = e
	}
	if !changed {
		return false, nil
	}
	k.files = files
	k.rebuildLocked(now)
	return true, nil
}

// equal reports whether two stats describe the same version of a file.
func (s fileStat) equal(o fileStat) bool {
	return s.size == o.size && s.ino == o.ino && s.mtime.Equal(o.mtime)
}

// rebuildLocked computes a new snapshot from k.files at now and publishes
// it. k.mu must be held.
func (k *Keyring) rebuildLocked(now time.Time) *view {
	prev := k.cur.Load()
	entries := make([]*entry, 0, len(k.files))
	for _, e := range k.files {
		entries = append(entries, e)
	}
	v := buildView(entries, now, k.cfg.MaxTTL, prev)
	k.cur.Store(v)
	if prevKID, kid := signingKID(prev), signingKID(v); prevKID != kid {
		k.log.Info("keys: signing key changed", "kid", kid, "previous", prevKID)
	}
	return v
}

// signingKID is the kid of v's signing key, or "".
func signingKID(v *view) string {
	if v == nil || v.signing == nil {
		return ""
	}
	return v.signing.kid
}

// current returns the snapshot, recomputed first if the clock has passed a
// moment at which a state changes (a next key starts signing, a retired
// key's publication ends).
func (k *Keyring) current() *view {
	v := k.cur.Load()
	if v.changesAt.IsZero() {
		return v
	}
	now := k.cfg.Now()
	if now.Before(v.changesAt) {
		return v
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	v = k.cur.Load()
	if !v.changesAt.IsZero() && !now.Before(v.changesAt) {
		v = k.rebuildLocked(now)
	}
	return v
}

// change runs fn under the directory lock against the keys freshly read
// from disk, then writes and removes what fn returns (clearing temporary
// files a crashed writer left) and reloads. fn may return nothing to do.
func (k *Keyring) change(fn func(v *view, now time.Time) (writes, removes []*entry, err error)) error {
	l, err := lockDir(k.cfg.Dir)
	if err != nil {
		return err
	}
	defer l.unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.reloadLocked(); err != nil {
		return err
	}
	now := k.cfg.Now()
	v := k.rebuildLocked(now)
	writes, removes, err := fn(v, now)
	if err != nil {
		return err
	}
	writes, stamped := k.stampMaxTTL(v, writes, removes)
	if len(writes) == 0 && len(removes) == 0 {
		return nil
	}
	if err := removeStaleTemps(k.cfg.Dir); err != nil {
		return err
	}
	for _, e := range removes {
		if err := removeEntry(k.cfg.Dir, e); err != nil {
			return err
		}
	}
	for _, e := range writes {
		if err := writeEntry(k.cfg.Dir, e); err != nil {
			return err
		}
	}
	for _, s := range stamped {
		k.log.Info("keys: recorded max_ttl", "kid", s.kid, "max_ttl", s.maxTTL)
	}
	if _, err := k.reloadLocked(); err != nil {
		return err
	}
	return nil
}

// stampMaxTTL returns writes extended so that every key file records the
// right max_ttl after a change made against v, and the keys among them
// whose record it raised or filled in. A key that signs or is next before
// or after the change, or is new, may sign tokens of up to this keyring's
// MaxTTL, so a lower record is raised to it; a file that predates the
// field gets the current MaxTTL, the lifetime it has been treated with. A
// record is never lowered, and keys in removes are left alone.
func (k *Keyring) stampMaxTTL(v *view, writes, removes []*entry) (out, stamped []*entry) {
	want := recordedTTL(k.cfg.MaxTTL)
	// after is the key set once the change is made: revoking the signing
	// key may hand signing to a retired one.
	merged := make(map[string]*entry, len(v.entries)+len(writes))
	for _, e := range v.entries {
		merged[e.kid] = e
	}
	for _, e := range removes {
		delete(merged, e.kid)
	}
	for _, w := range writes {
		merged[w.kid] = w
	}
	after := buildView(slices.Collect(maps.Values(merged)), v.at, k.cfg.MaxTTL, nil)
	need := func(e *entry) (time.Duration, bool) {
		if e.maxTTL == 0 || (e.maxTTL < want && (v.maySign(e.kid) || after.maySign(e.kid))) {
			return max(e.maxTTL, want), true
		}
		return e.maxTTL, false
	}
	skip := make(map[string]bool, len(writes)+len(removes))
	for _, e := range removes {
		skip[e.kid] = true
	}
	out = make([]*entry, 0, len(writes))
	for _, w := range writes {
		skip[w.kid] = true
		if ttl, ok := need(w); ok {
			c := *w
			c.maxTTL = ttl
			w = &c
		}
		out = append(out, w)
	}
	for _, e := range v.entries {
		if skip[e.kid] {
			continue
		}
		if ttl, ok := need(e); ok {
			c := *e
			c.maxTTL = ttl
			out = append(out, &c)
			stamped = append(stamped, &c)
		}
	}
	return out, stamped
}

// maxTTLStale reports whether a key that signs or is next in v records a
// max_ttl below this keyring's MaxTTL (or none), so that recordMaxTTL has
// work to do.
func (k *Keyring) maxTTLStale(v *view) bool {
	want := recordedTTL(k.cfg.MaxTTL)
	for _, e := range v.entries {
		if e.maxTTL < want && v.maySign(e.kid) {
			return true
		}
	}
	return false
}

// recordMaxTTL raises, under the directory lock, the recorded max_ttl of
// the keys that sign or are next when this keyring's MaxTTL is larger,
// since they may now sign tokens that live that long.
func (k *Keyring) recordMaxTTL() error {
	if !k.maxTTLStale(k.current()) {
		return nil
	}
	err := k.change(func(*view, time.Time) ([]*entry, []*entry, error) {
		return nil, nil, nil // change stamps what still needs it
	})
	if err != nil {
		return fmt.Errorf("keys: record max_ttl: %w", err)
	}
	return nil
}

// newGenerated wraps a freshly generated key as an entry to be written;
// maxTTL is the token lifetime it may sign under.
func newGenerated(key jwk.Key, seq uint64, now, signFrom time.Time, maxTTL time.Duration) (*entry, error) {
	kid, err := Thumbprint(key)
	if err != nil {
		return nil, err
	}
	kf := &keyFile{
		Version:   fileVersion,
		KID:       kid,
		Algorithm: key.Algorithm().String(),
		Seq:       seq,
		CreatedAt: now.UTC(),
		SignFrom:  signFrom.UTC(),
		// Rounded up to whole seconds, the unit of the file.
		MaxTTLSeconds: int64(recordedTTL(maxTTL) / time.Second),
	}
	e, err := newEntry(kf, key)
	if err != nil {
		return nil, fmt.Errorf("new key %s: %w", kid, err)
	}
	return e, nil
}

// ensureSigning generates a key that signs at once when no key may sign
// now, checking again under the lock so that concurrent callers create one.
func (k *Keyring) ensureSigning() error {
	if k.current().signing != nil {
		return nil
	}
	key, err := generateKey(jwa.SignatureAlgorithm(k.cfg.Algorithm))
	if err != nil {
		return err
	}
	var kid string
	err = k.change(func(v *view, t time.Time) ([]*entry, []*entry, error) {
		if v.signing != nil {
			return nil, nil, nil
		}
		e, err := newGenerated(key, v.maxSeq()+1, t, t, k.cfg.MaxTTL)
		if err != nil {
			return nil, nil, err
		}
		kid = e.kid
		return []*entry{e}, nil, nil
	})
	if err != nil {
		return fmt.Errorf("keys: generate first key: %w", err)
	}
	if kid != "" {
		k.log.Info("keys: generated signing key", "kid", kid, "alg", k.cfg.Algorithm)
	}
	return nil
}

// rotationDue reports whether automatic rotation should add a key at now.
func (k *Keyring) rotationDue(v *view, now time.Time) bool {
	if k.cfg.RotationPeriod <= 0 {
		return false
	}
	n := v.newestLive()
	return n == nil || !now.Before(n.signFrom.Add(k.cfg.RotationPeriod))
}

// rotateIfDue performs automatic rotation when it is due, checking again
// under the lock so that replicas racing for it add one key between them.
func (k *Keyring) rotateIfDue() (bool, error) {
	if !k.rotationDue(k.current(), k.cfg.Now()) {
		return false, nil
	}
	key, err := generateKey(jwa.SignatureAlgorithm(k.cfg.Algorithm))
	if err != nil {
		return false, fmt.Errorf("keys: automatic rotation: %w", err)
	}
	var kid string
	err = k.change(func(v *view, t time.Time) ([]*entry, []*entry, error) {
		if !k.rotationDue(v, t) {
			return nil, nil, nil // another replica rotated first
		}
		e, err := newGenerated(key, v.maxSeq()+1, t, t.Add(k.cfg.PublishDelay), k.cfg.MaxTTL)
		if err != nil {
			return nil, nil, err
		}
		kid = e.kid
		return []*entry{e}, nil, nil
	})
	if err != nil {
		return false, fmt.Errorf("keys: automatic rotation: %w", err)
	}
	if kid == "" {
		return false, nil
	}
	k.log.Info("keys: rotated automatically", "kid", kid)
	return true, nil
}

// prune deletes expired keys and revoked keys whose tokens have all expired.
func (k *Keyring) prune() (int, error) {
	if len(k.current().prunable) == 0 {
		return 0, nil
	}
	var removed []string
	err := k.change(func(v *view, _ time.Time) ([]*entry, []*entry, error) {
		removed = removed[:0]
		for _, e := range v.prunable {
			removed = append(removed, e.kid)
		}
		return nil, v.prunable, nil
	})
	if err != nil {
		return 0, fmt.Errorf("keys: prune: %w", err)
	}
	for _, kid := range removed {
		k.log.Info("keys: pruned key", "kid", kid)
	}
	return len(removed), nil
}

// maintain is one round of Run: reload, recompute states, generate a
// signing key if none is left, record a larger MaxTTL in the keys that may
// sign under it, rotate when due, prune.
func (k *Keyring) maintain() error {
	var errs []error
	if _, err := k.Reload(); err != nil {
		errs = append(errs, err)
	}
	// Recompute against the clock even when no file changed: prune times
	// of revoked keys are not among the moments current() watches.
	k.mu.Lock()
	k.rebuildLocked(k.cfg.Now())
	k.mu.Unlock()
	if err := k.ensureSigning(); err != nil {
		errs = append(errs, err)
	}
	if err := k.recordMaxTTL(); err != nil {
		errs = append(errs, err)
	}
	if _, err := k.rotateIfDue(); err != nil {
		errs = append(errs, err)
	}
	if _, err := k.prune(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// adoptAlgorithm makes a change of Config.Algorithm take effect the way
// any rotation does: when the newest key that signs or is due to sign has
// another algorithm, it adds a key of the configured one that is published
// at once and signs from now+PublishDelay (never before that newest key's
// own sign_from, so it does take over). Tokens already signed keep
// verifying: the old keys retire as usual. It reports whether it added a
// key, checking again under the lock so that replicas starting together
// add one between them.
func (k *Keyring) adoptAlgorithm() (bool, error) {
	want := jwa.SignatureAlgorithm(k.cfg.Algorithm)
	differs := func(v *view) bool {
		n := v.newestLive()
		return n != nil && n.alg != want
	}
	if !differs(k.current()) {
		return false, nil
	}
	key, err := generateKey(want)
	if err != nil {
		return false, fmt.Errorf("keys: switch to %s: %w", want, err)
	}
	var info *entry
	err = k.change(func(v *view, t time.Time) ([]*entry, []*entry, error) {
		if !differs(v) {
			return nil, nil, nil
		}
		old := v.newestLive()
		signFrom := t.Add(k.cfg.PublishDelay)
		if old.signFrom.After(signFrom) {
			signFrom = old.signFrom
		}
		e, err := newGenerated(key, v.maxSeq()+1, t, signFrom, k.cfg.MaxTTL)
		if err != nil {
			return nil, nil, err
		}
		info = e
		return []*entry{e}, nil, nil
	})
	if err != nil {
		return false, fmt.Errorf("keys: switch to %s: %w", want, err)
	}
	if info == nil {
		return false, nil
	}
	k.log.Info("keys: keys.algorithm changed; the new key is published now and signs after publish_delay",
		"kid", info.kid, "alg", want, "sign_from", info.signFrom)
	return true, nil
}

// Run keeps the keyring current until ctx ends: every interval (default
// 10s) it reloads the directory, recomputes states against the clock (so a
// next key starts signing on time), records a larger MaxTTL in the keys
// that may sign under it, rotates when RotationPeriod is due and prunes
// keys whose publication has ended. Until it has once succeeded, each
// round also switches to Config.Algorithm when the newest key has another
// (adoptAlgorithm); only once, so that replicas configured differently
// cannot rotate each other's keys forever. Failures are logged and retried
// on the next round.
func (k *Keyring) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultRunInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	adopted := false
	for {
		if err := k.maintain(); err != nil {
			k.log.Error("keys: maintenance failed", "err", err)
		}
		if !adopted {
			if _, err := k.adoptAlgorithm(); err != nil {
				k.log.Error("keys: switching algorithm failed; retrying", "err", err)
			} else {
				adopted = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
