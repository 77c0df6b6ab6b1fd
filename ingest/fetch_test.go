package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/internal/kafkabroker"
)

// With one fetch token, a partition whose records cannot be handed over
// (its handler is busy, or the budget is full) holds the token: no other
// partition fetches (and holds a decompressed batch) until it is released.
// Afterwards both partitions deliver every record once, in offset order.
func TestFetchTokenBoundsPartitionsFetching(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Kafka broker")
	}
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 2, Topics: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	const records = 2000
	msgs := make([]kafka.Message, records)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "record %d", i)}
	}
	if err := broker.Produce(context.Background(), "t", msgs...); err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(Config{Brokers: broker.Addrs, Group: "g", Topics: []string{"t"}, Fetches: 1, FetchMaxWait: 100 * time.Millisecond},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	got := map[int][]int64{} // partition: offsets delivered
	deliver := func(p int, hold chan struct{}) func(kafka.Message) error {
		return func(m kafka.Message) error {
			if hold != nil {
				select {
				case <-hold:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			mu.Lock()
			got[p] = append(got[p], m.Offset)
			mu.Unlock()
			return nil
		}
	}
	count := func(p int) int {
		mu.Lock()
		defer mu.Unlock()
		return len(got[p])
	}
	hold := make(chan struct{})
	fa := &partitionFetcher{c: c, topic: "t", partition: 0, maxBytes: 1 << 20}
	fb := &partitionFetcher{c: c, topic: "t", partition: 1, maxBytes: 1 << 20}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fa.run(ctx, kafka.FirstOffset, deliver(0, hold)) }()
	// Partition 0 has the token once it has read its first batch.
	deadline := time.Now().Add(60 * time.Second)
	for len(c.tokens) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("partition 0 never took the fetch token")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Add(1)
	go func() { defer wg.Done(); fb.run(ctx, kafka.FirstOffset, deliver(1, nil)) }()
	time.Sleep(time.Second)
	if n := count(1); n != 0 {
		t.Fatalf("partition 1 delivered %d records while partition 0 held the only fetch token", n)
	}
	close(hold)

	// Every record once, in offset order, per partition.
	ends := map[int]int64{}
	for p := range 2 {
		conn, err := kafka.DialLeader(ctx, "tcp", broker.Addrs[0], "t", p)
		if err != nil {
			t.Fatal(err)
		}
		_, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		ends[p] = last
	}
	if ends[0]+ends[1] != records || ends[0] == 0 || ends[1] == 0 {
		t.Fatalf("partition ends %v: want both partitions to hold some of the %d records", ends, records)
	}
	for count(0)+count(1) < records {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d + %d records of %d", count(0), count(1), records)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for p := range 2 {
		for i, off := range got[p] {
			if off != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d, want %d (offsets %v...)", p, i, off, i, got[p][:min(len(got[p]), 20)])
			}
		}
		if int64(len(got[p])) != ends[p] {
			t.Errorf("partition %d: %d records delivered, want %d", p, len(got[p]), ends[p])
		}
	}
}
