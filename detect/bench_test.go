package detect

import (
	"runtime"
	"testing"
	"time"

	"github.com/logpipe/logpipe/sample"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// BenchmarkObserve: cost of the detector per CDN record (parsing and
// enrichment excluded), on realistic traffic with a leak.
func BenchmarkObserve(b *testing.B) {
	lines, _ := sample.Browsing(3, sample.BrowsingOptions{Start: time.Unix(1_790_000_000, 0), Span: 2 * time.Minute, LeakFrom: time.Unix(1_790_000_060, 0)})
	p, _ := transform.NewParserWith("fastly-json", transform.ParserOptions{})
	e, _ := transform.NewEnricher(transform.EnrichConfig{HashKey: []byte("bench-key-0123456789abcdef"), SessionCookies: []string{"session"},
		PathClasses: []transform.PathClassRule{{Class: "personal", Patterns: []string{"/mypage*"}}}})
	rs := make([]transform.CDNRequest, len(lines))
	for i, l := range lines {
		p.(transform.CDNParser).Parse(l.Value, &rs[i])
		e.CDN(&rs[i])
	}
	d := New(Options{Buffer: 1 << 20})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Observe(&rs[i%len(rs)], tables.Meta{})
		if i%4096 == 0 {
			for len(d.out) > 0 {
				<-d.out
			}
		}
	}
}

// BenchmarkMemoryPerObject reports the heap held per remembered cache key
// (bytes/object) with eight origin fetches and four pending shares each
// (the worst case).
func BenchmarkMemoryPerObject(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d := New(Options{MaxObjects: n})
		r := transform.CDNRequest{Host: "www.example.jp", Status: 200, CacheStatus: transform.CacheMiss, ETag: `W/"5f2a9c-17"`, BytesSent: 31000}
		for k := 0; k < n; k++ {
			r.Path = "/items/m" + itoa(uint64(10000000000+k))
			r.CacheStatus = transform.CacheMiss
			for f := 0; f < maxFetches; f++ {
				r.SessionHash = uint64(f + 1)
				r.Time = time.Unix(int64(1_790_000_000+f), 0)
				d.Observe(&r, tables.Meta{})
			}
			// Public-page hits by other sessions fill the pending shares.
			r.CacheStatus, r.FromCache = transform.CacheHit, true
			for f := 0; f < maxPending; f++ {
				r.SessionHash = uint64(100 + f)
				d.Observe(&r, tables.Meta{Topic: "cdn"})
			}
			r.FromCache = false
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(d.Objects()), "bytes/object")
		runtime.KeepAlive(d)
	}
}
