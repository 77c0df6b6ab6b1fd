// Package metrics exposes what a logpipe process is doing to Prometheus:
// the pipeline's counters, INSERT latency and retries, consumer-group lag
// per partition, and the HTTP endpoints /metrics, /healthz and /readyz.
//
// It is a leaf: it imports none of logpipe's packages nor a Kafka or
// ClickHouse client. It is fed through plain methods (OnInsert, OnRetry:
// the writer's hooks) and functions read at scrape time (Pipeline,
// Progress, Coverage, Lag); cmd adapts the pipeline, the writer and the
// brokers to them.
package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
// and the INSERT metrics (fed by OnInsert and OnRetry).
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

// OnInsert records one INSERT attempt into table: its duration, and the
// rows acknowledged (err == nil) or a failure. It implements
// sink.InsertHook: add m to the writer's hooks.
func (m *Metrics) OnInsert(table string, rows int, d time.Duration, err error) {
	m.insertSeconds.WithLabelValues(table).Observe(d.Seconds())
	if err != nil {
		m.insertErrors.WithLabelValues(table).Inc()
		return
	}
	m.insertRows.WithLabelValues(table).Add(float64(rows))
}

// OnRetry records an INSERT attempt into table that failed and is
// retried. It implements sink.RetryHook.
func (m *Metrics) OnRetry(table string, attempt int, err error) {
	m.retries.WithLabelValues(table).Inc()
}

// Counts are what the pipeline has done since the process started
// (pipeline.Stats).
type Counts struct {
	Records  int64 // Kafka records consumed
	Lines    int64 // lines parsed
	Rows     int64 // rows inserted into data tables
	Rejected int64 // lines sent to ingest_errors
	Batches  int64 // INSERTs that succeeded
	Commits  int64 // offset commits that succeeded
	Skipped  int64 // rows already stored, not inserted again
	Fenced   int64 // batches dropped: the partition has a newer owner
}

// Pipeline registers the counts read calls at each scrape as
// logpipe_records_total, logpipe_lines_total, ... (the counters stay
// plain atomics in the pipeline's hot path).
func (m *Metrics) Pipeline(read func() Counts) error {
	return m.Registry.Register(countsCollector{read: read})
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

// countsCollector reads the pipeline's counts at scrape time.
type countsCollector struct{ read func() Counts }

type statDesc struct {
	desc *prometheus.Desc
	load func(*Counts) int64
}

var statDescs = []statDesc{
	{prometheus.NewDesc(Namespace+"_records_total", "Kafka records consumed.", nil, nil), func(n *Counts) int64 { return n.Records }},
	{prometheus.NewDesc(Namespace+"_lines_total", "Lines parsed (a record may hold several).", nil, nil), func(n *Counts) int64 { return n.Lines }},
	{prometheus.NewDesc(Namespace+"_rows_total", "Rows inserted into data tables (job_events, cdn_requests).", nil, nil), func(n *Counts) int64 { return n.Rows }},
	{prometheus.NewDesc(Namespace+"_rejected_total", "Lines sent to ingest_errors (unparsable, oversized, empty).", nil, nil), func(n *Counts) int64 { return n.Rejected }},
	{prometheus.NewDesc(Namespace+"_batches_total", "INSERTs that succeeded.", nil, nil), func(n *Counts) int64 { return n.Batches }},
	{prometheus.NewDesc(Namespace+"_commits_total", "Kafka offset commits that succeeded.", nil, nil), func(n *Counts) int64 { return n.Commits }},
	{prometheus.NewDesc(Namespace+"_skipped_total", "Rows not inserted again because they were already stored (re-delivery after a crash or rebalance).", nil, nil), func(n *Counts) int64 { return n.Skipped }},
	{prometheus.NewDesc(Namespace+"_fenced_total", "Batches dropped because the partition has a newer owner (refused by the fence, or the generation ended): nothing stored or committed, the owner reads them again.", nil, nil), func(n *Counts) int64 { return n.Fenced }},
}

func (c countsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range statDescs {
		ch <- d.desc
	}
}

func (c countsCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.read()
	for _, d := range statDescs {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.load(&n)))
	}
}
