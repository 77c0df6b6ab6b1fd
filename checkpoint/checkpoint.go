package checkpoint

import (
	"context"
	"fmt"
	"time"

	"github.com/logpipe/logpipe/chclient"
)

// Store reads and writes the checkpoint of Kafka partitions on a
// ClickHouse server or cluster (chclient.Options.Cluster).
type Store struct {
	conn *chclient.Conn
	// KillAfter is how long Acquire waits for inserts of an earlier owner
	// before killing them (WaitInserts); default 30 s.
	KillAfter time.Duration
}

// New returns a Store on conn.
func New(conn *chclient.Conn) *Store {
	return &Store{conn: conn, KillAfter: 30 * time.Second}
}

// Partition is what a new owner of a partition knows after Acquire: its
// fence epoch and how far each table got.
type Partition struct {
	Topic     string
	Partition int32
	// Epoch is the fence the owner's inserts carry (Fence).
	Epoch uint64
	// Watermarks is, per table, the highest offset of the partition
	// stored in it; a table with nothing from the partition is absent.
	Watermarks map[string]int64
}

// Stored reports whether the row of offset is already in table
// (re-delivered after a crash or a rebalance).
func (p Partition) Stored(table string, offset int64) bool {
	wm, ok := p.Watermarks[table]
	return ok && offset <= wm
}

// Fence is what a fenced insert carries.
func (p Partition) Fence() Fence {
	return Fence{Topic: p.Topic, Partition: p.Partition, Epoch: p.Epoch}
}

// InsertID is the query id of the insert into table of the batch whose
// first offset is first.
func (p Partition) InsertID(table string, first int64) string {
	return InsertID(table, p.Topic, p.Partition, first)
}

// Acquire takes over topic/partition, in one attempt: it records a new
// fence (from now on, inserts of earlier owners are refused), waits until
// no INSERT of the partition by an earlier owner is still running
// (killing those still running after KillAfter), then reads the
// watermarks. The caller retries a failed attempt (the server may be
// restarting); epoch, when not 0, is the fence an earlier attempt of the
// same owner recorded, kept instead of recording another.
func (s *Store) Acquire(ctx context.Context, topic string, partition int32, epoch uint64) (Partition, error) {
	p := Partition{Topic: topic, Partition: partition, Epoch: epoch}
	var err error
	if p.Epoch == 0 {
		if p.Epoch, err = s.Fence(ctx, topic, partition); err != nil {
			return p, err
		}
	}
	if err := s.WaitInserts(ctx, topic, partition, s.KillAfter); err != nil {
		return p, err
	}
	if p.Watermarks, err = s.Watermarks(ctx, topic, partition); err != nil {
		return p, err
	}
	return p, nil
}

// InsertID is the query id logpipe gives the INSERT of a partition's
// batch: it names the topic and partition, so that a new owner can find
// inserts of a previous owner that are still running on the server.
func InsertID(table, topic string, partition int32, firstOffset int64) string {
	return fmt.Sprintf("logpipe:%s:%d:%s:%d", topic, partition, table, firstOffset)
}

func insertIDPrefix(topic string, partition int32) string {
	return fmt.Sprintf("logpipe:%s:%d:", topic, partition)
}
