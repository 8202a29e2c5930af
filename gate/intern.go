package gate

import (
	"hash/maphash"
	"sync"
)

// internShards and internPerShard bound the table: 16 × 1024 token values
// (about 10 MiB of signet tokens at most), as many as the verifier's
// default cache remembers.
const (
	internShards   = 16
	internPerShard = 1024
)

// internTable hands out one string per token value that verified
// recently. The verifier's cache keys on the token string it is given, so
// each check needs a string that outlives the request; without the table
// every check would copy the Authorization header into a new one (the
// largest cost of a check of a known token after the verifier's own).
// Only tokens that verified are added, so garbage cannot churn it; a full
// shard starts over.
type internTable struct {
	seed   maphash.Seed
	shards [internShards]internShard
}

type internShard struct {
	mu sync.RWMutex
	m  map[string]string
}

func newInternTable() *internTable {
	t := &internTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]string)
	}
	return t
}

// lookup returns the string held for b, if any, without allocating.
func (t *internTable) lookup(b []byte) (string, bool) {
	sh := &t.shards[maphash.Bytes(t.seed, b)%internShards]
	sh.mu.RLock()
	s, ok := sh.m[string(b)]
	sh.mu.RUnlock()
	return s, ok
}

// add remembers s (a token that verified).
func (t *internTable) add(s string) {
	// maphash.String(seed, s) equals maphash.Bytes(seed, []byte(s)).
	sh := &t.shards[maphash.String(t.seed, s)%internShards]
	sh.mu.Lock()
	if len(sh.m) >= internPerShard {
		clear(sh.m)
	}
	sh.m[s] = s
	sh.mu.Unlock()
}
