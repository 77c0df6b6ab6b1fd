package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/pipeline"
)

// TestRebalance runs three members of one consumer group, stops one and
// adds another while records arrive: every record is stored exactly once.
func TestRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	e := newEnv(t, "cdn")
	stream := pipeline.Stream{Name: "cdn", Topic: "cdn", Format: "fastly-json"}
	type member struct {
		p      *pipeline.Pipeline
		cancel context.CancelFunc
		done   chan error
	}
	join := func() *member {
		p := e.pipeline(t, stream)
		c, err := ingest.NewConsumer(ingest.Config{Brokers: e.broker.Addrs, Group: "rebalance", Topics: []string{"cdn"}, StartEarliest: true,
			FetchMaxWait: 100 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 6 * time.Second}, e.log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{p: p, cancel: cancel, done: make(chan error, 1)}
		go func() { m.done <- c.Run(ctx, p) }()
		return m
	}
	n := 0
	send := func(count int) {
		values := make([]string, count)
		for i := range values {
			values[i] = fmt.Sprintf(`{"timestamp":"2026-11-20T05:00:00Z","url":"/items/%d","response_status":200,"response_state":"MISS"}`, n)
			n++
		}
		produce(t, e.broker, "cdn", values, func(i int) string { return fmt.Sprint(n + i) })
	}
	stored := func() string { return e.one(t, "SELECT toString(count()) FROM cdn_requests") }
	a, b, c := join(), join(), join()
	send(6000)
	waitUntil(t, 60*time.Second, func() bool { return stored() != "0" })
	b.cancel() // a member leaves mid-run
	if err := <-b.done; err != nil {
		t.Fatal(err)
	}
	send(6000)
	d := join() // another joins
	send(6000)
	want := fmt.Sprint(n)
	waitUntil(t, 90*time.Second, func() bool { return stored() == want })
	time.Sleep(time.Second)
	for _, m := range []*member{a, c, d} {
		m.cancel()
		if err := <-m.done; err != nil {
			t.Fatal(err)
		}
	}
	got := e.query(t, "SELECT toString(count()), toString(uniqExact(_partition, _offset)) FROM cdn_requests")
	if got[0][0] != want || got[0][1] != want {
		t.Errorf("after the rebalances: %v rows/distinct offsets, want %s each", got[0], want)
	}
	t.Logf("consumed per member: a=%d b=%d c=%d d=%d, skipped as already stored: %d",
		a.p.Stats.Records.Load(), b.p.Stats.Records.Load(), c.p.Stats.Records.Load(), d.p.Stats.Records.Load(),
		a.p.Stats.Skipped.Load()+b.p.Stats.Skipped.Load()+c.p.Stats.Skipped.Load()+d.p.Stats.Skipped.Load())
}
