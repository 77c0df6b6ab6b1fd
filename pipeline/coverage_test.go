package pipeline

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/transform"
)

// TestFieldCoverageWarnsOnce: a CDN stream whose lines never carry a
// cache status gets one warning naming the stream and the field, however
// many batches follow; the counts are what Coverage (the metric) reports.
func TestFieldCoverageWarnsOnce(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p := &Pipeline{cfg: Config{Streams: []Stream{{Name: "cdn", Topic: "t", Format: "fastly-json"}}}, streams: map[string]stream{}}
	cov := &fieldCoverage{}
	p.streams["t"] = stream{Stream: p.cfg.Streams[0], cov: cov}
	r := transform.CDNRequest{Time: time.Unix(1, 0), Path: "/a", Status: 200}
	var local coverageCounts
	for i := 0; i < 3; i++ {
		local.add(&r)
		local.addTo(cov)
		cov.warnMissing(log, p.cfg.Streams[0])
	}
	if n := strings.Count(logs.String(), "missing from every line"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "stream=cdn") || !strings.Contains(logs.String(), "field=cache_status") {
		t.Errorf("warning does not name stream and field:\n%s", logs.String())
	}
	r.CacheRaw = "HIT"
	local.add(&r)
	local.addTo(cov)
	got := p.Coverage()
	if len(got) != 1 || got[0].Lines != 4 || got[0].Found[transform.CovCacheStatus] != 1 || got[0].Found[transform.CovPath] != 4 || got[0].Found[transform.CovHost] != 0 {
		t.Errorf("coverage = %+v", got)
	}
}
