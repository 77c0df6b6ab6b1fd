package transform

import (
	"testing"
)

// BenchmarkParse measures each format on its golden sample lines (those
// that parse), one record per op.
func BenchmarkParse(b *testing.B) {
	cases := []struct {
		format, optionsFile string
		opts                ParserOptions
	}{
		{"fastly-json", "", ParserOptions{}},
		{"cloudfront-standard", "", ParserOptions{}},
		{"cloudfront-realtime", "", ParserOptions{}},
		{"cloudflare-json", "", ParserOptions{}},
		{"akamai-datastream2", "", ParserOptions{}},
		{"nginx-combined", "", ParserOptions{}},
		{"nginx", "cache", ParserOptions{LogFormat: nginxCacheFormat}},
		{"apache-combined", "", ParserOptions{}},
		{"apache", "cache", ParserOptions{LogFormat: apacheCacheFormat}},
		{"logpipe-job", "", ParserOptions{}},
		{"job-json", "loggers", ParserOptions{}},
		{"job-logfmt", "", ParserOptions{}},
		{"k8s-job-events", "", ParserOptions{}},
	}
	for _, c := range cases {
		b.Run(c.format, func(b *testing.B) {
			p, err := NewParserWith(c.format, c.opts)
			if err != nil {
				b.Fatal(err)
			}
			var good [][]byte
			size := 0
			for _, l := range goldenLines(b, c.format, c.optionsFile) {
				if _, err := parseLine(p, l); err == nil {
					good = append(good, l)
					size += len(l)
				}
			}
			b.SetBytes(int64(size / len(good)))
			b.ReportAllocs()
			var r CDNRequest
			var e JobEvent
			cdn, _ := p.(CDNParser)
			job, _ := p.(JobParser)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				line := good[i%len(good)]
				if cdn != nil {
					r.Reset()
					if err := cdn.Parse(line, &r); err != nil {
						b.Fatal(err)
					}
				} else {
					e.Reset()
					if err := job.Parse(line, &e); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
