// Package notify tells the owners of named tokens that their tokens are
// about to expire: by email through SMTP and by a JSON webhook, once per
// threshold (Config.Before), and never twice across restarts or replicas.
//
// Which tokens count, and who is told, is the issuer's to say (a Source);
// this package decides when a notice is due and delivers it. Every notice —
// one token, one threshold, one channel, one recipient — is claimed in the
// store (store.NoticeLog) before it is sent and marked sent after, so that
// of several replicas looking at once exactly one sends it. A failed
// delivery gives its claim back and is tried again at the next look; a
// claimant that dies mid-delivery holds its claim until the lease lapses
// (Config.Lease), after which another takes it over. A notice is therefore
// sent at least once and, short of a crash between the server's acceptance
// and the record, exactly once.
//
// A token that is already past several thresholds when it is first seen
// (created with a short lifetime, or notices switched on late) gets only
// the nearest one: the smallest threshold not shorter than the time it has
// left. Thresholds it skipped are never sent later.
package notify

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-auth/signet/store"
)

// Defaults applied to a zero Config.
const (
	// DefaultInterval is how often the notifier looks for due notices.
	DefaultInterval = time.Minute
	// DefaultWebhookTimeout bounds one webhook call.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultSMTPTimeout bounds one SMTP session, connection included.
	DefaultSMTPTimeout = 30 * time.Second
	// DefaultLease is how long a claim holds a notice before another
	// notifier may take it over: well beyond either timeout, so a slow
	// delivery is never doubled.
	DefaultLease = 5 * time.Minute
	// pruneAfter is how long after its token's expiry a notice record is
	// kept: long enough that a replica whose clock runs behind still finds
	// it instead of sending the notice again.
	pruneAfter = 24 * time.Hour
	// pruneEvery is how often records of long-expired tokens are deleted.
	pruneEvery = time.Hour
	// maxReason bounds the failure reason kept in the store.
	maxReason = 500
)

// DefaultBefore returns the default thresholds, as GitLab sends them: a
// week and a day before expiry.
func DefaultBefore() []time.Duration { return []time.Duration{168 * time.Hour, 24 * time.Hour} }

// Config configures a Notifier. Zero values mean the defaults named on the
// fields. At least one channel (SMTP.Addr or WebhookURL) must be set.
type Config struct {
	// Before lists how long before a token's expiry a notice is due
	// (default DefaultBefore). Each must be positive; order is free.
	Before []time.Duration
	// Interval is how often the store is looked at (default 1m).
	Interval time.Duration
	// SMTP sends email; off when SMTP.Addr is empty.
	SMTP SMTPConfig
	// WebhookURL receives a JSON POST per notice; off when empty.
	WebhookURL string
	// WebhookTimeout bounds one webhook call (default 10s).
	WebhookTimeout time.Duration
	// PublicURL is the issuer's URL, named in messages as where to
	// regenerate the token.
	PublicURL string
	// Lease is how long a claim holds a notice (default 5m).
	Lease time.Duration

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives operational logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the notice counters; nil: not registered.
	Registerer prometheus.Registerer
}

// Enabled reports whether any channel is configured.
func (c Config) Enabled() bool { return c.SMTP.Addr != "" || c.WebhookURL != "" }

// Token is a named token that is valid now and expires soon, with whom to
// tell by email.
type Token struct {
	Record store.TokenRecord
	// Recipients are the email addresses of the token's owner, or of every
	// admin of its organization for an administrative token.
	Recipients []string
}

// Source is what the notifier asks the issuer. The issuer alone knows
// whether a token still counts (revoked by any cause — itself, its owner's
// removal, a withdrawn key —, regenerated, expired) and who is told.
type Source interface {
	// ExpiringTokens returns the named tokens valid at now that expire at
	// or before until.
	ExpiringTokens(ctx context.Context, now, until time.Time) ([]Token, error)
	// TokenValid reports whether token id is still one ExpiringTokens
	// would list at now; asked again just before a notice is sent.
	TokenValid(ctx context.Context, id string, now time.Time) (bool, error)
}

// Notifier looks for due notices and delivers them. Create it with New;
// run it with Run, or call Look.
type Notifier struct {
	cfg     Config
	before  []time.Duration // ascending
	src     Source
	notices store.NoticeLog
	log     *slog.Logger
	now     func() time.Time
	// id names this notifier's claims in the store.
	id string

	mail    *mailer  // nil when email is off
	webhook *webhook // nil when the webhook is off

	sent, failed *prometheus.CounterVec
	// mu makes looks of one notifier take turns; lastPrune is under it.
	mu        sync.Mutex
	lastPrune time.Time
}

// New returns a notifier over src and the store's notice log. A setting
// that cannot work is an error.
func New(cfg Config, src Source, notices store.NoticeLog) (*Notifier, error) {
	if src == nil || notices == nil {
		return nil, errors.New("notify: a source and a notice log are required")
	}
	if !cfg.Enabled() {
		return nil, errors.New("notify: neither SMTP nor a webhook is configured")
	}
	if len(cfg.Before) == 0 {
		cfg.Before = DefaultBefore()
	}
	before := slices.Clone(cfg.Before)
	slices.Sort(before)
	if before[0] <= 0 {
		return nil, fmt.Errorf("notify: threshold %s must be positive", before[0])
	}
	before = slices.Compact(before)
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.WebhookTimeout = cmp.Or(cfg.WebhookTimeout, DefaultWebhookTimeout)
	cfg.Lease = cmp.Or(cfg.Lease, DefaultLease)
	if cfg.Interval < 0 || cfg.WebhookTimeout < 0 || cfg.Lease < 0 {
		return nil, errors.New("notify: interval, webhook timeout and lease must not be negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("notify: claimant id: %w", err)
	}
	n := &Notifier{
		cfg:     cfg,
		before:  before,
		src:     src,
		notices: notices,
		log:     cfg.Logger,
		now:     cfg.Now,
		id:      hex.EncodeToString(b[:]),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_expiry_notices_sent_total",
			Help: "Token expiry notices delivered by this issuer, by channel (email, webhook).",
		}, []string{"channel"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_expiry_notices_failed_total",
			Help: "Token expiry notice deliveries that failed (and will be retried), by channel.",
		}, []string{"channel"}),
	}
	for _, ch := range []store.NoticeChannel{store.NoticeEmail, store.NoticeWebhook} {
		n.sent.WithLabelValues(string(ch))
		n.failed.WithLabelValues(string(ch))
	}
	if cfg.SMTP.Addr != "" {
		m, err := newMailer(cfg.SMTP)
		if err != nil {
			return nil, err
		}
		n.mail = m
	}
	if cfg.WebhookURL != "" {
		w, err := newWebhook(cfg.WebhookURL, cfg.WebhookTimeout)
		if err != nil {
			return nil, err
		}
		n.webhook = w
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{n.sent, n.failed} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("notify: register metrics: %w", err)
			}
		}
	}
	return n, nil
}

// Run looks for due notices at once and then every Interval until ctx
// ends. Failures are logged; the next look tries again.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := n.Look(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("looking for token expiry notices failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Result counts what one look did.
type Result struct {
	// Sent and Failed count deliveries attempted by this notifier.
	Sent, Failed int
}

// delivery is one notice to try.
type delivery struct {
	key store.NoticeKey
	tok Token
}

// Look delivers every notice due now that nobody has delivered or holds.
// It returns an error only when the source or the store fails; failed
// deliveries are counted in Result, logged, and released for the next look.
func (n *Notifier) Look(ctx context.Context) (Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	n.prune(ctx, now)
	toks, err := n.src.ExpiringTokens(ctx, now, now.Add(n.before[len(n.before)-1]))
	if err != nil {
		return Result{}, fmt.Errorf("notify: list expiring tokens: %w", err)
	}
	if len(toks) == 0 {
		return Result{}, nil
	}
	known, err := n.notices.ListNotices(ctx, now)
	if err != nil {
		return Result{}, fmt.Errorf("notify: list notices: %w", err)
	}
	taken := make(map[store.NoticeKey]bool, len(known))
	for _, rec := range known {
		if !rec.SentAt.IsZero() || rec.ClaimedUntil.After(now) {
			taken[rec.NoticeKey] = true
		}
	}
	var res Result
	// A channel whose server cannot be reached is not tried again in
	// this look: every delivery would wait for the same timeout.
	down := map[store.NoticeChannel]bool{}
	for _, d := range n.due(toks, now) {
		if taken[d.key] || down[d.key.Channel] {
			continue
		}
		out, err := n.deliver(ctx, d)
		if err != nil {
			return res, err
		}
		switch out {
		case sent:
			res.Sent++
		case failedHere, failedUnreachable:
			res.Failed++
			if out == failedUnreachable {
				down[d.key.Channel] = true
			}
		}
	}
	return res, nil
}

// due lists the notices toks need at now: for each token, the nearest
// threshold it has reached, over every configured channel.
func (n *Notifier) due(toks []Token, now time.Time) []delivery {
	var out []delivery
	for _, tok := range toks {
		th, ok := n.threshold(tok.Record.ExpiresAt.Sub(now))
		if !ok {
			continue
		}
		if n.mail != nil {
			seen := map[string]bool{}
			for _, to := range tok.Recipients {
				if to == "" || seen[to] {
					continue
				}
				if a, err := mail.ParseAddress(to); err != nil || a.Address != to {
					// Never deliverable: not worth a claim and a
					// failure every look.
					n.log.Debug("skipping an expiry notice to a malformed address", "token_id", tok.Record.ID, "to", to)
					continue
				}
				seen[to] = true
				out = append(out, delivery{tok: tok, key: store.NoticeKey{TokenID: tok.Record.ID, Threshold: th, Channel: store.NoticeEmail, Recipient: to}})
			}
		}
		if n.webhook != nil {
			out = append(out, delivery{tok: tok, key: store.NoticeKey{TokenID: tok.Record.ID, Threshold: th, Channel: store.NoticeWebhook}})
		}
	}
	return out
}

// threshold returns the nearest threshold a token with left to live has
// reached: the smallest one not shorter than left. None when it has
// expired or reached none.
func (n *Notifier) threshold(left time.Duration) (time.Duration, bool) {
	if left <= 0 {
		return 0, false
	}
	for _, b := range n.before {
		if left <= b {
			return b, true
		}
	}
	return 0, false
}

// outcome is what deliver did with one notice.
type outcome int

const (
	// skipped: nothing attempted (claimed elsewhere, or the token stopped
	// counting).
	skipped outcome = iota
	sent
	// failedHere: this notice failed (a recipient refused, a webhook
	// answering 4xx to it); other notices over the channel may succeed.
	failedHere
	// failedUnreachable: the channel's server failed or could not be
	// reached.
	failedUnreachable
)

// deliver claims, sends and records one notice. err is a store or source
// failure; a failed delivery is an outcome.
func (n *Notifier) deliver(ctx context.Context, d delivery) (outcome, error) {
	now := n.now()
	won, err := n.notices.ClaimNotice(ctx, store.NoticeClaim{
		NoticeKey: d.key, Claimant: n.id, Now: now, LeaseUntil: now.Add(n.cfg.Lease), TokenExpiresAt: d.tok.Record.ExpiresAt,
	})
	if err != nil {
		return skipped, fmt.Errorf("notify: claim notice for token %s: %w", d.key.TokenID, err)
	}
	if !won {
		return skipped, nil
	}
	// The token may have been revoked since it was listed; the claim
	// made any later look skip it, so ask once more now.
	valid, err := n.src.TokenValid(ctx, d.key.TokenID, n.now())
	if err != nil || !valid {
		if rerr := n.notices.ReleaseNotice(ctx, d.key, n.id, "token no longer valid when its notice was due"); rerr != nil && ctx.Err() == nil {
			n.log.Warn("releasing an expiry notice failed", "token_id", d.key.TokenID, "err", rerr)
		}
		if err != nil {
			return skipped, fmt.Errorf("notify: check token %s: %w", d.key.TokenID, err)
		}
		return skipped, nil
	}
	// A delivery never outlives half its lease, so nobody takes the
	// claim over while it is still under way.
	sendCtx, cancel := context.WithTimeout(ctx, n.cfg.Lease/2)
	defer cancel()
	var serr error
	switch d.key.Channel {
	case store.NoticeEmail:
		serr = n.mail.send(sendCtx, d.key.Recipient, n.message(d, now))
	case store.NoticeWebhook:
		serr = n.webhook.send(sendCtx, d.key, d.tok.Record)
	}
	ch := string(d.key.Channel)
	if serr != nil {
		n.failed.WithLabelValues(ch).Inc()
		n.log.Warn("an expiry notice could not be delivered; it is retried at the next look",
			"token_id", d.key.TokenID, "channel", ch, "to", d.key.Recipient, "before", d.key.Threshold.String(), "err", serr)
		if rerr := n.notices.ReleaseNotice(context.WithoutCancel(ctx), d.key, n.id, truncate(serr.Error(), maxReason)); rerr != nil {
			n.log.Warn("releasing an expiry notice failed", "token_id", d.key.TokenID, "err", rerr)
		}
		if de := (*deliveryError)(nil); errors.As(serr, &de) && de.onlyThis {
			return failedHere, nil
		}
		return failedUnreachable, nil
	}
	n.sent.WithLabelValues(ch).Inc()
	n.log.Info("expiry notice sent", "token_id", d.key.TokenID, "channel", ch, "to", d.key.Recipient, "before", d.key.Threshold.String())
	if err := n.notices.CompleteNotice(context.WithoutCancel(ctx), d.key, n.id, n.now()); err != nil {
		// Sent, but not recorded: it may be sent again once the claim
		// lapses. Nothing better can be done than to say so.
		n.log.Error("recording a sent expiry notice failed; it may be sent again", "token_id", d.key.TokenID, "channel", ch, "err", err)
	}
	return sent, nil
}

// prune deletes, at most every pruneEvery, the records of notices whose
// tokens expired long ago.
func (n *Notifier) prune(ctx context.Context, now time.Time) {
	if !n.lastPrune.IsZero() && now.Sub(n.lastPrune) < pruneEvery {
		return
	}
	n.lastPrune = now
	if _, err := n.notices.PruneNotices(ctx, now.Add(-pruneAfter)); err != nil && ctx.Err() == nil {
		n.log.Warn("pruning expiry notice records failed", "err", err)
	}
}

// deliveryError is a failure that concerns one notice only (a recipient
// refused, a webhook answering 4xx to this payload), so other notices over
// the same channel are still worth trying in the same look.
type deliveryError struct {
	err      error
	onlyThis bool
}

func (e *deliveryError) Error() string { return e.err.Error() }
func (e *deliveryError) Unwrap() error { return e.err }

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
