package issuer

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/signet-auth/signet/store"
)

// Browser sessions of the web UI. A session is created by POST
// /ui/api/login after the issuer's own password check, lives only in this
// process's memory, and is named by a random 256-bit id carried in the
// HttpOnly cookie signet_session. The map is keyed by the SHA-256 of the
// id, so neither a heap dump nor a lookup's timing reveals a usable id.

const (
	// sessionCookie is the name of the cookie carrying the session id.
	sessionCookie = "signet_session"
	// csrfHeader carries the session's CSRF token on state-changing calls.
	csrfHeader = "X-CSRF-Token"

	defaultSessionIdle     = 30 * time.Minute
	defaultSessionLifetime = 8 * time.Hour
	defaultMaxSessions     = 10000
	defaultMaxUserSessions = 20

	// sessionIDBytes is 256 bits, the brief's and OWASP's floor is 128.
	sessionIDBytes = 32
)

// sessionConfig bounds sessions. Zero values mean the defaults above.
type sessionConfig struct {
	// Idle ends a session that saw no request for this long (sliding).
	Idle time.Duration
	// Lifetime ends a session this long after sign-in, however busy.
	Lifetime time.Duration
	// MaxSessions bounds the whole map; past it the least recently used
	// session is dropped to make room.
	MaxSessions int
	// MaxPerUser bounds one user's sessions the same way, so one account
	// signing in in a loop cannot push everyone else out.
	MaxPerUser int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Rand is the randomness for ids and CSRF tokens (crypto/rand when nil).
	Rand io.Reader
}

func (c sessionConfig) withDefaults() sessionConfig {
	if c.Idle <= 0 {
		c.Idle = defaultSessionIdle
	}
	if c.Lifetime <= 0 {
		c.Lifetime = defaultSessionLifetime
	}
	if c.Idle > c.Lifetime {
		c.Idle = c.Lifetime
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = defaultMaxSessions
	}
	if c.MaxPerUser <= 0 {
		c.MaxPerUser = defaultMaxUserSessions
	}
	if c.MaxPerUser > c.MaxSessions {
		c.MaxPerUser = c.MaxSessions
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// sessionKey is the SHA-256 of a session id: what the map is keyed by.
type sessionKey [sha256.Size]byte

// session is one signed-in browser. Copies are handed out; the map owns
// the original.
type session struct {
	key      sessionKey
	CSRF     string
	Username string
	// UserID is the user's id: a user created later under the same name
	// is someone else, and the session ends.
	UserID string
	Org    string
	Role   store.Role
	// UserUpdated is the user's UpdatedAt at sign-in: a password change
	// (or any other change to the user) moves it and ends the session.
	UserUpdated time.Time
	Created     time.Time
	LastUsed    time.Time
}

// sessionStore is the in-memory map of live sessions. Safe for concurrent
// use.
type sessionStore struct {
	cfg sessionConfig

	mu        sync.Mutex
	byID      map[sessionKey]*session
	lastSweep time.Time
}

// newSessionStore returns an empty store bounded by cfg.
func newSessionStore(cfg sessionConfig) *sessionStore {
	return &sessionStore{cfg: cfg.withDefaults(), byID: make(map[sessionKey]*session)}
}

// randomString returns n random bytes from r, base64url without padding.
func randomString(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// keyOf hashes a session id as presented by a client. Ids of the wrong
// length are rejected before hashing so junk cookies cost nothing.
func keyOf(id string) (sessionKey, bool) {
	if len(id) != base64.RawURLEncoding.EncodedLen(sessionIDBytes) {
		return sessionKey{}, false
	}
	return sha256.Sum256([]byte(id)), true
}

// create starts a session for u and returns its id (for the cookie) and a
// copy of it.
func (ss *sessionStore) create(u store.User) (string, session, error) {
	id, err := randomString(ss.cfg.Rand, sessionIDBytes)
	if err != nil {
		return "", session{}, fmt.Errorf("new session id: %w", err)
	}
	csrf, err := randomString(ss.cfg.Rand, sessionIDBytes)
	if err != nil {
		return "", session{}, fmt.Errorf("new csrf token: %w", err)
	}
	key, _ := keyOf(id)
	now := ss.cfg.Now()
	s := &session{
		key:         key,
		CSRF:        csrf,
		Username:    u.Username,
		Org:         u.Org,
		Role:        u.Role,
		UserID:      u.ID,
		UserUpdated: u.UpdatedAt,
		Created:     now,
		LastUsed:    now,
	}

	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.makeRoomLocked(u.Username, now)
	ss.byID[key] = s
	return id, *s, nil
}

// makeRoomLocked drops expired sessions (when the map is full, or once
// per idle period, so abandoned sessions do not linger without a
// background goroutine), then the least recently used session of username
// while that user is at its bound, then the least recently used of all
// while the map is still full. The scans are linear; they run only at
// sign-in, which a bcrypt check already makes slow.
func (ss *sessionStore) makeRoomLocked(username string, now time.Time) {
	if len(ss.byID) >= ss.cfg.MaxSessions || now.Sub(ss.lastSweep) >= ss.cfg.Idle {
		ss.sweepLocked(now)
	}
	for {
		var oldest *session
		n := 0
		for _, s := range ss.byID {
			if s.Username != username {
				continue
			}
			n++
			if oldest == nil || s.LastUsed.Before(oldest.LastUsed) {
				oldest = s
			}
		}
		if n < ss.cfg.MaxPerUser || oldest == nil {
			break
		}
		delete(ss.byID, oldest.key)
	}
	for len(ss.byID) >= ss.cfg.MaxSessions {
		var oldest *session
		for _, s := range ss.byID {
			if oldest == nil || s.LastUsed.Before(oldest.LastUsed) {
				oldest = s
			}
		}
		delete(ss.byID, oldest.key)
	}
}

// expired reports whether s has passed its idle or absolute limit.
func (ss *sessionStore) expired(s *session, now time.Time) bool {
	return now.Sub(s.LastUsed) >= ss.cfg.Idle || now.Sub(s.Created) >= ss.cfg.Lifetime
}

// use looks the session up by id, ends it when expired, and otherwise
// slides its idle deadline and returns a copy.
func (ss *sessionStore) use(id string) (session, bool) {
	key, ok := keyOf(id)
	if !ok {
		return session{}, false
	}
	now := ss.cfg.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[key]
	if !ok {
		return session{}, false
	}
	if ss.expired(s, now) {
		delete(ss.byID, key)
		return session{}, false
	}
	s.LastUsed = now
	return *s, true
}

// end deletes the session named by id; unknown ids are ignored.
func (ss *sessionStore) end(id string) {
	if key, ok := keyOf(id); ok {
		ss.mu.Lock()
		delete(ss.byID, key)
		ss.mu.Unlock()
	}
}

// endUser deletes every session of username (the user was removed or
// changed) and reports how many there were.
func (ss *sessionStore) endUser(username string) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for k, s := range ss.byID {
		if s.Username == username {
			delete(ss.byID, k)
			n++
		}
	}
	return n
}

// sweep deletes every expired session and returns how many it removed.
func (ss *sessionStore) sweep() int {
	now := ss.cfg.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.sweepLocked(now)
}

func (ss *sessionStore) sweepLocked(now time.Time) int {
	ss.lastSweep = now
	n := 0
	for k, s := range ss.byID {
		if ss.expired(s, now) {
			delete(ss.byID, k)
			n++
		}
	}
	return n
}

// len returns the number of sessions held, expired or not.
func (ss *sessionStore) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID)
}

// csrfMatches compares the presented CSRF token with the session's in
// constant time.
func csrfMatches(s session, presented string) bool {
	if presented == "" || s.CSRF == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(presented), []byte(s.CSRF)) == 1
}
