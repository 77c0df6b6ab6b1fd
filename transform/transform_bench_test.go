package transform_test

import (
	"testing"
	"time"

	"github.com/logpipe/logpipe/sample"
	"github.com/logpipe/logpipe/transform"
)

// BenchmarkFastlyTransform is the per-record hot path of a CDN stream:
// parse a realistic Fastly line and enrich it (templates, classes, keyed
// hashes, flags), over a mix of 10,000 lines from the sample generator.
func BenchmarkFastlyTransform(b *testing.B) {
	lines, _ := sample.CDN(9, sample.CDNOptions{Requests: 10_000, Start: time.Now(), Span: time.Hour,
		IncidentFrom: time.Now(), IncidentTo: time.Now().Add(10 * time.Minute)})
	e, err := transform.NewEnricher(transform.EnrichConfig{
		HashKey:         []byte("bench-key-0123456789abcdef"),
		SessionCookies:  []string{"session"},
		DropQueryParams: []string{"token", "email"},
		PathClasses:     []transform.PathClassRule{{Class: "personal", Patterns: []string{"/mypage*", "/transaction*", "/api/users/me"}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	var p transform.FastlyJSON
	var r transform.CDNRequest
	size := 0
	for _, l := range lines {
		size += len(l.Value)
	}
	b.SetBytes(int64(size / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset()
		if err := p.Parse(lines[i%len(lines)].Value, &r); err != nil {
			b.Fatal(err)
		}
		e.CDN(&r)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
