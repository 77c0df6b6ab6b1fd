package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
)

// logBuffer collects a command's log (written by one goroutine, read by
// the test) and tells where it serves /metrics.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// httpAddr waits until the command logged the address it listens on
// (http.listen 127.0.0.1:0: the kernel picks a free port, so no port is
// chosen, closed and reused by the test, which another process could
// take meanwhile).
func (l *logBuffer) httpAddr(t *testing.T) string {
	t.Helper()
	var addr string
	waitFor(t, 60*time.Second, func() bool {
		m := metricsAddr.FindStringSubmatch(l.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

// TestRunServesMetricsAndWatchOnce runs `logpipe run` with http.listen
// set, waits for /metrics to count every produced record and /readyz to
// answer 200, then runs `logpipe watch -once` on the same database: the
// one failed run (j9/r9) opens one alert.
func TestRunServesMetricsAndWatchOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	srv := chserver.Shared(t)
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 2, Topics: []string{"jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	const n = 50
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		ev := "started"
		if i%10 == 9 {
			ev = `failed","exit_code":2,"error":"boom`
		}
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(
			`{"time":"%s","job":"j%d","run_id":"r%d","event":"%s"}`, time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), i%10, i%10, ev))})
	}
	ctx := context.Background()
	if err := broker.Produce(ctx, "jobs", msgs...); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	db := "ops_" + hex.EncodeToString(b)
	cfg := filepath.Join(t.TempDir(), "logpipe.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
kafka: {brokers: [%q], group: ops}
clickhouse: {addr: [%q], database: %s}
batch: {max_rows: 1000, max_age: 100ms}
streams: [{name: jobs, topic: jobs, format: logpipe-job}]
hash: {key: ops-test-key-0123456789abcdef}
http: {listen: "127.0.0.1:0"}
watch:
  rules: [{name: failed_runs, key: [job, run_id]}]
`, broker.Addrs[0], srv.TCPAddr, db)), 0o600)
	t.Cleanup(func() { srv.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	t.Setenv("LOGPIPE_LOG_LEVEL", "info")
	var runLog logBuffer
	go func() { done <- run(runCtx, []string{"run", "-config", cfg, "-migrate"}, io.Discard, &runLog) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	addr := runLog.httpAddr(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		body, ready := "", 0
		if res, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			body = string(b)
		}
		if res, err := http.Get("http://" + addr + "/readyz"); err == nil {
			res.Body.Close()
			ready = res.StatusCode
		}
		if strings.Contains(body, fmt.Sprintf("\nlogpipe_rows_total %d\n", n)) && ready == 200 &&
			strings.Contains(body, "\nlogpipe_consumer_lag{partition=\"0\",topic=\"jobs\"} 0\n") &&
			strings.Contains(body, "\nlogpipe_consumer_lag{partition=\"1\",topic=\"jobs\"} 0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: readyz %d, metrics:\n%s", ready, grep(body, "logpipe_"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	var out strings.Builder
	if err := run(ctx, []string{"watch", "-config", cfg, "-once", "-migrate"}, &out, io.Discard); err != nil {
		t.Fatalf("watch -once: %v\n%s", err, out.String())
	}
	if got, want := out.String(), "open 1, opened 1, resolved 0, notifications sent 0, failed 0\n"; got != want {
		t.Errorf("watch -once printed %q, want %q", got, want)
	}

	// logpipe watch (continuous) serves its own metrics.
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan error, 1)
	var watchLog logBuffer
	go func() { wdone <- run(wctx, []string{"watch", "-config", cfg}, io.Discard, &watchLog) }()
	watchAddr := watchLog.httpAddr(t)
	deadline = time.Now().Add(30 * time.Second)
	for {
		body := ""
		if res, err := http.Get("http://" + watchAddr + "/metrics"); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			body = string(b)
		}
		if strings.Contains(body, "\nlogpipe_watch_alerts_open{rule=\"failed_runs\"} 1\n") &&
			strings.Contains(body, "\nlogpipe_watch_rule_errors_total{rule=\"failed_runs\"} 0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch metrics after 30s:\n%s", grep(body, "logpipe_watch"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	wcancel()
	if err := <-wdone; err != nil {
		t.Errorf("watch: %v", err)
	}
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
