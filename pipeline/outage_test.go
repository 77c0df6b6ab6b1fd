package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
)

// TestClickHouseOutage stops the ClickHouse server while records keep
// arriving, starts it again 15 s later, and checks that the pipeline
// resumes by itself, loses nothing and stores nothing twice.
func TestClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	srv := chserver.Private(t)
	ctx := context.Background()
	o := chclient.Options{Addr: []string{srv.TCPAddr}, Database: "outage"}
	if err := chclient.CreateDatabase(ctx, o); err != nil {
		t.Fatal(err)
	}
	conn, err := chclient.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := schemas.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 2, Topics: []string{"jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	w := sink.NewWriter(conn, log)
	w.RetryMax = time.Second
	w.Timeout = 5 * time.Second
	var failed atomic.Int64 // insert attempts that failed
	w.Hooks = append(w.Hooks, sink.InsertFunc(func(_ string, _ int, _ time.Duration, err error) {
		if err != nil {
			failed.Add(1)
		}
	}))
	p, err := pipeline.New(pipeline.Config{
		Streams: []pipeline.Stream{{Name: "jobs", Topic: "jobs", Format: "logpipe-job"}},
		Limits:  pipeline.Limits{MaxRows: 1000, MaxBytes: 1 << 20, MaxAge: 100 * time.Millisecond, MaxRecordBytes: 4096},
		Enrich:  transform.EnrichConfig{HashKey: hashKey},
	}, insertVia(w), checkpoint.New(w.Conn()), log)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ingest.NewConsumer(ingest.Config{Brokers: broker.Addrs, Group: "outage", Topics: []string{"jobs"}, StartEarliest: true, FetchMaxWait: 100 * time.Millisecond, QueueRecords: 2000}, log)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx, p) }()

	batch := func(from, n int) {
		values := make([]string, n)
		for i := range values {
			values[i] = fmt.Sprintf(`{"time":"2026-11-20T01:00:00Z","job":"j","run_id":"r%d","event":"started","message":"%0200d"}`, from+i, 0)
		}
		produce(t, broker, "jobs", values, func(i int) string { return fmt.Sprint(i) })
	}
	count := func() int {
		r, err := conn.QueryStrings(ctx, "SELECT toString(count()) FROM job_events")
		if err != nil {
			return -1
		}
		n, _ := strconv.Atoi(r[0][0])
		return n
	}
	// At least n, not exactly: a duplicate must show as a duplicate at
	// the end, not as a timeout here.
	batch(0, 5000)
	waitUntil(t, 60*time.Second, func() bool { return count() >= 5000 })

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	readBefore := p.Stats.Records.Load()
	var peak uint64
	for i := 0; i < 10; i++ { // 50,000 records arrive during the outage
		batch(5000+i*5000, 5000)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	// The outage must overlap ingestion: records are read and inserts
	// fail while the server is down (not merely before or after it).
	waitUntil(t, 60*time.Second, func() bool { return p.Stats.Records.Load() > readBefore && failed.Load() > 0 })
	time.Sleep(10 * time.Second)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapInuse)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waitUntil(t, 120*time.Second, func() bool { return count() >= 55000 })
	recovered := time.Since(restarted)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r, _ := conn.QueryStrings(ctx, "SELECT toString(count()), toString(uniqExact(_partition, _offset)) FROM job_events")
	rows, _ := strconv.Atoi(r[0][0])
	distinct, _ := strconv.Atoi(r[0][1])
	if rows != 55000 || distinct != 55000 {
		t.Errorf("after the outage: %d rows, %d distinct offsets, want 55000 each (lost %d, duplicated %d)", rows, distinct, 55000-distinct, rows-distinct)
	}
	t.Logf("server stopped for the outage: %d failed insert attempts during it; every record stored %s after the restart", failed.Load(), recovered.Round(100*time.Millisecond))
	// A figure for the notes, not an assertion: the process also runs the
	// kfake broker, which keeps every record.
	t.Logf("peak heap in use during the outage: %d MiB", peak>>20)
}

func waitUntil(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
