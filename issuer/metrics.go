package issuer

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus collectors, registered on one
// registry per Server (no global state).
type metrics struct {
	reg           *prometheus.Registry
	tokensIssued  *prometheus.CounterVec
	revocations   *prometheus.CounterVec
	loginFailures prometheus.Counter
	rateLimited   *prometheus.CounterVec
	requests      *prometheus.CounterVec
	hashWait      prometheus.Histogram

	directoryLogins  *prometheus.CounterVec
	directorySyncs   *prometheus.CounterVec
	directoryRemoved prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, fmt.Errorf("issuer: register go collector: %w", err)
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, fmt.Errorf("issuer: register process collector: %w", err)
		}
	}
	m := &metrics{
		reg: reg,
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_tokens_issued_total",
			Help: "Tokens signed and recorded, by token type.",
		}, []string{"type"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_revocations_total",
			Help: "Revocations committed by this issuer, by cause.",
		}, []string{"cause"}),
		loginFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signet_login_failures_total",
			Help: "Basic-auth logins refused for a wrong password or an unknown user.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_rate_limited_total",
			Help: "Logins answered 429, by limit (user, client, hash_pool).",
		}, []string{"limit"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "signet_hash_pool_wait_seconds",
			Help:    "Time a password check waited for a hashing worker.",
			Buckets: []float64{0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
		directoryLogins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_directory_logins_total",
			Help: "Directory (LDAP) sign-ins, by result (ok, refused, unavailable).",
		}, []string{"result"}),
		directorySyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_directory_syncs_total",
			Help: "Directory sync passes, by result (ok, failed).",
		}, []string{"result"}),
		directoryRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signet_directory_users_removed_total",
			Help: "Directory users removed by the sync, their personal tokens revoked.",
		}),
	}
	for _, c := range []prometheus.Collector{m.tokensIssued, m.revocations, m.loginFailures, m.rateLimited, m.requests, m.hashWait,
		m.directoryLogins, m.directorySyncs, m.directoryRemoved} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("issuer: register metrics: %w", err)
		}
	}
	return m, nil
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
}
