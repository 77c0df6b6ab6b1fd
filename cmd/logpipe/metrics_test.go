package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/metrics"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
)

// scrapeAll fetches url/metrics and returns every sample by its full name
// with labels as exposed, e.g. `logpipe_insert_rows_total{table="job_events"}`.
func scrapeAll(t *testing.T, base string) map[string]float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %s", res.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	return out
}

// sum adds the samples of metric name over all label sets.
func sum(m map[string]float64, name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestMetricsEndToEnd runs the real pipeline (kfake broker, local
// ClickHouse, consumer group) with the metrics server attached, and checks
// that the counters move by exactly what was produced, that the lag goes
// from the number of records to zero, and that /readyz follows the
// consumer group.
func TestMetricsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	srv := chserver.Shared(t)
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	opts := chclient.Options{Addr: []string{srv.TCPAddr}, Database: "metrics_" + hex.EncodeToString(b), User: "default"}
	if err := chclient.CreateDatabase(ctx, opts); err != nil {
		t.Fatal(err)
	}
	conn, err := chclient.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+opts.Database)
		conn.Close()
	})
	if _, err := schemas.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 3, Topics: []string{"jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	w := sink.NewWriter(conn, log)
	p, err := pipeline.New(pipeline.Config{
		Streams: []pipeline.Stream{{Name: "jobs", Topic: "jobs", Format: "logpipe-job"}},
		Limits:  pipeline.Limits{MaxRows: 500, MaxBytes: 1 << 20, MaxAge: 100 * time.Millisecond, MaxRecordBytes: 4096},
		Enrich:  transform.EnrichConfig{HashKey: []byte("metrics-test-key-0123456789")},
	}, app.WriterInserter{W: w}, checkpoint.New(conn), log)
	if err != nil {
		t.Fatal(err)
	}
	const group = "metrics-e2e"
	c, err := ingest.NewConsumer(ingest.Config{
		Brokers: broker.Addrs, Group: group, Topics: p.Topics(), StartEarliest: true, FetchMaxWait: 100 * time.Millisecond,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	if err := pipelineMetrics(m, p, w); err != nil {
		t.Fatal(err)
	}
	lag := ingest.NewLag(broker.Addrs, group, p.Topics(), nil)
	if err := m.Register(lagMetrics(lag, log)); err != nil {
		t.Fatal(err)
	}
	hs, err := metrics.Start("127.0.0.1:0", metrics.Handler(m.Registry, metrics.ClickHouseCheck(conn.Ping), metrics.ConsumerCheck(c), metrics.StallCheck(progressOf(p), time.Minute)), log)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	base := "http://" + hs.Addr()

	if code, body := httpGet(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.HasPrefix(body, "kafka: consumer group has no active generation") {
		t.Errorf("/readyz before joining: %d %q, want 503 naming kafka", code, body)
	}
	before := scrapeAll(t, base)
	for _, name := range []string{"logpipe_records_total", "logpipe_lines_total", "logpipe_rows_total", "logpipe_rejected_total", "logpipe_batches_total", "logpipe_commits_total"} {
		if v, ok := before[name]; !ok || v != 0 {
			t.Errorf("before: %s = %v (present %v), want 0", name, v, ok)
		}
	}

	// 40 good events (20 runs: started + finished) and 2 bad lines.
	var msgs []kafka.Message
	start := time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		run := fmt.Sprintf("r%02d", i)
		st := start.Add(time.Duration(i) * time.Minute)
		msgs = append(msgs,
			kafka.Message{Key: []byte(run), Value: []byte(fmt.Sprintf(`{"time":%q,"job":"load","run_id":%q,"event":"started"}`, st.Format(time.RFC3339), run))},
			kafka.Message{Key: []byte(run), Value: []byte(fmt.Sprintf(`{"time":%q,"job":"load","run_id":%q,"event":"finished","exit_code":0}`, st.Add(30*time.Second).Format(time.RFC3339), run))},
		)
	}
	msgs = append(msgs,
		kafka.Message{Key: []byte("bad"), Value: []byte(`{"job":"load","run_id":"x","event":"started"}`)},
		kafka.Message{Key: []byte("bad"), Value: []byte(`not json`)},
	)
	if err := broker.Produce(ctx, "jobs", msgs...); err != nil {
		t.Fatal(err)
	}
	n := float64(len(msgs))
	if got := sum(scrapeAll(t, base), "logpipe_consumer_lag"); got != n {
		t.Errorf("lag before consuming: %v, want %v", got, n)
	}

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx, p) }()
	// Wait until every record is stored and committed: the group's lag,
	// read from the broker, reaches 0.
	deadline := time.Now().Add(60 * time.Second)
	sawReady := false
	for {
		if code, _ := httpGet(t, base+"/readyz"); code == 200 {
			sawReady = true
		}
		parts, err := lag.Read(ctx)
		var total int64
		for _, pl := range parts {
			total += pl.Lag
		}
		if err == nil && total == 0 && p.Stats.Records.Load() == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not consumed in 60s: records %d, lag %d, err %v", p.Stats.Records.Load(), total, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz while consuming: %d %q", code, body)
	}
	if !sawReady {
		t.Error("/readyz never answered 200 while consuming")
	}
	after := scrapeAll(t, base)
	// Every partition is owned, caught up (nothing waiting) and stored
	// rows moments ago.
	for part := range 3 {
		waiting, ok := after[fmt.Sprintf(`logpipe_partition_waiting_seconds{partition="%d",topic="jobs"}`, part)]
		since, ok2 := after[fmt.Sprintf(`logpipe_partition_seconds_since_insert{partition="%d",topic="jobs"}`, part)]
		if !ok || !ok2 || waiting != 0 || since > 60 {
			t.Errorf("jobs/%d: waiting %v s (present %v), since insert %v s (present %v); want 0 and under 60", part, waiting, ok, since, ok2)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("consumer: %v", err)
	}

	want := map[string]float64{
		"logpipe_records_total":                            n,
		"logpipe_lines_total":                              n,
		"logpipe_rows_total":                               40,
		"logpipe_rejected_total":                           2,
		`logpipe_insert_rows_total{table="job_events"}`:    40,
		`logpipe_insert_rows_total{table="ingest_errors"}`: 2,
		`logpipe_insert_errors_total{table="job_events"}`:  0,
		"logpipe_consumer_lag_scrape_errors_total":         0,
	}
	for name, w := range want {
		if got := after[name] - before[name]; got != w {
			t.Errorf("%s moved by %v, want %v", name, got, w)
		}
	}
	if got, want := sum(after, "logpipe_consumer_lag"), 0.0; got != want {
		t.Errorf("lag after consuming: %v, want %v", got, want)
	}
	if got := sum(after, "logpipe_consumer_committed_offset"); got != n {
		t.Errorf("committed offsets sum to %v, want %v", got, n)
	}
	if got := sum(after, "logpipe_partition_end_offset"); got != n {
		t.Errorf("end offsets sum to %v, want %v", got, n)
	}
	// Every successful INSERT is one observation of the latency histogram.
	if got, want := sum(after, "logpipe_insert_duration_seconds_count"), after["logpipe_batches_total"]; got != want || got == 0 {
		t.Errorf("insert latency observations %v, want batches_total %v (> 0)", got, want)
	}
	if got := after["logpipe_commits_total"]; got < 1 {
		t.Errorf("commits_total %v, want >= 1", got)
	}
	if code, _ := httpGet(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz after the consumer stopped: %d, want 503", code)
	}
}
