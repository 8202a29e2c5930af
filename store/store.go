// Package store defines signet's persistence: one Store interface with plain
// record structs and sentinel errors. Each backend lives in a sub-package
// (store/sqlite, store/postgres) and must pass the conformance suite in
// store/storetest.
//
// Every method is safe for concurrent use. Methods that change state either
// commit completely or change nothing; a method that returns nil error has
// made its change durable (fsync'ed by the backend) before returning, which
// is what lets the issuer acknowledge a revocation.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors returned (possibly wrapped) by every backend.
var (
	// ErrNotFound means the addressed record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means the change collides with existing state: a duplicate
	// key, or a compare-and-swap precondition that no longer holds (for
	// example a token that another request already regenerated).
	ErrConflict = errors.New("store: conflict")
)

// Role of a user inside its organization.
type Role string

// Roles a user may hold.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember }

// User is a person who trades a password for tokens. Usernames are unique
// across the whole store (Basic auth carries no organization); a username
// may be taken again after its user was removed, so what tokens belong to
// is ID, which is never reused.
type User struct {
	// ID identifies the person for good: unique across the store and
	// never reused. CreateUser assigns one (NewUserID) when it is empty.
	ID           string
	Username     string
	Email        string
	Org          string
	Role         Role
	PasswordHash string // encoded hash (bcrypt); never a plain password; empty for directory users
	// Source says where the user signs in: SourceLocal (a password hash
	// held here) or SourceLDAP (created at their first directory sign-in;
	// the directory checks their password, and the directory sync updates
	// and removes them).
	Source    Source
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Source says which authority holds a user's password.
type Source string

// User sources.
const (
	// SourceLocal users have their password hash in the store.
	SourceLocal Source = ""
	// SourceLDAP users were created by a directory sign-in; the LDAP
	// directory checks their password and decides whether they exist.
	SourceLDAP Source = "ldap"
)

// Valid reports whether s is a known source.
func (s Source) Valid() bool { return s == SourceLocal || s == SourceLDAP }

// Validate reports what makes u unfit to store: every backend refuses such
// a record with this error, before touching the database.
func (u User) Validate() error {
	switch {
	case u.Username == "":
		return errors.New("empty username")
	case len(u.ID) > maxUserIDLen:
		return fmt.Errorf("user %q: id longer than %d bytes", u.Username, maxUserIDLen)
	case u.Org == "":
		return fmt.Errorf("user %q: empty organization", u.Username)
	case !u.Role.Valid():
		return fmt.Errorf("user %q: unknown role %q", u.Username, u.Role)
	case !u.Source.Valid():
		return fmt.Errorf("user %q: unknown source %q", u.Username, u.Source)
	}
	return nil
}

// maxUserIDLen bounds User.ID.
const maxUserIDLen = 64

// NewUserID returns a new user id: 128 random bits in lower-case hex.
func NewUserID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: new user id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// TokenType says whom a token acts as.
type TokenType string

// Token types.
const (
	// TokenPersonal acts as its owner, a user.
	TokenPersonal TokenType = "personal"
	// TokenAdministrative is impersonal and owned by the organization.
	TokenAdministrative TokenType = "administrative"
)

// Valid reports whether t is a known token type.
func (t TokenType) Valid() bool { return t == TokenPersonal || t == TokenAdministrative }

// TokenRecord is what the issuer remembers of every token it signed. The
// token value itself is never stored: it is a signed JWT that can be
// recognised by its ID (the jti claim).
type TokenRecord struct {
	ID          string // jti, at least 128 random bits, URL-safe
	Name        string // label; may be empty for POST /user-token tokens
	Description string
	Type        TokenType
	// Owner is the username for personal tokens and empty for
	// administrative ones. It names the owner as they were called when
	// the token was made; OwnerID says who they are.
	Owner string
	// OwnerID is the owner's User.ID for personal tokens and empty for
	// administrative ones. Every rule about whose token this is uses it:
	// a new user who takes a removed user's name owns none of their
	// tokens. Tokens recorded before user ids existed carry the id of the
	// user who held the name then, when that user was created before the
	// token was issued, and "" (no user's) otherwise.
	OwnerID string
	Org     string
	// Subject is the JWT sub claim: the username, or "token:<id>".
	Subject string
	Scopes  []string
	// CreatedBy is the username that asked for the token.
	CreatedBy string
	KeyID     string // kid of the key that signed it
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Lifetime is ExpiresAt-IssuedAt as asked for; regenerate reuses it.
	Lifetime time.Duration
	// RevokedAt is nil while the token is not revoked; otherwise when the
	// revocation in force was recorded.
	RevokedAt *time.Time
	// ValidUntil, on a revoked token, is when the revocation takes effect
	// when that is later than RevokedAt: the old value of a token
	// regenerated with a grace period stays valid until then. Zero: the
	// revocation took effect at RevokedAt. Revoking such a token again
	// before ValidUntil, or a subject cut-off covering it, moves ValidUntil
	// to that moment.
	ValidUntil time.Time
	// ReplacedBy is the ID of the token that regenerate made from this one.
	ReplacedBy string
	// ParentID is the token this one was regenerated or copied from.
	ParentID string
}

// Revoked reports whether the token is revoked at now: revoked, and past
// its grace period if it has one (ValidUntil).
func (t TokenRecord) Revoked(now time.Time) bool {
	return t.RevokedAt != nil && (t.ValidUntil.IsZero() || !now.Before(t.ValidUntil))
}

// RevokedFrom is when the token's revocation takes (or took) effect:
// ValidUntil when set, else RevokedAt; false when it is not revoked.
func (t TokenRecord) RevokedFrom() (time.Time, bool) {
	switch {
	case t.RevokedAt == nil:
		return time.Time{}, false
	case !t.ValidUntil.IsZero():
		return t.ValidUntil, true
	}
	return *t.RevokedAt, true
}

// Validate reports what makes t unfit to store (no issuer produces such a
// record): every backend refuses it with this error before touching the
// database.
func (t TokenRecord) Validate() error {
	switch {
	case t.ID == "":
		return errors.New("empty token id")
	case !t.Type.Valid():
		return fmt.Errorf("token %s: unknown type %q", t.ID, t.Type)
	case t.Org == "":
		return fmt.Errorf("token %s: empty organization", t.ID)
	case t.Type == TokenPersonal && (t.Owner == "" || t.OwnerID == ""):
		return fmt.Errorf("token %s: personal token without owner or owner id", t.ID)
	case t.Type == TokenAdministrative && (t.Owner != "" || t.OwnerID != ""):
		return fmt.Errorf("token %s: administrative token with an owner", t.ID)
	case t.IssuedAt.IsZero():
		return fmt.Errorf("token %s: zero issue time", t.ID)
	case !t.ExpiresAt.After(t.IssuedAt):
		return fmt.Errorf("token %s: expiry %s is not after issue time %s", t.ID,
			t.ExpiresAt.UTC().Format(time.RFC3339), t.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// TokenFilter selects tokens for ListTokens. Zero fields do not filter.
type TokenFilter struct {
	Org     string // required by callers in practice; empty = all orgs
	Owner   string // the owner's username as recorded on the token
	OwnerID string // the owner's User.ID
	Type    TokenType
	// IncludeRevoked keeps revoked tokens. Without it, a token whose grace
	// period (ValidUntil) runs past Now is listed: it is still valid.
	IncludeRevoked bool
	// IncludeExpired keeps tokens whose ExpiresAt has passed (relative to
	// Now). Default lists them too when true; the issuer decides.
	IncludeExpired bool
	Now            time.Time
	// ExpiresBy keeps only tokens whose ExpiresAt is at or before it
	// (zero: no bound); expiry notices look for tokens expiring soon.
	ExpiresBy time.Time
	Limit     int // 0 = no limit
}

// RevocationKind says what a revocation entry withdraws.
type RevocationKind string

// Revocation kinds carried by the revocation list.
const (
	// RevokeToken withdraws one token by its ID.
	RevokeToken RevocationKind = "token"
	// RevokeSubject withdraws every token of Org/Subject issued before
	// NotBefore (user removal, password change with revocation).
	RevokeSubject RevocationKind = "subject"
	// RevokeKey withdraws every token signed by key ID Value.
	RevokeKey RevocationKind = "key"
)

// Revocation is one entry of the revocation log. Seq orders the log and is
// the list version: every committed revocation gets a strictly larger Seq,
// and readers at version V have seen exactly the entries with Seq <= V.
type Revocation struct {
	Seq int64
	// Tag is a random id the store gives the entry as it appends it; with
	// the log's Epoch it tells a restored log apart from the original
	// (revocation.Cursor). Entries appended before tags existed have none.
	Tag  string
	Kind RevocationKind
	// Value is the token ID, the subject, or the key ID.
	Value string
	// Org qualifies a subject (subjects are unique only inside an org).
	Org string
	// NotBefore is the cut-off for RevokeSubject: tokens issued before it
	// are revoked. Zero for other kinds.
	NotBefore time.Time
	// ValidUntil, on a RevokeToken entry, is when the revocation takes
	// effect (the old value of a token regenerated with a grace period);
	// zero: at once. Zero for other kinds.
	ValidUntil time.Time
	RevokedAt  time.Time
	// ExpiresAt is when the entry stops mattering (the revoked token's
	// expiry, or the cut-off plus the maximum token lifetime, and never
	// before the last expiry of a token the cut-off revoked). Entries
	// leave the list after it.
	ExpiresAt time.Time
	Reason    string
}

// RevocationState describes the log as a whole.
type RevocationState struct {
	// Latest is the highest Seq ever committed (0 when none).
	Latest int64
	// Epoch is the log's identity: a random id written when the log was
	// created (with the database), never changed by the store afterwards.
	Epoch string
	// Head is the Tag of the entry whose Seq is Latest ("" when none).
	Head string
}

// AuditEvent records who did what to which object, when and from where.
type AuditEvent struct {
	ID       int64
	Time     time.Time
	Org      string
	Actor    string // username, or "" for anonymous (a failed login names the attempted user in Target)
	Action   string // e.g. "token.create", "token.revoke", "user.add", "login.failed"
	Target   string // token ID, username, key ID
	ClientIP string
	Detail   string // short human-readable detail; never a secret
}

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	Org    string
	Actor  string
	Action string
	Since  time.Time
	Until  time.Time
	Limit  int // 0 = backend default (1000)
}

// Store is everything the issuer and the CLI persist.
type Store interface {
	// Ping checks that the backend is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error

	// CreateUser adds u; ErrConflict when the username (or the ID) exists.
	// An empty u.ID is filled with NewUserID; GetUser reads it back.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns the user; ErrNotFound when absent.
	GetUser(ctx context.Context, username string) (User, error)
	// ListUsers lists the users of org ("" = every org), by username.
	ListUsers(ctx context.Context, org string) ([]User, error)
	// SetPassword replaces the user's password hash. When revokeBefore is
	// not zero, the user's personal tokens (by owner ID; and tokens of
	// their username that belong to no user id) issued before it are revoked in
	// the same transaction: they are marked revoked and one RevokeSubject
	// entry is appended to the log, expiring at revokeExpires (which must
	// be after now) or, when a token it revokes expires later (issued
	// under a longer maximum lifetime), at that token's expiry. A covered
	// token in its grace period ends it now (ValidUntil = now): the
	// cut-off wins. ErrNotFound when absent.
	SetPassword(ctx context.Context, username, hash string, now, revokeBefore, revokeExpires time.Time) error
	// RehashPassword replaces the user's password hash with newHash, an
	// encoding of the same password (a bcrypt cost change), but only while
	// the stored hash is still oldHash: a password set meanwhile is never
	// overwritten with the old one. UpdatedAt is left alone, since the
	// password did not change. It reports whether it replaced the hash
	// (false when the hash differs or the user is absent).
	RehashPassword(ctx context.Context, username, oldHash, newHash string) (bool, error)
	// DeleteUser removes the user and, in the same transaction, marks their
	// personal tokens (chosen as SetPassword's) revoked and appends one RevokeSubject entry with
	// NotBefore=now, expiring like SetPassword's. ErrNotFound when absent.
	DeleteUser(ctx context.Context, username string, now, revokeExpires time.Time) (Revocation, error)
	// UpdateUser sets the Email and Role of the user named u.Username,
	// provided that user is still u.ID (else ErrNotFound, as when absent),
	// and UpdatedAt to now. When revokeBefore is not zero, the user's
	// personal tokens issued before it are revoked in the same
	// transaction, as SetPassword does. u must be valid (User.Validate);
	// its other fields are ignored.
	UpdateUser(ctx context.Context, u User, now, revokeBefore, revokeExpires time.Time) error

	// CreateToken records a newly signed token; ErrConflict on a duplicate
	// ID, or on a duplicate non-empty Name among the live (unrevoked,
	// unexpired at IssuedAt) tokens of the same org and owner (Owner and
	// OwnerID alike).
	CreateToken(ctx context.Context, t TokenRecord) error
	// GetToken returns one token record; ErrNotFound when absent.
	GetToken(ctx context.Context, id string) (TokenRecord, error)
	// ListTokens returns the tokens matching f, newest first.
	ListTokens(ctx context.Context, f TokenFilter) ([]TokenRecord, error)
	// RevokeToken marks the token revoked and appends a RevokeToken entry,
	// atomically. Revoking an already revoked token changes nothing and
	// returns the existing entry (idempotent): its own, else the
	// RevokeSubject entry that covers it, else (that entry pruned) one with
	// Seq 0 built from the token record. A token in its grace period
	// (ValidUntil after now) is the exception: it is revoked at once, its
	// ValidUntil set to now and a RevokeToken entry without ValidUntil
	// appended, which revocation.Index folds with the earlier one to "from
	// now on". ErrNotFound when absent.
	RevokeToken(ctx context.Context, id string, now time.Time, reason string) (Revocation, error)
	// ReplaceToken is regenerate: in one transaction it checks that oldID
	// has not been replaced already (else ErrConflict), revokes it (if not
	// yet revoked), sets its ReplacedBy, and inserts next. Of two
	// concurrent calls for one token exactly one succeeds. A validUntil
	// after now is a grace period: the old token stays valid until then
	// (at most until its own ExpiresAt), as its record (ValidUntil) and
	// its entry (ValidUntil) say; zero, or a time not after now, revokes
	// it at once. An old token that is already revoked stays as it is.
	ReplaceToken(ctx context.Context, oldID string, next TokenRecord, now, validUntil time.Time) (Revocation, error)

	// RevokeKey appends a RevokeKey entry for kid expiring at expires,
	// which must be after now (idempotent: an existing entry is returned
	// unchanged).
	RevokeKey(ctx context.Context, kid string, now, expires time.Time) (Revocation, error)
	// GetTokenRevocation returns the newest RevokeToken entry for a token
	// ID (a token revoked during its grace period has two: the one with
	// ValidUntil, then the one in force at once); ErrNotFound when the
	// token is not revoked (or its entry expired).
	GetTokenRevocation(ctx context.Context, tokenID string) (Revocation, error)
	// ListRevocations returns the entries with Seq > since and ExpiresAt >
	// now, ordered by Seq.
	ListRevocations(ctx context.Context, since int64, now time.Time) ([]Revocation, error)
	// RevocationState returns the log's latest version, epoch and head,
	// read together.
	RevocationState(ctx context.Context) (RevocationState, error)
	// RevocationTag returns the Tag of the entry with that Seq, whatever
	// its expiry; ErrNotFound when no such entry is stored (never
	// appended, or pruned).
	RevocationTag(ctx context.Context, seq int64) (string, error)

	// AppendAudit stores an audit event (ID and, when zero, Time are set by
	// the store).
	AppendAudit(ctx context.Context, e AuditEvent) error
	// ListAudit returns matching events, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// Prune deletes token records that expired before cutoff, and
	// revocation entries whose ExpiresAt is before now. It never lowers
	// RevocationState().Latest. It returns how many rows it removed.
	Prune(ctx context.Context, now, cutoff time.Time) (int, error)

	// NoticeLog records expiry notices.
	NoticeLog
}

// NoticeChannel is how an expiry notice travels.
type NoticeChannel string

// Notice channels.
const (
	// NoticeEmail is one email message to one recipient (NoticeKey.Recipient).
	NoticeEmail NoticeChannel = "email"
	// NoticeWebhook is one POST to the configured webhook (no recipient).
	NoticeWebhook NoticeChannel = "webhook"
)

// Valid reports whether c is a known channel.
func (c NoticeChannel) Valid() bool { return c == NoticeEmail || c == NoticeWebhook }

// NoticeKey names one expiry notice: one delivery, over one channel (to one
// recipient, for email), about one token reaching one threshold. Each is
// delivered at most once by whoever claims it.
type NoticeKey struct {
	TokenID string
	// Threshold is how long before the token's expiry the notice is due
	// (notify.before), at least a microsecond.
	Threshold time.Duration
	Channel   NoticeChannel
	// Recipient is the email address for NoticeEmail and empty for
	// NoticeWebhook.
	Recipient string
}

// Validate reports what makes k unfit to store: every backend refuses it
// with this error before touching the database.
func (k NoticeKey) Validate() error {
	switch {
	case k.TokenID == "":
		return errors.New("notice: empty token id")
	case k.Threshold < time.Microsecond:
		return fmt.Errorf("notice for %s: threshold %s below a microsecond", k.TokenID, k.Threshold)
	case !k.Channel.Valid():
		return fmt.Errorf("notice for %s: unknown channel %q", k.TokenID, k.Channel)
	case k.Channel == NoticeEmail && k.Recipient == "":
		return fmt.Errorf("notice for %s: email without a recipient", k.TokenID)
	case k.Channel == NoticeWebhook && k.Recipient != "":
		return fmt.Errorf("notice for %s: webhook with a recipient", k.TokenID)
	case len(k.Recipient) > maxRecipientLen:
		return fmt.Errorf("notice for %s: recipient longer than %d bytes", k.TokenID, maxRecipientLen)
	}
	return nil
}

// maxRecipientLen bounds NoticeKey.Recipient (RFC 5321 limits a path to
// 256 octets; a little room for a display name).
const maxRecipientLen = 320

// NoticeClaim asks for the right to deliver one notice.
type NoticeClaim struct {
	NoticeKey
	// Claimant identifies the process asking (random per notifier).
	Claimant string
	// Now is the claimant's clock; LeaseUntil (after Now) is when the claim
	// lapses if it is neither completed nor released, so that a claimant
	// that died mid-delivery does not hold the notice for ever.
	Now, LeaseUntil time.Time
	// TokenExpiresAt is the token's expiry, kept so that the record can be
	// pruned with the token.
	TokenExpiresAt time.Time
}

// Notice is the record of one notice: claimed, delivered, or released
// after a failure.
type Notice struct {
	NoticeKey
	Claimant string
	// ClaimedUntil is when the current claim lapses (zero once released).
	ClaimedUntil time.Time
	// SentAt is when delivery succeeded; zero while it has not.
	SentAt time.Time
	// Attempts counts claims taken, the first included.
	Attempts int
	// LastError says why the last attempt failed ("" when none did). It
	// never carries a secret.
	LastError      string
	TokenExpiresAt time.Time
}

// NoticeLog records expiry notices so that each is delivered once across
// restarts and replicas: claim before sending, complete after success,
// release after failure. Every store.Store backend implements it.
type NoticeLog interface {
	// ClaimNotice takes the notice for c.Claimant when nobody holds it: it
	// was never claimed, or it was released, or its last claim lapsed
	// (ClaimedUntil at or before c.Now) without completing. It reports
	// false, changing nothing, when the notice was delivered or another
	// live claim holds it. Of two concurrent claims at most one wins.
	ClaimNotice(ctx context.Context, c NoticeClaim) (bool, error)
	// CompleteNotice records k as delivered at now by claimant.
	// ErrConflict when claimant no longer holds it (its claim lapsed and
	// was taken, or it was delivered); ErrNotFound when never claimed.
	CompleteNotice(ctx context.Context, k NoticeKey, claimant string, now time.Time) error
	// ReleaseNotice gives up claimant's claim on k after a failed delivery
	// (reason, kept as LastError, says why), so that the next look may
	// claim it again at once. ErrConflict when claimant does not hold it;
	// ErrNotFound when never claimed.
	ReleaseNotice(ctx context.Context, k NoticeKey, claimant, reason string) error
	// ListNotices returns the notices of tokens expiring after
	// tokenExpiresAfter (zero: every notice), by token id, threshold,
	// channel and recipient.
	ListNotices(ctx context.Context, tokenExpiresAfter time.Time) ([]Notice, error)
	// PruneNotices deletes the notices of tokens that expired before
	// cutoff and returns how many it removed.
	PruneNotices(ctx context.Context, cutoff time.Time) (int, error)
}

// RevocationWatcher is implemented by backends that can signal, without
// polling, that another process committed revocations (PostgreSQL
// LISTEN/NOTIFY). A signal only says "look again": the issuer still reads
// ListRevocations, and still polls periodically so that a missed signal or
// a reconnect loses nothing.
type RevocationWatcher interface {
	// WatchRevocations sends on the returned channel (non-blocking, so
	// signals coalesce) after revocations commit anywhere. The channel is
	// closed when ctx ends.
	WatchRevocations(ctx context.Context) (<-chan struct{}, error)
}

// NewTag returns a fresh random entry tag (64 bits, hex), for backends to
// give each revocation entry they append.
func NewTag() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: revocation tag: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
