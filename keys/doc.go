// Package keys owns signet's signing key material: it loads or generates
// keys, names them by their RFC 7638 thumbprint (the "kid"), signs access
// tokens, verifies that a token was signed by one of its keys, publishes the
// public keys as an RFC 7517 key set (JWKS) and rotates, revokes and prunes
// keys.
//
// What a token is — claims, header policy, the strict parser, the size
// limit — is the token package's: Sign signs only claims that
// token.ParseClaims accepts, and Verify reads tokens with token.Parse,
// the same parser the verifier uses, before checking the signature.
//
// # Storage
//
// Keys live as files in one directory (keys.dir), one file per key named
// "<kid>.json", mode 0600, in a directory created with mode 0700 (default
// "data/keys"; an existing one that group or other may access is tightened
// to 0700 with a warning, or refused when it cannot be). A file
// holds the private key as a JWK plus metadata:
//
//	{
//	  "version": 1,
//	  "kid": "<RFC 7638 thumbprint>",
//	  "algorithm": "ES256",
//	  "seq": 3,
//	  "created_at": "2026-11-23T10:00:00Z",
//	  "sign_from": "2026-11-23T10:10:00Z",
//	  "revoked_at": null,
//	  "max_ttl_seconds": 31536000,
//	  "key": { "kty": "EC", "crv": "P-256", "x": "...", "y": "...", "d": "...", ... }
//	}
//
// max_ttl_seconds is the longest token lifetime the key may have signed:
// Config.MaxTTL (tokens.max_ttl, rounded up to whole seconds) when the key
// was generated, raised under the lock whenever a keyring with a larger
// MaxTTL loads the key while it signs or is next (at Open and in each Run
// round), and when a change hands signing to it. It is never lowered. The
// field is optional within format version 1: a file written before it
// existed is read as "unknown", treated with the current MaxTTL as before,
// and gets the field (the current MaxTTL) written by the next change under
// the lock; one that signs or is next gets it at once.
//
// Files are written atomically (temporary file, fsync, rename, fsync of the
// directory), so a reader never sees half a key; a temporary file left by a
// writer that died is removed by the next change. Every change (generate,
// rotate, revoke, prune) happens under an exclusive flock(2) on
// "<dir>/.lock" and re-reads the directory inside the lock, so two processes
// never rotate twice. A file that group or other may access, or that does not
// parse, is refused with an error naming the file; key bytes never appear in
// errors or logs.
//
// Several issuer replicas share keys by mounting the same directory (a
// shared volume with working flock, e.g. a local disk, NFSv4 or a
// ReadWriteMany volume). Each replica re-reads the directory on Reload (Run
// does so periodically), so a key rotated or revoked by one replica or by
// "signet keys rotate" is followed by all without a restart. Sign also
// opens the signing key's file before each signature and re-reads the
// directory when it is no longer the version loaded, so a withdrawn key
// signs nothing once the withdrawal is on disk. A replica that
// only reads may mount the directory read-only as long as it never needs to
// generate, rotate, prune or raise a key's max_ttl_seconds (a failure to
// raise it is logged by Open and retried by Run).
//
// # States
//
// A key's state is derived from its timestamps and the clock, never stored:
//
//   - signing: the non-revoked key with the latest sign_from <= now;
//   - next: sign_from > now; published so verifiers learn it before it signs;
//   - retired: an older non-revoked key; published until the sign_from of
//     the key that replaced it plus its token lifetime, when every token it
//     could have signed has expired;
//   - expired: a retired key past that time; no longer published, and
//     deleted from disk by the next prune;
//   - revoked: withdrawn (revoked_at set); never published, kept on disk
//     (so Verify still recognises its tokens as ours) until revoked_at plus
//     its token lifetime, then pruned.
//
// A key's token lifetime is the larger of its max_ttl_seconds and the
// current MaxTTL, so lowering tokens.max_ttl neither unpublishes nor prunes
// a key whose tokens are still valid; raising it extends every key.
//
// Keys are ordered by (sign_from, seq): seq is a counter assigned under the
// lock, so two keys with the same sign_from still have a definite order.
//
// Changing keys.algorithm never breaks a token already out: existing keys
// keep verifying with their own algorithm. The running issuer (Run) makes
// the change the way any rotation does: when the newest key has another
// algorithm it adds a key of the configured one, published at once and
// signing after PublishDelay; the old keys then retire as usual.
package keys
