package pipeline

import (
	"log/slog"
	"sync/atomic"

	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// fieldCoverage counts, for one CDN stream, the lines parsed and the
// lines each field logpipe uses was found in (transform.CDNCoverage).
type fieldCoverage struct {
	lines  atomic.Int64
	found  [transform.CovCount]atomic.Int64
	warned [transform.CovCount]atomic.Bool
}

// coverageCounts are one worker's counts since its last flush, added to
// the stream's shared counters then (no atomic operation per line).
type coverageCounts struct {
	lines int64
	found [transform.CovCount]int64
}

// OnRecord counts r (a RecordHook of the worker's own).
func (c *coverageCounts) OnRecord(r *transform.CDNRequest, _ tables.Meta) { c.add(r) }

func (c *coverageCounts) add(r *transform.CDNRequest) {
	var found [transform.CovCount]bool
	transform.CDNCoverage(r, &found)
	c.lines++
	for f, ok := range found {
		if ok {
			c.found[f]++
		}
	}
}

// addTo adds the counts to a stream's and clears them.
func (c *coverageCounts) addTo(s *fieldCoverage) {
	if c.lines == 0 {
		return
	}
	s.lines.Add(c.lines)
	for f, n := range c.found {
		if n != 0 {
			s.found[f].Add(n)
		}
	}
	*c = coverageCounts{}
}

// warnMissing logs, once per stream and field, that a field the
// cache-anomaly detection needs was found in none of the lines so far.
func (c *fieldCoverage) warnMissing(log *slog.Logger, st Stream) {
	n := c.lines.Load()
	if n == 0 {
		return
	}
	for f := 0; f < transform.CovCount; f++ {
		if !transform.DetectionField(f) || c.found[f].Load() != 0 || !c.warned[f].CompareAndSwap(false, true) {
			continue
		}
		log.Warn("a field the cache-anomaly detection needs is missing from every line: map the key that holds it with the stream's field_map, or log it (logpipe formats FORMAT -vendor-config); logpipe check shows the coverage",
			"stream", st.Name, "topic", st.Topic, "format", st.Format, "field", transform.CoverageName(f), "lines", n)
	}
}

// StreamCoverage is one stream's field coverage so far.
type StreamCoverage struct {
	Stream string
	Lines  int64
	// Found holds, per transform coverage field, the lines it was found in.
	Found [transform.CovCount]int64
}

// Coverage returns the field coverage of each CDN stream.
func (p *Pipeline) Coverage() []StreamCoverage {
	var out []StreamCoverage
	for _, s := range p.cfg.Streams {
		st, ok := p.streams[s.Topic]
		if !ok || st.cov == nil {
			continue
		}
		sc := StreamCoverage{Stream: s.Name, Lines: st.cov.lines.Load()}
		for f := range sc.Found {
			sc.Found[f] = st.cov.found[f].Load()
		}
		out = append(out, sc)
	}
	return out
}
