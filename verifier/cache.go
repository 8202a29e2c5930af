package verifier

import (
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultCacheSize is the number of verified tokens remembered when
// Config.CacheSize is zero.
const DefaultCacheSize = 16384

const cacheShards = 16

// tokenCache remembers verified tokens by their exact string so a token
// seen before skips parsing and the signature check. Each shard keeps two
// generations: when the current one fills up it becomes the old one and
// the previous old one is dropped, which bounds the size at the
// configured count and keeps recently used tokens (a hit in the old
// generation moves the entry forward), without per-hit bookkeeping.
type tokenCache struct {
	perGen int
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu       sync.RWMutex
	cur, old map[string]*cacheEntry
}

// cacheEntry is one verified token. gen is the verifier generation (keys
// and revocation list) at which the entry was last found not revoked.
type cacheEntry struct {
	claims *Claims
	gen    atomic.Uint64
}

func newTokenCache(size int) *tokenCache {
	per := size / (2 * cacheShards)
	if per < 1 {
		per = 1
	}
	c := &tokenCache{perGen: per}
	for i := range c.shards {
		c.shards[i].cur = make(map[string]*cacheEntry)
	}
	return c
}

// shard picks a shard from the token's last bytes: base64url of the
// signature, i.e. uniformly random for real tokens.
func (c *tokenCache) shard(tok string) *cacheShard {
	var h uint32 = 2166136261
	for i := max(0, len(tok)-8); i < len(tok); i++ {
		h = (h ^ uint32(tok[i])) * 16777619
	}
	return &c.shards[h%cacheShards]
}

func (c *tokenCache) get(tok string) *cacheEntry {
	s := c.shard(tok)
	s.mu.RLock()
	e, inCur := s.cur[tok]
	if e == nil {
		e = s.old[tok]
	}
	s.mu.RUnlock()
	if e != nil && !inCur {
		s.mu.Lock()
		s.putLocked(tok, e, c.perGen)
		s.mu.Unlock()
	}
	return e
}

func (c *tokenCache) put(tok string, e *cacheEntry) {
	s := c.shard(tok)
	// Clone: the caller's string may be a slice of a larger header value.
	tok = strings.Clone(tok)
	s.mu.Lock()
	s.putLocked(tok, e, c.perGen)
	s.mu.Unlock()
}

func (s *cacheShard) putLocked(tok string, e *cacheEntry, perGen int) {
	if len(s.cur) >= perGen {
		s.old, s.cur = s.cur, make(map[string]*cacheEntry, perGen)
	}
	s.cur[tok] = e
}
