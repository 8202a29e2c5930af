package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/signet-auth/signet/store"
)

// EventExpiring is the event name of an expiry notice.
const EventExpiring = "token.expiring"

// Event is the JSON body of a webhook notice.
type Event struct {
	Event   string `json:"event"`
	TokenID string `json:"token_id"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	// Owner is the owner's username; empty for administrative tokens,
	// which the organization owns.
	Owner     string `json:"owner"`
	Org       string `json:"org"`
	ExpiresAt string `json:"expires_at"` // RFC 3339, UTC
}

// webhook POSTs events to one URL.
type webhook struct {
	url    string
	client *http.Client
}

func newWebhook(raw string, timeout time.Duration) (*webhook, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("notify: webhook url: want an http(s) URL with a host")
	}
	return &webhook{url: raw, client: &http.Client{
		Timeout: timeout,
		// A redirect is an answer other than 2xx: a failure, retried
		// later, rather than a POST replayed somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// send POSTs the event of notice k about rec. A 2xx answer is success;
// 4xx (other than 408 and 429) concerns this notice only; anything else
// concerns the receiver.
func (w *webhook) send(ctx context.Context, k store.NoticeKey, rec store.TokenRecord) error {
	body, err := json.Marshal(Event{
		Event:     EventExpiring,
		TokenID:   rec.ID,
		Name:      rec.Name,
		Type:      string(rec.Type),
		Owner:     rec.Owner,
		Org:       rec.Org,
		ExpiresAt: rec.ExpiresAt.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return fmt.Errorf("webhook: encode event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "signet")
	// The same for every attempt at this notice, so that a receiver can
	// drop the rare duplicate (a crash between its answer and the record).
	req.Header.Set("Idempotency-Key", fmt.Sprintf("%s/%d", rec.ID, k.Threshold.Microseconds()))
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry a secret in its query
		}
		return fmt.Errorf("webhook: POST: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("webhook: answered %s", resp.Status)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &deliveryError{err: err, onlyThis: true}
	}
	return err
}
