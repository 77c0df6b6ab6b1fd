package pipeline_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/pipeline"
)

// TestBrokerRestart stops the Kafka broker mid-run and starts it again
// on the same port with the same data directory: the pipeline reconnects
// by itself and every record is stored exactly once.
func TestBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	e := newEnv(t) // ClickHouse only; this test runs its own broker
	dir := t.TempDir()
	// The restarted broker must come back on the same port. A port the
	// kernel picked (port 0) and then released can be handed to any
	// other process's outgoing connection meanwhile; a port below the
	// ephemeral range (32768-60999) is not, and the restart waits while
	// another test's listener holds it.
	port := 0
	start := func() *kafkabroker.Broker {
		t.Helper()
		var last error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			p := port
			if p == 0 {
				p = 20000 + mrand.IntN(12000)
			}
			b, err := kafkabroker.Start(kafkabroker.Options{Partitions: 2, Topics: []string{"jobs"}, DataDir: dir, Port: p})
			if err == nil {
				port = p
				return b
			}
			last = err
		}
		t.Fatalf("broker on port %d: %v", port, last)
		return nil
	}
	broker := start()
	e.broker = broker
	send := func(from, n int) {
		values := make([]string, n)
		for i := range values {
			values[i] = fmt.Sprintf(`{"time":"2026-11-20T01:00:00Z","job":"j","run_id":"r%d","event":"started"}`, from+i)
		}
		produce(t, e.broker, "jobs", values, func(i int) string { return fmt.Sprint(from + i) })
	}
	p := e.pipeline(t, pipeline.Stream{Name: "jobs", Topic: "jobs", Format: "logpipe-job"})
	c, err := ingest.NewConsumer(ingest.Config{Brokers: broker.Addrs, Group: "restart", Topics: []string{"jobs"}, StartEarliest: true,
		FetchMaxWait: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, p) }()
	stored := func() string { return e.one(t, "SELECT toString(count()) FROM job_events") }
	send(0, 3000)
	waitUntil(t, 60*time.Second, func() bool { return stored() == "3000" })

	broker.Close()
	time.Sleep(2 * time.Second)
	broker = start()
	e.broker = broker
	defer broker.Close()
	send(3000, 3000)
	waitUntil(t, 120*time.Second, func() bool { return stored() == "6000" })
	cancel()
	<-done
	got := e.query(t, "SELECT toString(count()), toString(uniqExact(_partition, _offset)) FROM job_events")
	if got[0][0] != "6000" || got[0][1] != "6000" {
		t.Errorf("after the broker restart: %v rows/distinct offsets, want 6000/6000", got[0])
	}
}
