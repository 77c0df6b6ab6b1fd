package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/budget"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/sample"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
)

// TestBacklogWithinMemoryBudget preloads a backlog over many partitions
// that is many times the memory budget, with batch limits that would
// never flush on their own in time (max_age 20 s, max_bytes far above the
// budget): only the budget's early flushes let it through. Every record
// must be stored exactly once, and the bytes charged must never have
// exceeded the budget.
func TestBacklogWithinMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	const (
		partitions = 8
		records    = 12_000
		limit      = 2 << 20
	)
	e := newEnv(t)
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: partitions, Topics: []string{"cdn"}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	lines, _ := sample.CDN(7, sample.CDNOptions{Requests: records, Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Span: time.Hour})
	msgs := make([]kafka.Message, len(lines))
	var backlog int64
	for i, l := range lines {
		msgs[i] = kafka.Message{Key: l.Key, Value: l.Value}
		backlog += budget.RecordCost(len(l.Key) + len(l.Value))
	}
	if err := broker.Produce(context.Background(), "cdn", msgs...); err != nil {
		t.Fatal(err)
	}

	w := sink.NewWriter(e.conn, e.log)
	p, err := pipeline.New(pipeline.Config{
		Streams: []pipeline.Stream{{Name: "cdn", Topic: "cdn", Format: "fastly-json"}},
		Limits:  pipeline.Limits{MaxRows: 100_000, MaxBytes: 32 << 20, MaxAge: 20 * time.Second, MaxRecordBytes: 1 << 20},
		Enrich:  transform.EnrichConfig{HashKey: hashKey},
	}, insertVia(w), checkpoint.New(w.Conn()), e.log)
	if err != nil {
		t.Fatal(err)
	}
	b := budget.New(limit)
	c, err := ingest.NewConsumer(ingest.Config{
		Brokers: broker.Addrs, Group: "budget", Topics: p.Topics(), StartEarliest: true,
		FetchMaxWait: 100 * time.Millisecond, Budget: b,
	}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, p) }()
	deadline := time.Now().Add(240 * time.Second)
	for p.Stats.Rows.Load()+p.Stats.Rejected.Load() < records {
		select {
		case err := <-done:
			t.Fatalf("consumer stopped early: %v", err)
		case err := <-p.Fatal():
			cancel()
			t.Fatalf("pipeline failed: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("stored %d of %d records in 240 s; budget %+v", p.Stats.Rows.Load(), records, b.Stats())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := b.Stats()
	t.Logf("backlog %d MiB charged through a %d MiB budget over %d partitions: %+v, %d inserts",
		backlog>>20, limit>>20, partitions, s, p.Stats.Batches.Load())
	got := e.query(t, "SELECT toString(count()), toString(uniqExact(_partition, _offset)), toString(uniqExact(_partition)) FROM cdn_requests")[0]
	if got[0] != "12000" || got[1] != "12000" || got[2] != "8" {
		t.Errorf("rows, distinct offsets, partitions = %v; want 12000, 12000, 8", got)
	}
	if rej := p.Stats.Rejected.Load(); rej != 0 {
		t.Errorf("%d records rejected", rej)
	}
	if s.Peak > limit {
		t.Errorf("peak charged %d bytes > budget %d", s.Peak, limit)
	}
	if s.Waits == 0 {
		t.Errorf("fetching never waited for the budget: the test did not exercise backpressure")
	}
	if s.Used != 0 {
		t.Errorf("%d bytes still charged after the consumer stopped", s.Used)
	}
}
