// Package storetest is the conformance suite every store.Store backend must
// pass, in the manner of dex's storage/conformance. A backend's own test
// calls Run with a function that opens a fresh, empty database, and RunShared
// with a function that opens two handles on one fresh database:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
//		storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) { return openPair(t) })
//	}
//
// The suite pins down, beyond what store.go says in words, these choices so
// that every backend behaves alike:
//
//   - times come back in UTC, equal (time.Time.Equal) to what was stored at
//     microsecond precision; the suite never stores finer times;
//   - Scopes stored as an empty slice come back as a non-nil empty slice;
//   - a RevokeToken entry carries the token's Org and ExpiresAt;
//   - ListTokens with IncludeExpired false and a zero Now does not filter
//     on expiry ("zero fields do not filter");
//   - bad input (empty IDs or names, unknown roles or types, missing expiry,
//     negative limits) is an error that is neither ErrNotFound nor
//     ErrConflict, and changes nothing;
//   - RevokeToken of a token already revoked through a subject cut-off
//     (DeleteUser, SetPassword) succeeds, appends nothing and returns the
//     covering RevokeSubject entry;
//   - an administrative token with an Owner, and a revocation entry that
//     would expire at or before now, are bad input;
//   - a zero User.CreatedAt becomes the store's clock, a zero UpdatedAt
//     becomes CreatedAt; an empty User.ID becomes a new unique id, and a
//     duplicate ID is ErrConflict;
//   - a user's tokens are theirs by OwnerID: DeleteUser and SetPassword
//     never touch the tokens of an earlier holder of the same username who
//     has another id, and a live token name is unique per Owner and
//     OwnerID;
//   - a grace period (ReplaceToken's validUntil) is capped at the old
//     token's expiry and dropped unless after now; revoking the token, or
//     a cut-off covering it, during it ends it at that moment;
//   - entry reasons: "regenerated" (ReplaceToken), "key withdrawn"
//     (RevokeKey), "user removed" (DeleteUser), "password changed"
//     (SetPassword).
//
// Subtests never read the wall clock for assertions: every time is fixed.
// Time bounds (waitBound) only keep a broken backend from hanging the run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

// waitBound caps how long a subtest waits for a signal or a goroutine, so a
// broken backend fails instead of hanging. It is never an assertion on speed.
const waitBound = 30 * time.Second

// t0 is the fixed origin of every time the suite stores. It has microsecond
// digits so that a backend that truncates to milliseconds fails.
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 123456000, time.UTC)

// at returns t0 shifted by d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// subtest is one named check run against a fresh store.
type subtest struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// sharedSubtest is one named check run against two handles on one database.
type sharedSubtest struct {
	name string
	run  func(t *testing.T, a, b store.Store)
}

// Run runs every single-handle subtest of the suite. newStore must return a
// store over a fresh, empty database each time it is called, and arrange
// its own cleanup (for example t.Cleanup(func() { s.Close() })); the suite
// never closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	var tests []subtest
	tests = append(tests, userTests()...)
	tests = append(tests, tokenTests()...)
	tests = append(tests, revocationTests()...)
	tests = append(tests, graceTests()...)
	tests = append(tests, auditTests()...)
	tests = append(tests, invalidInputTests()...)
	tests = append(tests, concurrencyTests()...)
	tests = append(tests, noticeTests()...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned a nil store")
			}
			tc.run(t, s)
		})
	}
}

// RunShared runs the subtests that need two handles on one database, the
// way the signet CLI and a running issuer (or two issuer replicas) share
// one: writes through one are seen by the other, concurrent writes through
// both keep every guarantee, and, when the backend implements
// store.RevocationWatcher, a revocation committed through b signals a
// watcher on a. newPair must open both handles on a fresh, empty database
// each call and arrange their cleanup.
func RunShared(t *testing.T, newPair func(t *testing.T) (a, b store.Store)) {
	t.Helper()
	for _, tc := range append(sharedTests(), noticeSharedTests()...) {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			if a == nil || b == nil {
				t.Fatal("newPair returned a nil store")
			}
			tc.run(t, a, b)
		})
	}
}

// ---- fixtures ----

func newUser(name, org string, role store.Role) store.User {
	return store.User{
		ID:           "uid-" + name,
		Username:     name,
		Email:        name + "@example.com",
		Org:          org,
		Role:         role,
		PasswordHash: "$2a$10$fixture.hash.for." + name,
		CreatedAt:    t0,
		UpdatedAt:    t0,
	}
}

func newPersonal(id, org, owner, name string, issued time.Time) store.TokenRecord {
	return store.TokenRecord{
		ID:          id,
		Name:        name,
		Description: "description of " + id,
		Type:        store.TokenPersonal,
		Owner:       owner,
		OwnerID:     "uid-" + owner,
		Org:         org,
		Subject:     owner,
		Scopes:      []string{"reports:read", "bucket:in.c-main:write"},
		CreatedBy:   owner,
		KeyID:       "kid-1",
		IssuedAt:    issued,
		ExpiresAt:   issued.Add(24 * time.Hour),
		Lifetime:    24 * time.Hour,
	}
}

func newAdministrative(id, org, name, createdBy string, issued time.Time) store.TokenRecord {
	return store.TokenRecord{
		ID:          id,
		Name:        name,
		Description: "administrative " + id,
		Type:        store.TokenAdministrative,
		Org:         org,
		Subject:     "token:" + id,
		Scopes:      []string{"*"},
		CreatedBy:   createdBy,
		KeyID:       "kid-1",
		IssuedAt:    issued,
		ExpiresAt:   issued.Add(365 * 24 * time.Hour),
		Lifetime:    365 * 24 * time.Hour,
	}
}

// ---- helpers ----

func mustCreateUser(tb testing.TB, s store.Store, u store.User) {
	tb.Helper()
	if err := s.CreateUser(context.Background(), u); err != nil {
		tb.Fatalf("CreateUser(%q): got error %v, want nil", u.Username, err)
	}
}

func mustCreateToken(tb testing.TB, s store.Store, tok store.TokenRecord) {
	tb.Helper()
	if err := s.CreateToken(context.Background(), tok); err != nil {
		tb.Fatalf("CreateToken(%q): got error %v, want nil", tok.ID, err)
	}
}

func mustGetToken(tb testing.TB, s store.Store, id string) store.TokenRecord {
	tb.Helper()
	got, err := s.GetToken(context.Background(), id)
	if err != nil {
		tb.Fatalf("GetToken(%q): got error %v, want nil", id, err)
	}
	return got
}

func mustRevoke(tb testing.TB, s store.Store, id string, now time.Time) store.Revocation {
	tb.Helper()
	r, err := s.RevokeToken(context.Background(), id, now, "test")
	if err != nil {
		tb.Fatalf("RevokeToken(%q): got error %v, want nil", id, err)
	}
	return r
}

func latest(tb testing.TB, s store.Store) int64 {
	tb.Helper()
	st, err := s.RevocationState(context.Background())
	if err != nil {
		tb.Fatalf("RevocationState: got error %v, want nil", err)
	}
	return st.Latest
}

func wantErrIs(tb testing.TB, op string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s: got error %v, want %v", op, err, target)
	}
}

// wantInvalid asserts err reports bad input: non-nil and neither of the
// sentinels, which mean something else.
func wantInvalid(tb testing.TB, op string, err error) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("%s: got nil error, want an invalid-input error", op)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		tb.Fatalf("%s: got %v, want an invalid-input error (not ErrNotFound/ErrConflict)", op, err)
	}
}

func timeDiff(field string, got, want time.Time) []string {
	var d []string
	if !got.Equal(want) {
		d = append(d, fmt.Sprintf("%s: got %s, want %s", field, fmtTime(got), fmtTime(want)))
	}
	if !want.IsZero() && got.Location() != time.UTC {
		d = append(d, fmt.Sprintf("%s: got location %v, want UTC", field, got.Location()))
	}
	return d
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.Format(time.RFC3339Nano)
}

func strDiff(field, got, want string) []string {
	if got != want {
		return []string{fmt.Sprintf("%s: got %q, want %q", field, got, want)}
	}
	return nil
}

func userDiff(got, want store.User) []string {
	var d []string
	if want.ID == "" {
		if got.ID == "" {
			d = append(d, "ID: got \"\", want one assigned by the store")
		}
	} else {
		d = append(d, strDiff("ID", got.ID, want.ID)...)
	}
	d = append(d, strDiff("Username", got.Username, want.Username)...)
	d = append(d, strDiff("Email", got.Email, want.Email)...)
	d = append(d, strDiff("Org", got.Org, want.Org)...)
	d = append(d, strDiff("Role", string(got.Role), string(want.Role))...)
	d = append(d, strDiff("PasswordHash", got.PasswordHash, want.PasswordHash)...)
	d = append(d, strDiff("Source", string(got.Source), string(want.Source))...)
	d = append(d, timeDiff("CreatedAt", got.CreatedAt, want.CreatedAt)...)
	d = append(d, timeDiff("UpdatedAt", got.UpdatedAt, want.UpdatedAt)...)
	return d
}

func tokenDiff(got, want store.TokenRecord) []string {
	var d []string
	d = append(d, strDiff("ID", got.ID, want.ID)...)
	d = append(d, strDiff("Name", got.Name, want.Name)...)
	d = append(d, strDiff("Description", got.Description, want.Description)...)
	d = append(d, strDiff("Type", string(got.Type), string(want.Type))...)
	d = append(d, strDiff("Owner", got.Owner, want.Owner)...)
	d = append(d, strDiff("OwnerID", got.OwnerID, want.OwnerID)...)
	d = append(d, strDiff("Org", got.Org, want.Org)...)
	d = append(d, strDiff("Subject", got.Subject, want.Subject)...)
	if !slices.Equal(got.Scopes, want.Scopes) {
		d = append(d, fmt.Sprintf("Scopes: got %q, want %q", got.Scopes, want.Scopes))
	}
	d = append(d, strDiff("CreatedBy", got.CreatedBy, want.CreatedBy)...)
	d = append(d, strDiff("KeyID", got.KeyID, want.KeyID)...)
	d = append(d, timeDiff("IssuedAt", got.IssuedAt, want.IssuedAt)...)
	d = append(d, timeDiff("ExpiresAt", got.ExpiresAt, want.ExpiresAt)...)
	if got.Lifetime != want.Lifetime {
		d = append(d, fmt.Sprintf("Lifetime: got %v, want %v", got.Lifetime, want.Lifetime))
	}
	switch {
	case got.RevokedAt == nil && want.RevokedAt != nil:
		d = append(d, fmt.Sprintf("RevokedAt: got nil, want %s", fmtTime(*want.RevokedAt)))
	case got.RevokedAt != nil && want.RevokedAt == nil:
		d = append(d, fmt.Sprintf("RevokedAt: got %s, want nil", fmtTime(*got.RevokedAt)))
	case got.RevokedAt != nil:
		d = append(d, timeDiff("RevokedAt", *got.RevokedAt, *want.RevokedAt)...)
	}
	d = append(d, timeDiff("ValidUntil", got.ValidUntil, want.ValidUntil)...)
	d = append(d, strDiff("ReplacedBy", got.ReplacedBy, want.ReplacedBy)...)
	d = append(d, strDiff("ParentID", got.ParentID, want.ParentID)...)
	return d
}

func revocationDiff(got, want store.Revocation) []string {
	var d []string
	if got.Seq != want.Seq {
		d = append(d, fmt.Sprintf("Seq: got %d, want %d", got.Seq, want.Seq))
	}
	d = append(d, strDiff("Kind", string(got.Kind), string(want.Kind))...)
	d = append(d, strDiff("Value", got.Value, want.Value)...)
	d = append(d, strDiff("Org", got.Org, want.Org)...)
	d = append(d, timeDiff("NotBefore", got.NotBefore, want.NotBefore)...)
	d = append(d, timeDiff("ValidUntil", got.ValidUntil, want.ValidUntil)...)
	d = append(d, timeDiff("RevokedAt", got.RevokedAt, want.RevokedAt)...)
	d = append(d, timeDiff("ExpiresAt", got.ExpiresAt, want.ExpiresAt)...)
	d = append(d, strDiff("Reason", got.Reason, want.Reason)...)
	return d
}

func auditDiff(got, want store.AuditEvent) []string {
	var d []string
	d = append(d, timeDiff("Time", got.Time, want.Time)...)
	d = append(d, strDiff("Org", got.Org, want.Org)...)
	d = append(d, strDiff("Actor", got.Actor, want.Actor)...)
	d = append(d, strDiff("Action", got.Action, want.Action)...)
	d = append(d, strDiff("Target", got.Target, want.Target)...)
	d = append(d, strDiff("ClientIP", got.ClientIP, want.ClientIP)...)
	d = append(d, strDiff("Detail", got.Detail, want.Detail)...)
	return d
}

func checkUser(tb testing.TB, what string, got, want store.User) {
	tb.Helper()
	for _, line := range userDiff(got, want) {
		tb.Errorf("%s: %s", what, line)
	}
}

func checkToken(tb testing.TB, what string, got, want store.TokenRecord) {
	tb.Helper()
	for _, line := range tokenDiff(got, want) {
		tb.Errorf("%s: %s", what, line)
	}
}

func checkRevocation(tb testing.TB, what string, got, want store.Revocation) {
	tb.Helper()
	for _, line := range revocationDiff(got, want) {
		tb.Errorf("%s: %s", what, line)
	}
}

func tokenIDs(ts []store.TokenRecord) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

func seqs(rs []store.Revocation) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func ptr(t time.Time) *time.Time { return &t }
