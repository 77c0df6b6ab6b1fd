package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
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

// hangFor is how long the fault rows keep a process hung: 10 s in make
// test, LOGPIPE_SOAK_HANG (30s in make soak) otherwise.
func hangFor() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LOGPIPE_SOAK_HANG")); err == nil && d > 0 {
		return d
	}
	return 10 * time.Second
}

// TestClickHouseHang stops the ClickHouse server with SIGSTOP while
// records arrive: its connections stay open and nothing answers (no
// reset, no refusal), the fault a crash test does not cover. Inserts time
// out and are retried, the partitions show as waiting, and after SIGCONT
// every record is stored exactly once.
func TestClickHouseHang(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	srv := chserver.Private(t)
	ctx := context.Background()
	o := chclient.Options{Addr: []string{srv.TCPAddr}, Database: "hang", DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, QueryTimeout: 5 * time.Second}
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
	w.RetryMax, w.Timeout = time.Second, 5*time.Second
	var failed atomic.Int64
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
	c, _ := ingest.NewConsumer(ingest.Config{Brokers: broker.Addrs, Group: "hang", Topics: []string{"jobs"}, StartEarliest: true, FetchMaxWait: 100 * time.Millisecond}, log)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx, p) }()
	defer func() {
		cancel()
		<-done
	}()

	batch := func(from, n int) {
		values := make([]string, n)
		for i := range values {
			values[i] = fmt.Sprintf(`{"time":"2026-11-20T01:00:00Z","job":"j","run_id":"r%d","event":"started"}`, from+i)
		}
		produce(t, broker, "jobs", values, func(i int) string { return fmt.Sprint(from + i) })
	}
	count := func() int {
		r, err := conn.QueryStrings(ctx, "SELECT toString(count()) FROM job_events")
		if err != nil {
			return -1
		}
		n, _ := strconv.Atoi(r[0][0])
		return n
	}
	batch(0, 5000)
	waitUntil(t, 60*time.Second, func() bool { return count() >= 5000 })

	hang := hangFor()
	pid := srv.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	defer syscall.Kill(pid, syscall.SIGCONT)
	failedBefore := failed.Load()
	batch(5000, 5000)
	// Inserts of the records produced during the hang fail (time out):
	// the fault overlaps ingestion, and the partitions show as waiting.
	waitUntil(t, hang+30*time.Second, func() bool { return failed.Load() > failedBefore })
	var waiting time.Duration
	for time.Since(stopped) < hang {
		for _, pp := range p.Progress() {
			waiting = max(waiting, pp.Waiting)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	if waiting < hang/2 {
		t.Errorf("during a %s hang the partitions showed at most %s waiting", hang, waiting)
	}
	waitUntil(t, 120*time.Second, func() bool { return count() >= 10000 })
	recovered := time.Since(resumed)
	r, err := conn.QueryStrings(ctx, "SELECT toString(count()), toString(uniqExact(_partition, _offset)) FROM job_events")
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := strconv.Atoi(r[0][0])
	distinct, _ := strconv.Atoi(r[0][1])
	if rows != 10000 || distinct != 10000 {
		t.Errorf("after the hang: %d rows, %d distinct offsets, want 10000 each (lost %d, duplicated %d)", rows, distinct, 10000-distinct, rows-distinct)
	}
	t.Logf("ClickHouse hung %s (SIGSTOP): %d insert attempts failed, partitions showed up to %s waiting; every record stored %s after SIGCONT",
		hang, failed.Load()-failedBefore, waiting.Round(100*time.Millisecond), recovered.Round(100*time.Millisecond))
}
