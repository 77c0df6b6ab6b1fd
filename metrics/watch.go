package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logpipe/logpipe/watch"
)

// Watch attaches metrics to a logpipe watch process: open alerts per
// rule, notifications, rule failures and when the last cycle ended.
func (m *Metrics) Watch(w *watch.Watcher) {
	open := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "watch", Name: "alerts_open",
		Help: "Alerts open after the last cycle, by rule."}, []string{"rule"})
	sent := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "watch", Name: "notifications_total",
		Help: "Notifications delivered (one per event and channel)."})
	failed := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "watch", Name: "notification_failures_total",
		Help: "Notifications a channel refused or did not answer (retried next cycle)."})
	ruleErrs := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "watch", Name: "rule_errors_total",
		Help: "Cycles in which a rule's query failed, by rule."}, []string{"rule"})
	cycleErrs := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "watch", Name: "cycle_errors_total",
		Help: "Cycles that failed as a whole (alert state unreadable or unwritable)."})
	last := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "watch", Name: "last_cycle_timestamp_seconds",
		Help: "Unix time the last successful cycle ended."})
	dur := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "watch", Name: "last_cycle_duration_seconds",
		Help: "How long the last cycle took."})
	m.Registry.MustRegister(open, sent, failed, ruleErrs, cycleErrs, last, dur)
	for _, r := range w.Rules() {
		open.WithLabelValues(r)
		ruleErrs.WithLabelValues(r)
	}
	w.OnCycle = func(r watch.Report, d time.Duration, err error) {
		dur.Set(d.Seconds())
		sent.Add(float64(r.Sent))
		failed.Add(float64(r.Failed))
		for rule := range r.RuleErrors {
			ruleErrs.WithLabelValues(rule).Inc()
		}
		if err != nil {
			cycleErrs.Inc()
			return
		}
		for rule, n := range r.OpenByRule {
			open.WithLabelValues(rule).Set(float64(n))
		}
		last.SetToCurrentTime()
	}
}
