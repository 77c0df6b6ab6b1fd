package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	coverageLinesDesc = prometheus.NewDesc(Namespace+"_stream_cdn_lines_total",
		"CDN lines parsed, by stream (the denominator of logpipe_field_found_lines_total).", []string{"stream"}, nil)
	coverageFoundDesc = prometheus.NewDesc(Namespace+"_field_found_lines_total",
		"CDN lines in which a field logpipe uses was found, by stream and field (time, method, host, path, status, cache_status, bytes, origin_time, session_cookie, cache_control, set_cookie, client_ip).", []string{"stream", "field"}, nil)
)

// StreamCoverage is one CDN stream's field coverage so far
// (pipeline.StreamCoverage).
type StreamCoverage struct {
	Stream string
	Lines  int64 // lines parsed
	Found  []FieldLines
}

// FieldLines is how many lines a field was found in.
type FieldLines struct {
	Field string
	Lines int64
}

// Coverage registers the per-stream field coverage that read returns at
// each scrape.
func (m *Metrics) Coverage(read func() []StreamCoverage) error {
	return m.Registry.Register(coverageCollector{read})
}

type coverageCollector struct{ read func() []StreamCoverage }

func (c coverageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- coverageLinesDesc
	ch <- coverageFoundDesc
}

func (c coverageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.read() {
		ch <- prometheus.MustNewConstMetric(coverageLinesDesc, prometheus.CounterValue, float64(s.Lines), s.Stream)
		for _, f := range s.Found {
			ch <- prometheus.MustNewConstMetric(coverageFoundDesc, prometheus.CounterValue, float64(f.Lines), s.Stream, f.Field)
		}
	}
}
