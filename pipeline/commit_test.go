package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/pipeline"
)

// TestFailedInsertCommitsNothing: a partition's batch is stored in two
// INSERTs (its rows, then its dead letters). When the second fails for
// good, the first has stored rows, but no offset may be committed: the
// records are read again, and the watermarks keep the rows from being
// stored twice.
func TestFailedInsertCommitsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	e := newEnv(t, "jobs")
	var values []string
	for i := range 300 {
		values = append(values, fmt.Sprintf(`{"time":"2026-11-20T01:00:%02dZ","job":"j","run_id":"r%d","event":"started"}`, i%60, i))
		if i%50 == 0 {
			values = append(values, "not json "+fmt.Sprint(i))
		}
	}
	produce(t, e.broker, "jobs", values, func(i int) string { return fmt.Sprint(i % 5) })
	// The dead-letter table is gone: its INSERT fails with an error no
	// retry can fix.
	if err := e.conn.Exec(context.Background(), "RENAME TABLE ingest_errors TO ingest_errors_away"); err != nil {
		t.Fatal(err)
	}

	stream := pipeline.Stream{Name: "jobs", Topic: "jobs", Format: "logpipe-job"}
	p := e.pipeline(t, stream)
	c, err := ingest.NewConsumer(ingest.Config{Brokers: e.broker.Addrs, Group: "nocommit", Topics: p.Topics(), StartEarliest: true, FetchMaxWait: 100 * time.Millisecond}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, p) }()
	select {
	case err := <-p.Fatal():
		if !strings.Contains(err.Error(), "ingest_errors") {
			t.Errorf("fatal error does not name the table: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("no fatal error in 90 s: %d records, %d batches, %d commits", p.Stats.Records.Load(), p.Stats.Batches.Load(), p.Stats.Commits.Load())
	}
	cancel()
	<-done
	if n := e.one(t, "SELECT count() FROM job_events"); n == "0" {
		t.Fatalf("no rows stored before the failing insert: the test does not test what it says")
	}
	if n := p.Stats.Commits.Load(); n != 0 {
		t.Errorf("%d commits after a failed insert", n)
	}
	client := &kafka.Client{Addr: kafka.TCP(e.broker.Addrs...), Timeout: 5 * time.Second}
	r, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: "nocommit", Topics: map[string][]int{"jobs": {0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range r.Topics["jobs"] {
		if part.CommittedOffset >= 0 {
			t.Errorf("jobs/%d: offset %d committed although its dead letters were not stored", part.Partition, part.CommittedOffset)
		}
	}

	// The table is back: the same group reads everything again, stores
	// the dead letters, and no row twice.
	if err := e.conn.Exec(context.Background(), "RENAME TABLE ingest_errors_away TO ingest_errors"); err != nil {
		t.Fatal(err)
	}
	again := e.pipeline(t, stream)
	e.consume(t, again, "nocommit", int64(len(values)))
	got := e.query(t, "SELECT toString(count()), toString(uniqExact(_partition, _offset)) FROM job_events")
	if got[0][0] != "300" || got[0][1] != "300" {
		t.Errorf("job_events: %v rows/distinct offsets, want 300/300", got[0])
	}
	if n := e.one(t, "SELECT count() FROM ingest_errors"); n != "6" {
		t.Errorf("ingest_errors: %s rows, want 6", n)
	}
}
