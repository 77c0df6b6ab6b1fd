package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipe/logpipe/partition"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/tables"
)

// This file holds in-memory fakes of the pipeline's collaborators
// (partition.Claim, Inserter, Checkpointer), so that the unit tests run
// without Kafka or ClickHouse. Every call is appended to one journal, in
// the order it happened, so tests can check what came before what.

// event is one call seen by the fakes.
type event struct {
	kind    string // "insert", "commit", "fence", "wait", "watermarks"
	table   string
	offsets []int64  // insert: the _offset of each row
	reasons []string // insert into ingest_errors: each row's reason
	raws    []string // insert into ingest_errors: each row's raw
	first   int64    // insert: firstOffset
	epoch   uint64   // insert: epoch
	next    int64    // commit
}

func (e event) String() string {
	switch e.kind {
	case "insert":
		return fmt.Sprintf("insert %s first=%d epoch=%d offsets=%v", e.table, e.first, e.epoch, e.offsets)
	case "commit":
		return fmt.Sprintf("commit %d", e.next)
	}
	return e.kind
}

// journal is the fakes' shared record of calls.
type journal struct {
	mu     sync.Mutex
	events []event
}

func (j *journal) add(e event) {
	j.mu.Lock()
	j.events = append(j.events, e)
	j.mu.Unlock()
}

func (j *journal) all() []event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]event(nil), j.events...)
}

func (j *journal) of(kind string) []event {
	var out []event
	for _, e := range j.all() {
		if e.kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (j *journal) String() string {
	var b strings.Builder
	for _, e := range j.all() {
		fmt.Fprintln(&b, " ", e)
	}
	return b.String()
}

// fakeStore is an Inserter and a Checkpointer held in memory.
type fakeStore struct {
	j *journal

	mu sync.Mutex
	// insertErr, if set, decides the outcome of each insert (n counts
	// inserts from 1, the failed ones included).
	insertErr func(n int, table string) error
	inserts   int
	// checkpointErr, if set, decides the outcome of each call of the
	// Checkpointer (what is "fence", "wait" or "watermarks").
	checkpointErr func(what string) error
	epochs        uint64
	watermarks    map[string]int64
	// blockInsert, if set, is received from before each insert returns.
	blockInsert chan struct{}
}

func newFakeStore(j *journal) *fakeStore { return &fakeStore{j: j} }

// InsertAt implements pipeline.Inserter.
func (s *fakeStore) InsertAt(ctx context.Context, b pipeline.Batch, topic string, part int32, firstOffset int64, epoch uint64) error {
	s.mu.Lock()
	s.inserts++
	n, fail, block := s.inserts, s.insertErr, s.blockInsert
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(n, b.Table()); err != nil {
			return err
		}
	}
	e := event{kind: "insert", table: b.Table(), first: firstOffset, epoch: epoch}
	for i := range b.Len() {
		for _, v := range tables.Row(b, i) {
			switch v.Column {
			case "_offset":
				e.offsets = append(e.offsets, v.Value.(int64))
			case "reason":
				e.reasons = append(e.reasons, v.Value.(string))
			case "raw":
				e.raws = append(e.raws, v.Value.(string))
			case "_topic":
				if v.Value.(string) != topic {
					return fmt.Errorf("fake: row of topic %v in a batch of %s", v.Value, topic)
				}
			case "_partition":
				if v.Value.(int32) != part {
					return fmt.Errorf("fake: row of partition %v in a batch of %d", v.Value, part)
				}
			}
		}
	}
	s.j.add(e)
	return nil
}

func (s *fakeStore) checkpoint(what string) error {
	s.mu.Lock()
	f := s.checkpointErr
	s.mu.Unlock()
	s.j.add(event{kind: what})
	if f != nil {
		return f(what)
	}
	return nil
}

// Fence implements pipeline.Checkpointer.
func (s *fakeStore) Fence(ctx context.Context, topic string, part int32) (uint64, error) {
	if err := s.checkpoint("fence"); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epochs++
	return 100 + s.epochs, nil
}

// WaitInserts implements pipeline.Checkpointer.
func (s *fakeStore) WaitInserts(ctx context.Context, topic string, part int32, timeout time.Duration) error {
	return s.checkpoint("wait")
}

// Watermarks implements pipeline.Checkpointer.
func (s *fakeStore) Watermarks(ctx context.Context, topic string, part int32) (map[string]int64, error) {
	if err := s.checkpoint("watermarks"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for k, v := range s.watermarks {
		out[k] = v
	}
	return out, nil
}

// fakeClaim is a partition.Claim fed by the test.
type fakeClaim struct {
	j        *journal
	info     partition.Info
	records  chan partition.Record
	pressure chan struct{}
	stopping chan struct{}

	mu        sync.Mutex
	commitErr error
	released  int64
	err       error
}

func newFakeClaim(j *journal, topic string) *fakeClaim {
	return &fakeClaim{
		j:        j,
		info:     partition.Info{Topic: topic, Partition: 3, Generation: 1},
		records:  make(chan partition.Record, 1000),
		pressure: make(chan struct{}, 1),
		stopping: make(chan struct{}),
	}
}

func (c *fakeClaim) Info() partition.Info             { return c.info }
func (c *fakeClaim) Records() <-chan partition.Record { return c.records }
func (c *fakeClaim) Pressure() <-chan struct{}        { return c.pressure }
func (c *fakeClaim) Share() int64                     { return 0 }
func (c *fakeClaim) Stopping() <-chan struct{}        { return c.stopping }

func (c *fakeClaim) Release(cost int64) {
	c.mu.Lock()
	c.released += cost
	c.mu.Unlock()
}

func (c *fakeClaim) Commit(next int64) error {
	c.mu.Lock()
	err := c.commitErr
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.j.add(event{kind: "commit", next: next})
	return nil
}

func (c *fakeClaim) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// send queues records at offsets from, from+1, ... with the given values.
func (c *fakeClaim) send(from int64, values ...string) {
	for i, v := range values {
		c.records <- partition.Record{Topic: c.info.Topic, Partition: c.info.Partition, Offset: from + int64(i), Value: []byte(v), Cost: 1000}
	}
}

func (c *fakeClaim) releasedBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released
}

// waitFor polls cond until it holds or a generous deadline passes (the
// machine may be busy); what describes the state on failure.
func waitFor(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 10s; state:\n%s", what())
		}
		time.Sleep(time.Millisecond)
	}
}
