// Package metrics exposes what a logpipe process is doing to Prometheus:
// the pipeline's counters, INSERT latency and retries, consumer-group lag
// per partition, and the HTTP endpoints /metrics, /healthz and /readyz.
package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/sink"
)

// Namespace prefixes every logpipe metric.
const Namespace = "logpipe"

// Metrics is one process's registry.
type Metrics struct {
	Registry *prometheus.Registry

	insertSeconds *prometheus.HistogramVec
	insertRows    *prometheus.CounterVec
	insertErrors  *prometheus.CounterVec
	retries       *prometheus.CounterVec
}

// New returns a registry holding the Go runtime and process collectors
// and the INSERT metrics (fed once a writer is attached with Writer).
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "insert_duration_seconds",
			Help:    "Duration of one INSERT attempt into ClickHouse, by table (failed attempts included).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"table"}),
		insertRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "insert_rows_total",
			Help: "Rows acknowledged by ClickHouse, by table (ingest_errors included).",
		}, []string{"table"}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "insert_errors_total",
			Help: "INSERT attempts that failed, by table (retried or not).",
		}, []string{"table"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "insert_retries_total",
			Help: "INSERT attempts that failed with a retryable error and were retried, by table.",
		}, []string{"table"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.insertSeconds, m.insertRows, m.insertErrors, m.retries,
	)
	return m
}

// Writer attaches the INSERT hooks to w. It replaces hooks already set.
func (m *Metrics) Writer(w *sink.Writer) {
	w.OnInsert = func(table string, rows int, d time.Duration, err error) {
		m.insertSeconds.WithLabelValues(table).Observe(d.Seconds())
		if err != nil {
			m.insertErrors.WithLabelValues(table).Inc()
			return
		}
		m.insertRows.WithLabelValues(table).Add(float64(rows))
	}
	w.OnRetry = func(table string, attempt int, err error) {
		m.retries.WithLabelValues(table).Inc()
	}
}

// Pipeline registers the counters of s (pipeline.Stats) as
// logpipe_records_total, logpipe_lines_total, ...
func (m *Metrics) Pipeline(s *pipeline.Stats) error {
	return m.Registry.Register(statsCollector{s: s})
}

// Register adds another collector (for example a Lag).
func (m *Metrics) Register(c prometheus.Collector) error {
	err := m.Registry.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return nil
	}
	return err
}

// statsCollector reads pipeline.Stats at scrape time: the counters stay
// plain atomics in the hot path.
type statsCollector struct{ s *pipeline.Stats }

type statDesc struct {
	desc *prometheus.Desc
	load func(*pipeline.Stats) int64
}

var statDescs = []statDesc{
	{prometheus.NewDesc(Namespace+"_records_total", "Kafka records consumed.", nil, nil), func(s *pipeline.Stats) int64 { return s.Records.Load() }},
	{prometheus.NewDesc(Namespace+"_lines_total", "Lines parsed (a record may hold several).", nil, nil), func(s *pipeline.Stats) int64 { return s.Lines.Load() }},
	{prometheus.NewDesc(Namespace+"_rows_total", "Rows inserted into data tables (job_events, cdn_requests).", nil, nil), func(s *pipeline.Stats) int64 { return s.Rows.Load() }},
	{prometheus.NewDesc(Namespace+"_rejected_total", "Lines sent to ingest_errors (unparsable, oversized, empty).", nil, nil), func(s *pipeline.Stats) int64 { return s.Rejected.Load() }},
	{prometheus.NewDesc(Namespace+"_batches_total", "INSERTs that succeeded.", nil, nil), func(s *pipeline.Stats) int64 { return s.Batches.Load() }},
	{prometheus.NewDesc(Namespace+"_commits_total", "Kafka offset commits that succeeded.", nil, nil), func(s *pipeline.Stats) int64 { return s.Commits.Load() }},
	{prometheus.NewDesc(Namespace+"_skipped_total", "Rows not inserted again because they were already stored (re-delivery after a crash or rebalance).", nil, nil), func(s *pipeline.Stats) int64 { return s.Skipped.Load() }},
	{prometheus.NewDesc(Namespace+"_fenced_total", "Batches dropped because the partition has a newer owner (refused by the fence, or the generation ended): nothing stored or committed, the owner reads them again.", nil, nil), func(s *pipeline.Stats) int64 { return s.Fenced.Load() }},
}

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range statDescs {
		ch <- d.desc
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range statDescs {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.load(c.s)))
	}
}
