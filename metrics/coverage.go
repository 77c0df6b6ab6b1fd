package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/transform"
)

var (
	coverageLinesDesc = prometheus.NewDesc(Namespace+"_stream_cdn_lines_total",
		"CDN lines parsed, by stream (the denominator of logpipe_field_found_lines_total).", []string{"stream"}, nil)
	coverageFoundDesc = prometheus.NewDesc(Namespace+"_field_found_lines_total",
		"CDN lines in which a field logpipe uses was found, by stream and field (time, method, host, path, status, cache_status, bytes, origin_time, session_cookie, cache_control, set_cookie, client_ip).", []string{"stream", "field"}, nil)
)

// Coverage registers the per-stream field coverage of p.
func (m *Metrics) Coverage(p *pipeline.Pipeline) error {
	return m.Registry.Register(coverageCollector{p})
}

type coverageCollector struct{ p *pipeline.Pipeline }

func (c coverageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- coverageLinesDesc
	ch <- coverageFoundDesc
}

func (c coverageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.p.Coverage() {
		ch <- prometheus.MustNewConstMetric(coverageLinesDesc, prometheus.CounterValue, float64(s.Lines), s.Stream)
		for f, n := range s.Found {
			ch <- prometheus.MustNewConstMetric(coverageFoundDesc, prometheus.CounterValue, float64(n), s.Stream, transform.CoverageName(f))
		}
	}
}
