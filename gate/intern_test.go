package gate

import (
	"fmt"
	"testing"
)

func TestInternTable(t *testing.T) {
	tab := newInternTable()
	if _, ok := tab.lookup([]byte("Bearer a.b.c")); ok {
		t.Fatal("an empty table finds a value")
	}
	tab.add("Bearer a.b.c")
	got, ok := tab.lookup([]byte("Bearer a.b.c"))
	if !ok || got != "Bearer a.b.c" {
		t.Fatalf("lookup after add: got %q, %v; want the value", got, ok)
	}
	if allocs := testing.AllocsPerRun(100, func() { tab.lookup([]byte("Bearer a.b.c")) }); allocs != 0 {
		t.Errorf("lookup allocates %.0f times, want 0", allocs)
	}
	// Bounded: far more values than it holds leave at most the bound.
	for i := range 10 * internShards * internPerShard {
		tab.add(fmt.Sprintf("Bearer token-%d", i))
	}
	n := 0
	for i := range tab.shards {
		if l := len(tab.shards[i].m); l > internPerShard {
			t.Errorf("shard %d holds %d values, more than %d", i, l, internPerShard)
		}
		n += len(tab.shards[i].m)
	}
	if n > internShards*internPerShard {
		t.Errorf("the table holds %d values, more than %d", n, internShards*internPerShard)
	}
}
