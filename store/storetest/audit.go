package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

func auditTests() []subtest {
	return []subtest{
		{"Audit/AppendList", testAuditAppendList},
		{"Audit/Filters", testAuditFilters},
		{"Audit/DefaultTime", testAuditDefaultTime},
		{"Audit/DefaultLimit", testAuditDefaultLimit},
	}
}

// auditFixture returns five events in the order they are appended; Detail
// names each one.
func auditFixture() []store.AuditEvent {
	return []store.AuditEvent{
		{Time: at(1 * time.Minute), Org: "acme", Actor: "alice", Action: "token.create", Target: "tok-1", ClientIP: "192.0.2.1", Detail: "e1"},
		{Time: at(2 * time.Minute), Org: "acme", Actor: "bob", Action: "token.revoke", Target: "tok-2", ClientIP: "2001:db8::1", Detail: "e2"},
		{Time: at(3 * time.Minute), Org: "acme", Actor: "", Action: "login.failed", Target: "alice", ClientIP: "198.51.100.7", Detail: "e3"},
		{Time: at(4 * time.Minute), Org: "globex", Actor: "carol", Action: "token.create", Target: "tok-3", ClientIP: "192.0.2.9", Detail: "e4"},
		{Time: at(5 * time.Minute), Org: "acme", Actor: "alice", Action: "token.revoke", Target: "tok-1", ClientIP: "192.0.2.1", Detail: "e5"},
	}
}

func appendAll(t *testing.T, s store.Store, events []store.AuditEvent) {
	t.Helper()
	for _, e := range events {
		if err := s.AppendAudit(context.Background(), e); err != nil {
			t.Fatalf("AppendAudit(%s): got error %v, want nil", e.Detail, err)
		}
	}
}

func details(es []store.AuditEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Detail
	}
	return out
}

func testAuditAppendList(t *testing.T, s store.Store) {
	events := auditFixture()
	// Appended out of time order: the list is by Time, newest first.
	appendAll(t, s, []store.AuditEvent{events[2], events[0], events[4], events[1], events[3]})
	got, err := s.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatalf("ListAudit: got error %v, want nil", err)
	}
	if want := []string{"e5", "e4", "e3", "e2", "e1"}; !slices.Equal(details(got), want) {
		t.Fatalf("ListAudit: got %q, want %q", details(got), want)
	}
	ids := map[int64]bool{}
	for i, g := range got {
		want := events[len(events)-1-i]
		for _, line := range auditDiff(g, want) {
			t.Errorf("event %s: %s", want.Detail, line)
		}
		if g.ID <= 0 {
			t.Errorf("event %s: got ID %d, want > 0", g.Detail, g.ID)
		}
		if ids[g.ID] {
			t.Errorf("event %s: got duplicate ID %d", g.Detail, g.ID)
		}
		ids[g.ID] = true
	}
}

func testAuditFilters(t *testing.T, s store.Store) {
	appendAll(t, s, auditFixture())
	tests := []struct {
		name string
		f    store.AuditFilter
		want []string
	}{
		{"none", store.AuditFilter{}, []string{"e5", "e4", "e3", "e2", "e1"}},
		{"org", store.AuditFilter{Org: "acme"}, []string{"e5", "e3", "e2", "e1"}},
		{"actor", store.AuditFilter{Actor: "alice"}, []string{"e5", "e1"}},
		{"action", store.AuditFilter{Action: "token.create"}, []string{"e4", "e1"}},
		{"org and action", store.AuditFilter{Org: "acme", Action: "token.revoke"}, []string{"e5", "e2"}},
		{"org, actor and action", store.AuditFilter{Org: "acme", Actor: "alice", Action: "token.create"}, []string{"e1"}},
		{"since", store.AuditFilter{Since: at(2*time.Minute + 30*time.Second)}, []string{"e5", "e4", "e3"}},
		{"until", store.AuditFilter{Until: at(3*time.Minute + 30*time.Second)}, []string{"e3", "e2", "e1"}},
		{"window", store.AuditFilter{Since: at(90 * time.Second), Until: at(4*time.Minute + 30*time.Second)}, []string{"e4", "e3", "e2"}},
		{"window and org", store.AuditFilter{Org: "acme", Since: at(90 * time.Second), Until: at(4*time.Minute + 30*time.Second)}, []string{"e3", "e2"}},
		{"limit keeps the newest", store.AuditFilter{Limit: 2}, []string{"e5", "e4"}},
		{"limit with filter", store.AuditFilter{Org: "acme", Limit: 3}, []string{"e5", "e3", "e2"}},
		{"unknown org", store.AuditFilter{Org: "initech"}, nil},
		{"empty window", store.AuditFilter{Since: at(10 * time.Minute)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListAudit(context.Background(), tc.f)
			if err != nil {
				t.Fatalf("ListAudit(%+v): got error %v, want nil", tc.f, err)
			}
			if d := details(got); !slices.Equal(d, tc.want) && !(len(d) == 0 && len(tc.want) == 0) {
				t.Fatalf("ListAudit(%+v): got %q, want %q", tc.f, d, tc.want)
			}
		})
	}
}

func testAuditDefaultTime(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.AppendAudit(ctx, store.AuditEvent{Org: "acme", Actor: "alice", Action: "user.add", Target: "bob"}); err != nil {
		t.Fatalf("AppendAudit: got error %v, want nil", err)
	}
	got, err := s.ListAudit(ctx, store.AuditFilter{Org: "acme"})
	if err != nil {
		t.Fatalf("ListAudit: got error %v, want nil", err)
	}
	if len(got) != 1 {
		t.Fatalf("ListAudit: got %d events, want 1", len(got))
	}
	if got[0].Time.IsZero() {
		t.Errorf("Time: got zero, want the store to set it")
	}
	if got[0].Time.Location() != time.UTC {
		t.Errorf("Time location: got %v, want UTC", got[0].Time.Location())
	}
	if got[0].Target != "bob" || got[0].Action != "user.add" {
		t.Errorf("event: got %+v, want action user.add on bob", got[0])
	}
}

func testAuditDefaultLimit(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 1001
	for i := range n {
		e := store.AuditEvent{Time: at(time.Duration(i) * time.Second), Org: "acme", Actor: "alice",
			Action: "token.create", Target: fmt.Sprintf("tok-%04d", i)}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit #%d: got error %v, want nil", i, err)
		}
	}
	got, err := s.ListAudit(ctx, store.AuditFilter{Org: "acme"})
	if err != nil {
		t.Fatalf("ListAudit: got error %v, want nil", err)
	}
	if len(got) != 1000 {
		t.Fatalf("ListAudit default limit: got %d events, want 1000", len(got))
	}
	if got[0].Target != "tok-1000" || got[999].Target != "tok-0001" {
		t.Errorf("ListAudit default limit: got %s..%s, want tok-1000..tok-0001 (the newest)", got[0].Target, got[999].Target)
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{Org: "acme", Limit: 5000})
	if err != nil {
		t.Fatalf("ListAudit(limit 5000): got error %v, want nil", err)
	}
	if len(all) != n {
		t.Errorf("ListAudit(limit 5000): got %d events, want %d", len(all), n)
	}
}
