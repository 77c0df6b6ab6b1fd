package sink_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// BenchmarkFencedInsert measures what the fence adds to one INSERT of a
// CDN batch on the local ClickHouse server: the same batch inserted into
// cdn_requests directly (plain) and through cdn_requests_in and its fence
// view (fenced), with the fence table holding one partition or 1,000
// partitions fenced 10 times each in 10 parts (a fence table that has not
// been merged yet). Both paths run the same views on the stored rows.
func BenchmarkFencedInsert(b *testing.B) {
	srv := chserver.Shared(b)
	ctx := context.Background()
	r := make([]byte, 4)
	rand.Read(r)
	o := chclient.Options{Addr: []string{srv.TCPAddr}, Database: "bench_" + hex.EncodeToString(r)}
	if err := chclient.CreateDatabase(ctx, o); err != nil {
		b.Fatal(err)
	}
	conn, err := chclient.Open(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.Database)
		conn.Close()
	})
	if _, err := schemas.Migrate(ctx, conn); err != nil {
		b.Fatal(err)
	}
	w := sink.NewWriter(conn, slog.New(slog.DiscardHandler))
	epoch, err := checkpoint.New(conn).Fence(ctx, "cdn", 0)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	batch := func(rows int) *tables.CDNRequests {
		c := tables.NewCDNRequests()
		for i := range rows {
			c.Append(&transform.CDNRequest{Time: t0.Add(time.Duration(i) * time.Millisecond), Vendor: "fastly", Host: "www.example.com", Path: fmt.Sprintf("/items/%d", i), PathTemplate: "/items/:id",
				Status: 200, CacheStatus: "hit", FromCache: true, BytesSent: 1234, DurationMs: 12.5, UserAgent: "Mozilla/5.0", SessionHash: uint64(i)},
				tables.Meta{Topic: "cdn", Partition: 0, Offset: int64(i)}, t0, 300)
		}
		return c
	}
	for _, fences := range []int{1, 10_000} {
		if fences > 1 {
			for round := range 10 {
				q := fmt.Sprintf("INSERT INTO ingest_fences (_topic, _partition, epoch) SELECT 'other', toInt32(number), maxState(toUInt64(%d)) FROM numbers(1000) GROUP BY number", round+1)
				if err := conn.Exec(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		}
		for _, rows := range []int{1, 1000, 10_000} {
			c := batch(rows)
			reset := func(b *testing.B) {
				// Parts of earlier runs would slow the inserts down.
				for _, t := range []string{"cdn_requests", "cdn_hourly_state", "ingest_watermarks"} {
					if err := conn.Exec(ctx, "TRUNCATE TABLE "+t); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
			}
			b.Run(fmt.Sprintf("fences=%d/rows=%d", fences, rows), func(b *testing.B) {
				reset(b)
				// Plain and fenced inserts alternate, so that the other
				// work on a shared machine weighs on both alike; each is
				// timed on its own and the medians compared.
				var plain, fenced []float64
				for i := range b.N {
					began := time.Now()
					var err error
					if i%2 == 0 {
						err = w.Insert(ctx, c)
						plain = append(plain, float64(time.Since(began).Microseconds()))
					} else {
						err = w.InsertFenced(ctx, c, "", checkpoint.Fence{Topic: "cdn", Partition: 0, Epoch: epoch})
						fenced = append(fenced, float64(time.Since(began).Microseconds()))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if len(fenced) == 0 {
					return
				}
				mp, mf := median(plain), median(fenced)
				b.ReportMetric(mp/1000, "plain-ms/insert(p50)")
				b.ReportMetric(mf/1000, "fenced-ms/insert(p50)")
				b.ReportMetric((mf-mp)/1000, "fence-ms/insert")
				b.ReportMetric((mf-mp)*1000/float64(rows), "fence-ns/row")
			})
		}
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
