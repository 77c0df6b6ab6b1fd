package pipeline

import (
	"log/slog"
	"testing"
	"time"

	"github.com/logpipe/logpipe/partition"
	"github.com/logpipe/logpipe/sample"
	"github.com/logpipe/logpipe/transform"
)

// BenchmarkWorkerAdd measures a partition worker's per-record path:
// split, parse, enrich, append to the batch (realistic fastly-json CDN
// records; the batch is emptied every 1,000 records, as a flush would).
func BenchmarkWorkerAdd(b *testing.B) {
	lines, _ := sample.CDN(9, sample.CDNOptions{Requests: 10_000, Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Span: time.Hour})
	p, err := New(Config{
		Streams: []Stream{{Name: "s", Topic: "t", Format: "fastly-json"}},
		Limits:  Limits{MaxRows: 1000, MaxBytes: 1 << 30, MaxAge: time.Hour, MaxRecordBytes: 1 << 20},
		Enrich:  transform.EnrichConfig{HashKey: []byte("bench-key-0123456789abcdef"), SessionCookies: []string{"session"}},
	}, nopStore{}, nopStore{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	w, err := newWorker(p, p.streams["t"], nil, partition.Info{Topic: "t"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w.add(partition.Record{Topic: "t", Offset: int64(i), Value: lines[i%len(lines)].Value})
		if w.records == 1000 {
			w.dataBatch().Reset()
			w.errs.Reset()
			w.records, w.bytes = 0, 0
		}
	}
}
