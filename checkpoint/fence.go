package checkpoint

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/logpipe/logpipe/chclient"
)

// ErrFenced is the error of a fenced INSERT: the partition has a newer
// fence than the writer's epoch (another process took it over), and the
// server refused the whole batch, storing nothing.
var ErrFenced = errors.New("fenced: the partition has a newer owner")

// Fence is what a fenced insert carries: the Kafka partition every row of
// the batch comes from, and its writer's epoch (Store.Fence).
type Fence struct {
	Topic     string
	Partition int32
	Epoch     uint64
}

// IsFenced reports whether err is the fence views refusing a batch
// (throwIf, migration 0019_fences).
func IsFenced(err error) bool {
	ex, ok := chclient.Exception(err)
	if !ok {
		return false
	}
	if ex.Code == chclient.CodeThrowIfValueIsNonZero {
		return true
	}
	// Through a Distributed table the shard's error arrives wrapped in
	// another code; the shard's exception is nested or quoted in it.
	for _, n := range ex.Nested {
		if n.Code == chclient.CodeThrowIfValueIsNonZero {
			return true
		}
	}
	return strings.Contains(ex.Message, "passed to 'throwIf'")
}

// Fence records a new fence epoch for topic/partition in ingest_fences and
// returns it. From then on the server stores a batch of the partition only
// if it carries this epoch (sink.Writer.InsertFenced), until the next
// owner records a higher one: an earlier owner that wakes up (a paused
// process, or one cut off from Kafka but not from ClickHouse) has its
// inserts refused.
//
// Call it when a partition is assigned, before waiting for running
// inserts (WaitInserts) and reading the watermarks: an insert of an
// earlier owner either read the fences before this call, and is then
// running or finished when WaitInserts looks, or it is refused. Acquire
// does the three in order.
//
// The epoch is allocated here, not taken from Kafka's group generation
// (which starts again at 1 when a group is deleted or a broker loses its
// state): its high 32 bits are one more than those of the highest fence
// recorded so far, its low 32 bits random, so two processes fencing the
// same partition at once get different epochs and the higher one wins.
//
// On a cluster the fence is written into ingest_fences_local on every
// server (each replica holds it before any insert can reach it, whatever
// replication's delay), and every server must answer: taking over a
// partition waits while a server is down.
func (s *Store) Fence(ctx context.Context, topic string, partition int32) (uint64, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("fence %s/%d: %w", topic, partition, err)
	}
	low := uint64(binary.BigEndian.Uint32(b[:]))
	c := s.conn
	if c.Cluster() == "" {
		cur, err := fence(ctx, c, fencesTable, topic, partition)
		if err != nil {
			return 0, err
		}
		epoch := nextEpoch(cur, low)
		if err := writeFence(ctx, c, fencesTable, topic, partition, epoch); err != nil {
			return 0, err
		}
		return epoch, nil
	}
	ss, err := c.Servers(ctx)
	if err != nil {
		return 0, err
	}
	conns := make([]*chclient.Conn, len(ss))
	var cur uint64
	for i, sv := range ss {
		conn, err := c.ServerConn(ctx, i)
		if err != nil {
			return 0, fmt.Errorf("fence %s/%d: %s: %w", topic, partition, sv.Addr, err)
		}
		n, err := fence(ctx, conn, fencesTable+localSuffix, topic, partition)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", sv.Addr, err)
		}
		cur = max(cur, n)
		conns[i] = conn
	}
	epoch := nextEpoch(cur, low)
	for i, conn := range conns {
		// The replicas of a shard receive the same block: without this,
		// the second would drop it as a duplicate of the first and hold
		// the fence only once replication fetched it.
		ctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplicate": 0}))
		if err := writeFence(ctx, conn, fencesTable+localSuffix, topic, partition, epoch); err != nil {
			return 0, fmt.Errorf("%s: %w", ss[i].Addr, err)
		}
	}
	return epoch, nil
}

func nextEpoch(cur, low uint64) uint64 {
	return (cur>>32+1)<<32 | low
}

// fence reads the highest fence of topic/partition in table (0: none).
func fence(ctx context.Context, c *chclient.Conn, table, topic string, partition int32) (uint64, error) {
	ns, err := chclient.Values[uint64](ctx, c, fmt.Sprintf(sqlFence, chclient.Ident(table), chclient.String(topic), partition))
	if err != nil {
		return 0, fmt.Errorf("read fence of %s/%d: %w", topic, partition, err)
	}
	if len(ns) == 0 {
		return 0, nil
	}
	return ns[0], nil
}

func writeFence(ctx context.Context, c *chclient.Conn, table, topic string, partition int32, epoch uint64) error {
	err := c.Exec(ctx, fmt.Sprintf(sqlWriteFence, chclient.Ident(table), chclient.String(topic), partition, epoch))
	if err != nil {
		return fmt.Errorf("record fence %d of %s/%d: %w", epoch, topic, partition, err)
	}
	return nil
}

// Fences returns the current fence of topic/partition (0: none); on a
// cluster, the highest any server holds. For checks and tests.
func (s *Store) Fences(ctx context.Context, topic string, partition int32) (uint64, error) {
	if s.conn.Cluster() == "" {
		return fence(ctx, s.conn, fencesTable, topic, partition)
	}
	var out uint64
	err := s.conn.EachServer(ctx, func(ctx context.Context, c *chclient.Conn) error {
		n, err := fence(ctx, c, fencesTable+localSuffix, topic, partition)
		out = max(out, n)
		return err
	})
	return out, err
}
