package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
)

// TestZombieCutOffFromKafka cuts member A off from Kafka but not from
// ClickHouse while it holds a full buffer (max_age 10 s): its Kafka
// connections stop delivering anything, both ways. B takes every
// partition over and stores everything. A's buffers must not be stored
// again: either A learns that its generation is over when a Kafka request
// times out, and drops them, or (with deadlines ignored: a member that
// cannot tell, the case the fence is for) its flush comes due and the
// fence refuses them. Then A is reconnected and joins again.
func TestZombieCutOffFromKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	runs := 1
	if v, _ := strconv.Atoi(os.Getenv("LOGPIPE_ZOMBIE_RUNS")); v > 0 {
		runs = v
	}
	for _, tc := range []struct {
		name            string
		ignoreDeadlines bool
	}{{"deadlines", false}, {"no-deadlines", true}} {
		t.Run(tc.name, func(t *testing.T) {
			for run := 0; run < runs; run++ {
				zombieCutOff(t, run, tc.ignoreDeadlines)
			}
		})
	}
}

func zombieCutOff(t *testing.T, run int, ignoreDeadlines bool) {
	n := 4000
	if v, _ := strconv.Atoi(os.Getenv("LOGPIPE_ZOMBIE_RECORDS")); v > 0 {
		n = v
	}
	e := newEnv(t, "cdn")
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf(`{"timestamp":"2026-11-20T05:00:00Z","url":"/items/%d","response_status":200,"response_state":"MISS"}`, i)
		if i%997 == 0 {
			values[i] = "garbage"
		}
	}
	produce(t, e.broker, "cdn", values, func(i int) string { return fmt.Sprint(i) })
	stream := pipeline.Stream{Name: "cdn", Topic: "cdn", Format: "fastly-json"}
	member := func(maxAge time.Duration, dialer *kafka.Dialer) (*pipeline.Pipeline, context.CancelFunc, chan error) {
		p, err := pipeline.New(pipeline.Config{
			Streams: []pipeline.Stream{stream},
			Limits:  pipeline.Limits{MaxRows: 1 << 20, MaxBytes: 1 << 30, MaxAge: maxAge, MaxRecordBytes: 4096},
			Enrich:  transform.EnrichConfig{HashKey: hashKey},
		}, insertVia(sink.NewWriter(e.conn, e.log)), checkpoint.New(e.conn), e.log)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ingest.NewConsumer(ingest.Config{Brokers: e.broker.Addrs, Group: "zombie", Topics: []string{"cdn"}, StartEarliest: true, Dialer: dialer,
			FetchMaxWait: 100 * time.Millisecond, HeartbeatInterval: 1500 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second}, e.log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, p) }()
		return p, cancel, done
	}
	stored := func() (rows, distinct string) {
		r := e.query(t, "SELECT toString((SELECT count() FROM cdn_requests) + (SELECT count() FROM ingest_errors)), toString((SELECT uniqExact(_partition, _offset) FROM cdn_requests) + (SELECT uniqExact(_partition, _offset) FROM ingest_errors))")
		return r[0][0], r[0][1]
	}
	want := fmt.Sprint(n)
	net := &cuttable{ignoreDeadlines: ignoreDeadlines}
	a, stopA, doneA := member(10*time.Second, &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, DialFunc: net.dial})
	waitUntil(t, 120*time.Second, func() bool { return a.Stats.Records.Load() == int64(n) })
	if rows, _ := stored(); rows != "0" {
		t.Fatalf("A stored %s rows before its batch was due", rows)
	}
	net.cut()
	b, stopB, doneB := member(200*time.Millisecond, nil)
	waitUntil(t, 120*time.Second, func() bool { rows, _ := stored(); return rows == want })
	// A's flush comes due while it is cut off: every buffered batch is
	// dropped, by the fence or because A learnt its generation ended.
	waitUntil(t, 120*time.Second, func() bool { return a.Stats.Fenced.Load() >= 3 })
	net.restore()
	waitUntil(t, 60*time.Second, func() bool { return b.Stats.Commits.Load() > 0 })
	time.Sleep(2 * time.Second) // a duplicate would land now
	for _, m := range []struct {
		stop context.CancelFunc
		done chan error
	}{{stopA, doneA}, {stopB, doneB}} {
		m.stop()
		if err := <-m.done; err != nil {
			t.Fatal(err)
		}
	}
	rows, distinct := stored()
	if rows != want || distinct != want {
		t.Fatalf("run %d: %s rows, %s distinct offsets; want %s each", run+1, rows, distinct, want)
	}
	if ignoreDeadlines && a.Stats.Rows.Load() != 0 {
		t.Errorf("run %d: A stored %d rows", run+1, a.Stats.Rows.Load())
	}
	t.Logf("run %d: %d records; A dropped %d batches (fenced or generation over), stored %d rows; B stored %d rows",
		run+1, n, a.Stats.Fenced.Load(), a.Stats.Rows.Load(), b.Stats.Rows.Load())
}

// cuttable dials real connections that stop delivering anything, both
// ways, while cut (a network partition: reads and writes wait, and fail
// only when their deadline passes), and deliver again once restored.
type cuttable struct {
	down atomic.Bool
	// ignoreDeadlines keeps reads and writes waiting past their
	// deadline while cut: the member cannot tell it is cut off.
	ignoreDeadlines bool
}

func (c *cuttable) cut()     { c.down.Store(true) }
func (c *cuttable) restore() { c.down.Store(false) }

// await waits while the network is down, until the deadline d (zero: none).
func (c *cuttable) await(ctx context.Context, d time.Time) error {
	for c.down.Load() {
		if !d.IsZero() && time.Now().After(d) && !c.ignoreDeadlines {
			return os.ErrDeadlineExceeded
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func (c *cuttable) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d, _ := ctx.Deadline()
	if err := c.await(ctx, d); err != nil {
		return nil, err
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: conn, net: c}, nil
}

type cutConn struct {
	net.Conn
	net    *cuttable
	mu     sync.Mutex
	rd, wd time.Time
}

func (c *cutConn) deadlines() (time.Time, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rd, c.wd
}

func (c *cutConn) Read(b []byte) (int, error) {
	rd, _ := c.deadlines()
	if err := c.net.await(context.Background(), rd); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	// What arrived during a cut is delivered after it.
	rd, _ = c.deadlines()
	if err := c.net.await(context.Background(), rd); err != nil {
		c.Conn.Close()
		return 0, err
	}
	return n, err
}

func (c *cutConn) Write(b []byte) (int, error) {
	_, wd := c.deadlines()
	if err := c.net.await(context.Background(), wd); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *cutConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rd, c.wd = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *cutConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rd = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *cutConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wd = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}
