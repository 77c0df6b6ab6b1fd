package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cycle is what one cycle of logpipe watch did (watch.Report).
type Cycle struct {
	Sent       int            // notifications delivered
	Failed     int            // notifications that failed
	RuleErrors []string       // rules whose query failed
	OpenByRule map[string]int // alerts open after the cycle, per rule
	Duration   time.Duration
	Err        error // the cycle failed as a whole
}

// WatchMetrics are the metrics of a logpipe watch process: open alerts
// per rule, notifications, rule failures and when the last cycle ended.
type WatchMetrics struct {
	open              *prometheus.GaugeVec
	ruleErrsTotal     *prometheus.CounterVec
	sent, failed      prometheus.Counter
	cycleErrs         prometheus.Counter
	last, lastSeconds prometheus.Gauge
}

// Watch registers the metrics of a logpipe watch process running rules;
// feed them with OnCycle after each cycle.
func (m *Metrics) Watch(rules []string) *WatchMetrics {
	w := &WatchMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "watch", Name: "alerts_open",
			Help: "Alerts open after the last cycle, by rule."}, []string{"rule"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "watch", Name: "notifications_total",
			Help: "Notifications delivered (one per event and channel)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "watch", Name: "notification_failures_total",
			Help: "Notifications a channel refused or did not answer (retried next cycle)."}),
		ruleErrsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "watch", Name: "rule_errors_total",
			Help: "Cycles in which a rule's query failed, by rule."}, []string{"rule"}),
		cycleErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "watch", Name: "cycle_errors_total",
			Help: "Cycles that failed as a whole (alert state unreadable or unwritable)."}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "watch", Name: "last_cycle_timestamp_seconds",
			Help: "Unix time the last successful cycle ended."}),
		lastSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "watch", Name: "last_cycle_duration_seconds",
			Help: "How long the last cycle took."}),
	}
	m.Registry.MustRegister(w.open, w.sent, w.failed, w.ruleErrsTotal, w.cycleErrs, w.last, w.lastSeconds)
	for _, r := range rules {
		w.open.WithLabelValues(r)
		w.ruleErrsTotal.WithLabelValues(r)
	}
	return w
}

// OnCycle records one cycle.
func (w *WatchMetrics) OnCycle(c Cycle) {
	w.lastSeconds.Set(c.Duration.Seconds())
	w.sent.Add(float64(c.Sent))
	w.failed.Add(float64(c.Failed))
	for _, rule := range c.RuleErrors {
		w.ruleErrsTotal.WithLabelValues(rule).Inc()
	}
	if c.Err != nil {
		w.cycleErrs.Inc()
		return
	}
	for rule, n := range c.OpenByRule {
		w.open.WithLabelValues(rule).Set(float64(n))
	}
	w.last.SetToCurrentTime()
}
