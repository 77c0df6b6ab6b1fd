package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
)

func TestMain(m *testing.M) { chserver.Main(m) }

// buildBinary compiles logpipe into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "logpipe")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRunStopsGracefully runs the real binary against kfake and the local
// ClickHouse, sends SIGTERM once everything is stored, and checks that it
// exits 0 having committed every offset.
func TestRunStopsGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	srv := chserver.Shared(t)
	bin := buildBinary(t)
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 2, Topics: []string{"jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	const n = 1000
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i % 10)), Value: []byte(fmt.Sprintf(
			`{"time":"2026-11-20T01:%02d:%02dZ","job":"j%d","run_id":"r%d","event":"started"}`, i/60%60, i%60, i%10, i))}
	}
	ctx := context.Background()
	if err := broker.Produce(ctx, "jobs", msgs...); err != nil {
		t.Fatal(err)
	}

	b := make([]byte, 4)
	rand.Read(b)
	db := "sigterm_" + hex.EncodeToString(b)
	cfg := filepath.Join(t.TempDir(), "logpipe.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
kafka: {brokers: [%q], group: sigterm}
clickhouse: {addr: [%q], database: %s}
batch: {max_rows: 300, max_age: 10m}
http: {listen: "127.0.0.1:0"}
streams: [{name: jobs, topic: jobs, format: logpipe-job}]
`, broker.Addrs[0], srv.TCPAddr, db)), 0o600)
	logFile := filepath.Join(t.TempDir(), "run.log")
	cmd := startLogged(t, logFile, bin, []string{"LOGPIPE_HASH_KEY=sigterm-test-key-0123456789", "LOGPIPE_LOG_LEVEL=info"}, "run", "-config", cfg, "-migrate")
	stderr := func() string { b, _ := os.ReadFile(logFile); return string(b) }

	// Batches flush at 300 rows (max_age is far away): wait for the full
	// ones, and until the process says it has read every record (its
	// own metric), so that the partial batches are in memory only. Then
	// SIGTERM must flush them before exiting.
	conn := openDB(t, srv.TCPAddr, db)
	waitFor(t, 60*time.Second, func() bool {
		rows, err := conn.QueryStrings(ctx, "SELECT toString(count() >= 600) FROM job_events")
		return err == nil && rows[0][0] == "1"
	})
	waitSeen(t, 60*time.Second, "every record read", func() (bool, string) {
		m := processMetrics(logFile)
		return strings.Contains(m, fmt.Sprintf("logpipe_records_total %d\n", n)), m
	})
	if rows, err := conn.QueryStrings(ctx, "SELECT toString(count()) FROM job_events"); err != nil || rows[0][0] == fmt.Sprint(n) {
		t.Fatalf("before SIGTERM: %v %v; want some rows still buffered", rows, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("logpipe exited with %v after SIGTERM\n%s", err, stderr())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("logpipe did not exit within 30 s of SIGTERM\n%s", stderr())
	}
	rows, err := conn.QueryStrings(ctx, "SELECT count(), uniqExact(_partition, _offset) FROM job_events")
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] != fmt.Sprint(n) || rows[0][1] != fmt.Sprint(n) {
		t.Errorf("after SIGTERM: %s rows, %s distinct offsets; want %d each\n%s", rows[0][0], rows[0][1], n, stderr())
	}
	// Every offset is committed: the group's committed offsets sum to n.
	client := &kafka.Client{Addr: kafka.TCP(broker.Addrs...)}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "sigterm", Topics: map[string][]int{"jobs": {0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, p := range resp.Topics["jobs"] {
		committed += p.CommittedOffset
	}
	if committed != n {
		t.Errorf("committed offsets sum to %d, want %d", committed, n)
	}
}

func openDB(t *testing.T, addr, db string) *chclient.Conn {
	t.Helper()
	var conn *chclient.Conn
	waitFor(t, 30*time.Second, func() bool {
		c, err := chclient.Open(context.Background(), chclient.Options{Addr: []string{addr}, Database: db})
		if err != nil {
			return false
		}
		conn = c
		return true
	})
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	return conn
}

// startLogged starts the logpipe binary with args, its output going to
// logFile. The process is killed when the test ends, and the tail of its
// log is printed if the test failed.
func startLogged(t *testing.T, logFile, bin string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			if t.Failed() {
				// A still-running process prints where each goroutine
				// is (SIGQUIT), for whoever reads the failure.
				cmd.Process.Signal(syscall.SIGQUIT)
				time.Sleep(time.Second)
			}
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			var stacks []byte
			if i := bytes.Index(b, []byte("SIGQUIT")); i >= 0 {
				b, stacks = b[:i], pipelineStacks(b[i:])
			}
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			b = append(b, stacks...)
			t.Logf("end of %s:\n%s", filepath.Base(logFile), b)
		}
	})
	return cmd
}

// pipelineStacks keeps the goroutines of a Go stack dump that are in
// logpipe's own packages.
func pipelineStacks(dump []byte) []byte {
	var out [][]byte
	for _, g := range bytes.Split(dump, []byte("\n\n")) {
		if bytes.Contains(g, []byte("logpipe/logpipe/")) {
			out = append(out, g)
		}
	}
	return bytes.Join(out, []byte("\n\n"))
}

func waitFor(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
