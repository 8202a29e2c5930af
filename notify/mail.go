package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/signet-auth/signet/store"
)

// SMTPConfig says how email leaves: one SMTP session per message, through
// the server at Addr.
type SMTPConfig struct {
	// Addr is the server's host:port, for example "mail.example.com:587".
	Addr string
	// From is the sender, an RFC 5322 address ("signet <signet@example.com>").
	From string
	// Username and Password, when set, authenticate with AUTH PLAIN, which
	// is only ever sent over TLS (StartTLS) or to a loopback server.
	Username string
	Password string
	// StartTLS requires the session to switch to TLS (STARTTLS) before
	// anything else is sent; a server that does not offer it fails.
	StartTLS bool
	// TLS configures the STARTTLS handshake (default: the system roots,
	// server name from Addr, TLS 1.2 at least).
	TLS *tls.Config
	// Timeout bounds one session, connecting included (default 30s).
	Timeout time.Duration
	// HelloName is the name given in EHLO (default: the host name).
	HelloName string
}

// mailer sends one message per session with net/smtp.
type mailer struct {
	cfg  SMTPConfig
	host string
	from *mail.Address
}

func newMailer(cfg SMTPConfig) (*mailer, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("notify: smtp address %q: want host:port", cfg.Addr)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("notify: smtp from %q: %w", cfg.From, err)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("notify: smtp username and password go together")
	}
	if cfg.Username != "" && !cfg.StartTLS && !isLoopback(host) {
		return nil, errors.New("notify: smtp password would travel in clear text: turn on starttls")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSMTPTimeout
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			cfg.HelloName = h
		}
	}
	return &mailer{cfg: cfg, host: host, from: from}, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// send delivers msg to one recipient. A refusal of this recipient or this
// message is a *deliveryError that concerns this notice only; anything
// else (connecting, TLS, authentication, the server failing) concerns the
// server.
func (m *mailer) send(ctx context.Context, to string, msg []byte) error {
	if a, err := mail.ParseAddress(to); err != nil || a.Address != to {
		return &deliveryError{err: fmt.Errorf("smtp: recipient %q is not an email address", to), onlyThis: true}
	}
	deadline := time.Now().Add(m.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("smtp: connect to %s: %w", m.cfg.Addr, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return fmt.Errorf("smtp: %w", err)
	}
	// Cancelling ctx ends the session at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: greeting from %s: %w", m.cfg.Addr, err)
	}
	defer c.Close()
	if err := c.Hello(m.cfg.HelloName); err != nil {
		return fmt.Errorf("smtp: EHLO: %w", err)
	}
	if m.cfg.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp: %s does not offer STARTTLS, which notify.smtp.starttls requires", m.cfg.Addr)
		}
		tc := &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
		if m.cfg.TLS != nil {
			tc = m.cfg.TLS.Clone()
			if tc.ServerName == "" {
				tc.ServerName = m.host
			}
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	}
	if m.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("smtp: %s does not offer AUTH, and a username is configured", m.cfg.Addr)
		}
		// net/smtp's PlainAuth refuses to send the password over a
		// connection that is neither TLS nor to localhost.
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.host)); err != nil {
			return fmt.Errorf("smtp: authentication as %s failed: %w", m.cfg.Username, err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return recipientError(fmt.Errorf("smtp: RCPT TO <%s>: %w", to, err))
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return recipientError(fmt.Errorf("smtp: message refused: %w", err))
	}
	// The message is accepted once DATA's reply came; a failed QUIT
	// changes nothing.
	_ = c.Quit()
	return nil
}

// recipientError marks an SMTP refusal with a 5xx code (permanent, about
// this recipient or message) as concerning this notice only; 4xx and
// connection trouble concern the server.
func recipientError(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return &deliveryError{err: err, onlyThis: true}
	}
	return err
}

// message renders the notice d as an RFC 5322 message to d's recipient,
// dated now: text in UTF-8, quoted-printable, with what token it is, when
// it expires and how to regenerate it.
func (n *Notifier) message(d delivery, now time.Time) []byte {
	rec := d.tok.Record
	from := n.mail.from
	left := humanDuration(rec.ExpiresAt.Sub(now))
	var subject string
	if rec.Type == store.TokenAdministrative {
		subject = fmt.Sprintf("Administrative token %q of %s expires in %s", rec.Name, rec.Org, left)
	} else {
		subject = fmt.Sprintf("Your token %q expires in %s", rec.Name, left)
	}

	var h bytes.Buffer
	header := func(name, value string) { fmt.Fprintf(&h, "%s: %s\r\n", name, value) }
	header("Date", now.Format(time.RFC1123Z))
	header("From", from.String())
	header("To", (&mail.Address{Address: d.key.Recipient}).String())
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Message-ID", messageID(from.Address))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834: no vacation replies to this.
	header("Auto-Submitted", "auto-generated")
	header("X-Signet-Token-Id", rec.ID)
	h.WriteString("\r\n")

	var body bytes.Buffer
	qp := quotedprintable.NewWriter(&body)
	_, _ = qp.Write([]byte(crlf(n.bodyText(rec, now))))
	_ = qp.Close()
	return append(h.Bytes(), body.Bytes()...)
}

// bodyText is the message's text: which token, when it expires, how to
// regenerate it.
func (n *Notifier) bodyText(rec store.TokenRecord, now time.Time) string {
	base := strings.TrimRight(n.cfg.PublicURL, "/")
	var b strings.Builder
	if rec.Type == store.TokenAdministrative {
		fmt.Fprintf(&b, "The administrative token %q of the organization %s expires in %s.\n", rec.Name, rec.Org, humanDuration(rec.ExpiresAt.Sub(now)))
		b.WriteString("You receive this as an admin of that organization.\n")
	} else {
		fmt.Fprintf(&b, "Your personal token %q expires in %s.\n", rec.Name, humanDuration(rec.ExpiresAt.Sub(now)))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  Token:         %s\n", rec.Name)
	fmt.Fprintf(&b, "  Token id:      %s\n", rec.ID)
	fmt.Fprintf(&b, "  Type:          %s\n", rec.Type)
	if rec.Owner != "" {
		fmt.Fprintf(&b, "  Owner:         %s\n", rec.Owner)
	}
	fmt.Fprintf(&b, "  Organization:  %s\n", rec.Org)
	fmt.Fprintf(&b, "  Scopes:        %s\n", strings.Join(rec.Scopes, " "))
	fmt.Fprintf(&b, "  Expires at:    %s (%s)\n", rec.ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC"), rec.ExpiresAt.UTC().Format(time.RFC3339))
	b.WriteString("\n")
	b.WriteString("Whatever uses this token stops working when it expires. To go on, regenerate\n")
	b.WriteString("it before then: you get a new value with the same name, scopes and lifetime,\n")
	b.WriteString("and the old value stops working at once (or, with a grace period, later).\n")
	b.WriteString("\n")
	if base != "" {
		fmt.Fprintf(&b, "  On the web page: %s/ui/ (Tokens, then Regenerate)\n", base)
		fmt.Fprintf(&b, "  With curl:       curl -u YOUR_USERNAME -X POST %s/tokens/%s/regenerate\n", base, rec.ID)
	} else {
		fmt.Fprintf(&b, "  With the API:    POST /tokens/%s/regenerate\n", rec.ID)
	}
	b.WriteString("\n")
	b.WriteString("If nothing needs it any more, let it expire; nothing needs doing.\n")
	b.WriteString("\n-- \n")
	if base != "" {
		fmt.Fprintf(&b, "signet, %s\n", base)
	} else {
		b.WriteString("signet\n")
	}
	return b.String()
}

// crlf turns line ends into CRLF, as SMTP wants them.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// messageID returns a new, globally unique Message-ID in the sender's
// domain.
func messageID(from string) string {
	domain := "signet.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "<" + hex.EncodeToString(b[:]) + ".expiry@" + domain + ">"
}

// humanDuration says d as a person would: "7 days", "23 hours", "5 minutes".
func humanDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d >= 48*time.Hour:
		return unit(int64((d+12*time.Hour)/(24*time.Hour)), "day")
	case d >= 2*time.Hour:
		return unit(int64((d+30*time.Minute)/time.Hour), "hour")
	case d >= 2*time.Minute:
		return unit(int64((d+30*time.Second)/time.Minute), "minute")
	case d > 0:
		return unit(max(int64((d+500*time.Millisecond)/time.Second), 1), "second")
	}
	return "0 seconds"
}
