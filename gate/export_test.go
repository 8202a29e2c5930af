package gate

// InternedForTest reports how many token strings g keeps.
func InternedForTest(g *Gate) int {
	n := 0
	for i := range g.intern.shards {
		sh := &g.intern.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
