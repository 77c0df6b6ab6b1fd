package transform

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/logpipe/logpipe/sample"
)

// BenchmarkRedactCDN measures the redaction pass alone on parsed CDN
// records: clean ones (the sample generator's traffic) and dirty ones
// (the Fastly lines of the leak corpus: secrets in every field).
func BenchmarkRedactCDN(b *testing.B) {
	e, err := NewEnricher(EnrichConfig{HashKey: []byte("bench-key-0123456789abcdef"), SessionCookies: []string{"session"}})
	if err != nil {
		b.Fatal(err)
	}
	var p FastlyJSON
	parse := func(lines [][]byte) []CDNRequest {
		var out []CDNRequest
		for _, l := range lines {
			var r CDNRequest
			if p.Parse(l, &r) == nil {
				out = append(out, r)
			}
		}
		return out
	}
	recs, _ := sample.CDN(9, sample.CDNOptions{Requests: 10_000, Start: time.Now(), Span: time.Hour,
		IncidentFrom: time.Now(), IncidentTo: time.Now().Add(10 * time.Minute)})
	var clean [][]byte
	for _, r := range recs {
		clean = append(clean, r.Value)
	}
	corpus, err := os.ReadFile("testdata/leak/corpus/fastly-json__fastly.log")
	if err != nil {
		b.Fatal(err)
	}
	var dirty [][]byte
	EachLine(corpus, func(_ int, l []byte) { dirty = append(dirty, l) })
	for _, c := range []struct {
		name string
		recs []CDNRequest
	}{{"clean", parse(clean)}, {"dirty", parse(dirty)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := threadCPU(b)
			for i := 0; i < b.N; i++ {
				r := c.recs[i%len(c.recs)]
				e.redactCDN(&r)
			}
			cpu.report(b)
		})
	}
	// The whole per-record path for comparison: parse, enrich (redaction
	// included) of the clean lines, as BenchmarkFastlyTransform.
	b.Run("transform", func(b *testing.B) {
		b.ReportAllocs()
		var r CDNRequest
		cpu := threadCPU(b)
		for i := 0; i < b.N; i++ {
			r.Reset()
			if err := p.Parse(clean[i%len(clean)], &r); err != nil {
				b.Fatal(err)
			}
			e.CDN(&r)
		}
		cpu.report(b)
	})
}

// cpuClock reports CPU time of the benchmark's thread per op (cpu-ns/op):
// on a shared machine wall time per op also counts time spent waiting
// for a core.
type cpuClock struct{ start int64 }

func threadCPU(b *testing.B) cpuClock {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	b.ResetTimer()
	return cpuClock{threadNs()}
}

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(threadNs()-c.start)/float64(b.N), "cpu-ns/op")
}

func threadNs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return ru.Utime.Nano() + ru.Stime.Nano()
}
