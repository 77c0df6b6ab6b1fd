package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
)

// TestHelperBroker is not a test: TestBrokerHang runs the test binary
// again with LOGPIPE_HELPER_BROKER set, to have a Kafka broker (kfake) in
// a process of its own that it can stop with SIGSTOP.
func TestHelperBroker(t *testing.T) {
	addrFile := os.Getenv("LOGPIPE_HELPER_BROKER")
	if addrFile == "" {
		t.Skip("only run as TestBrokerHang's broker process")
	}
	b, err := kafkabroker.Start(kafkabroker.Options{Partitions: 2, Topics: []string{"jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := os.WriteFile(addrFile+".tmp", []byte(b.Addrs[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Rename(addrFile+".tmp", addrFile)
	// Until the parent kills it, or dies (stdin closes).
	buf := make([]byte, 1)
	os.Stdin.Read(buf)
}

// TestBrokerHang stops the Kafka broker with SIGSTOP (it keeps its
// connections and answers nothing: fetches, heartbeats and commits hang)
// while a batch is being stored, then resumes it. Commits time out, the
// consumer rejoins, and every record is stored exactly once.
func TestBrokerHang(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	e := newEnv(t) // ClickHouse only; the broker runs in a child process
	addrFile := filepath.Join(t.TempDir(), "broker.addr")
	child := exec.Command(os.Args[0], "-test.run=^TestHelperBroker$", "-test.timeout=20m")
	child.Env = append(os.Environ(), "LOGPIPE_HELPER_BROKER="+addrFile)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		child.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		child.Process.Kill()
		child.Wait()
	})
	var addr string
	waitUntil(t, 60*time.Second, func() bool {
		b, err := os.ReadFile(addrFile)
		addr = string(b)
		return err == nil && addr != ""
	})
	broker := &kafkabroker.Broker{Addrs: []string{addr}}
	send := func(from, n int) {
		values := make([]string, n)
		for i := range values {
			values[i] = fmt.Sprintf(`{"time":"2026-11-20T01:00:00Z","job":"j","run_id":"r%d","event":"started"}`, from+i)
		}
		produce(t, broker, "jobs", values, func(i int) string { return fmt.Sprint(from + i) })
	}

	w := sink.NewWriter(e.conn, e.log)
	// Batches wait up to 3 s: the hang starts while records are read and
	// not yet stored, so that their INSERT and commit fall inside it.
	p, err := pipeline.New(pipeline.Config{
		Streams: []pipeline.Stream{{Name: "jobs", Topic: "jobs", Format: "logpipe-job"}},
		Limits:  pipeline.Limits{MaxRows: 100_000, MaxBytes: 16 << 20, MaxAge: 3 * time.Second, MaxRecordBytes: 4096},
		Enrich:  transform.EnrichConfig{HashKey: hashKey},
	}, insertVia(w), checkpoint.New(w.Conn()), e.log)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ingest.NewConsumer(ingest.Config{Brokers: broker.Addrs, Group: "hang", Topics: p.Topics(), StartEarliest: true,
		FetchMaxWait: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond, RebalanceTimeout: 10 * time.Second}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, p) }()
	defer func() {
		cancel()
		<-done
	}()
	count := func() int {
		n, _ := strconv.Atoi(e.one(t, "SELECT toString(count()) FROM job_events"))
		return n
	}
	send(0, 3000)
	waitUntil(t, 60*time.Second, func() bool { return count() >= 3000 })

	send(3000, 3000)
	waitUntil(t, 60*time.Second, func() bool { return p.Stats.Records.Load() >= 6000 })
	hang := hangFor()
	if err := child.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung := time.Now()
	// The read records are stored while the broker is hung (ClickHouse is
	// fine); their commit cannot be made.
	waitUntil(t, hang+30*time.Second, func() bool { return count() >= 6000 })
	if since := time.Since(hung); since > hang {
		t.Logf("the batch read before the hang was stored only %s after it began", since)
	}
	time.Sleep(hang - time.Since(hung))
	if err := child.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	send(6000, 3000)
	waitUntil(t, 180*time.Second, func() bool { return count() >= 9000 })
	recovered := time.Since(resumed)
	got := e.query(t, "SELECT toString(count()), toString(uniqExact(_partition, _offset)) FROM job_events")
	rows, _ := strconv.Atoi(got[0][0])
	distinct, _ := strconv.Atoi(got[0][1])
	if rows != 9000 || distinct != 9000 {
		t.Errorf("after the broker hang: %d rows, %d distinct offsets, want 9000 each (lost %d, duplicated %d)", rows, distinct, 9000-distinct, rows-distinct)
	}
	t.Logf("Kafka broker hung %s (SIGSTOP, child process): records produced after SIGCONT stored %s later; skipped as already stored: %d",
		hang, recovered.Round(100*time.Millisecond), p.Stats.Skipped.Load())
}
