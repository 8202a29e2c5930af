package gate

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Outcomes of an auth check, the values of the outcome label of
// signet_gate_decisions_total.
const (
	outcomeAllowed           = "allowed"            // 200
	outcomeNoToken           = "no_token"           // 401 without error
	outcomeInvalidToken      = "invalid_token"      // 401 invalid_token
	outcomeInsufficientScope = "insufficient_scope" // 403
	outcomeUnavailable       = "unavailable"        // 503: stale list, or not connected yet
)

// Reasons a token is refused, the values of the reason label of
// signet_gate_invalid_tokens_total.
var invalidReasons = []string{
	"malformed", "expired", "not_yet_valid", "revoked", "bad_signature",
	"unknown_key", "wrong_issuer", "wrong_audience", "algorithm", "claims", "other",
}

// metrics are the gate's Prometheus collectors, on one registry per Gate.
// The counters of each label value are resolved once, so that a decision
// costs one atomic add.
type metrics struct {
	reg       *prometheus.Registry
	allowed   prometheus.Counter // decisions[outcomeAllowed], the hot path's
	decisions map[string]prometheus.Counter
	invalid   map[string]prometheus.Counter
	verify    prometheus.Histogram
}

func newMetrics(g *Gate, reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, fmt.Errorf("gate: register go collector: %w", err)
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, fmt.Errorf("gate: register process collector: %w", err)
		}
	}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_gate_decisions_total",
		Help: "Auth checks answered, by outcome: allowed (200), no_token and invalid_token (401), insufficient_scope (403), unavailable (503).",
	}, []string{"outcome"})
	invalid := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_gate_invalid_tokens_total",
		Help: "Tokens refused with 401 invalid_token, by reason.",
	}, []string{"reason"})
	m := &metrics{
		reg:       reg,
		decisions: map[string]prometheus.Counter{},
		invalid:   map[string]prometheus.Counter{},
		verify: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "signet_gate_verify_seconds",
			Help:    "Time the verifier took to check one token (cached tokens take microseconds; first sightings include the signature check).",
			Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1, 1},
		}),
	}
	for _, o := range []string{outcomeAllowed, outcomeNoToken, outcomeInvalidToken, outcomeInsufficientScope, outcomeUnavailable} {
		m.decisions[o] = decisions.WithLabelValues(o)
	}
	m.allowed = m.decisions[outcomeAllowed]
	for _, r := range invalidReasons {
		m.invalid[r] = invalid.WithLabelValues(r)
	}
	status := func(f func(s statusView) float64) func() float64 {
		return func() float64 { return f(g.status()) }
	}
	collectors := []prometheus.Collector{
		decisions, invalid, m.verify,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_gate_ready",
			Help: "1 while the gate can check tokens (keys and revocation list loaded and fresh, or fail_open), else 0.",
		}, status(func(s statusView) float64 { return bool01(s.ready) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_gate_keys",
			Help: "Verification keys of the issuer's key set loaded.",
		}, status(func(s statusView) float64 { return float64(s.Keys) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_gate_revocation_list_version",
			Help: "Version of the revocation list the gate holds (0 before the first load).",
		}, status(func(s statusView) float64 { return float64(s.ListVersion) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_gate_revocation_list_staleness_seconds",
			Help: "Seconds since the revocation list was last synced with the issuer (0 before the first load). Past gate.max_staleness the gate answers 503 unless gate.fail_open.",
		}, status(func(s statusView) float64 {
			if !s.connected {
				return 0
			}
			return s.Staleness.Seconds()
		})),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gate: register metrics: %w", err)
		}
	}
	return m, nil
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
