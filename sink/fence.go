package sink

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ErrFenced is the error of a fenced INSERT: the partition has a newer
// fence than the writer's epoch (another process took it over), and the
// server refused the whole batch, storing nothing.
var ErrFenced = errors.New("fenced: the partition has a newer owner")

// fenceThrowCode is the code of throwIf (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO),
// which the fence views (migration 0019_fences) raise for a stale epoch.
const fenceThrowCode = 395

// Fence records a new fence epoch for topic/partition in ingest_fences and
// returns it. From then on the server stores a batch of the partition only
// if it carries this epoch (InsertFenced), until the next owner records a
// higher one: an earlier owner that wakes up (a paused process, or one cut
// off from Kafka but not from ClickHouse) has its inserts refused.
//
// Call it when a partition is assigned, before waiting for running
// inserts (WaitInserts) and reading the watermarks: an insert of an
// earlier owner either read the fences before this call, and is then
// running or finished when WaitInserts looks, or it is refused.
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
func (c *Conn) Fence(ctx context.Context, topic string, partition int32) (uint64, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("fence %s/%d: %w", topic, partition, err)
	}
	low := uint64(binary.BigEndian.Uint32(b[:]))
	if c.opts.Cluster == "" {
		cur, err := c.fence(ctx, "ingest_fences", topic, partition)
		if err != nil {
			return 0, err
		}
		epoch := nextEpoch(cur, low)
		if err := c.writeFence(ctx, "ingest_fences", topic, partition, epoch); err != nil {
			return 0, err
		}
		return epoch, nil
	}
	ss, err := c.servers(ctx)
	if err != nil {
		return 0, err
	}
	conns := make([]*Conn, len(ss))
	var cur uint64
	for i, s := range ss {
		conn, err := c.openServer(ctx, i)
		if err != nil {
			return 0, fmt.Errorf("fence %s/%d: %s: %w", topic, partition, s.addr, err)
		}
		n, err := conn.fence(ctx, "ingest_fences_local", topic, partition)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", s.addr, err)
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
		if err := conn.writeFence(ctx, "ingest_fences_local", topic, partition, epoch); err != nil {
			return 0, fmt.Errorf("%s: %w", ss[i].addr, err)
		}
	}
	return epoch, nil
}

func nextEpoch(cur, low uint64) uint64 {
	return (cur>>32+1)<<32 | low
}

// fence reads the highest fence of topic/partition in table (0: none).
func (c *Conn) fence(ctx context.Context, table, topic string, partition int32) (uint64, error) {
	rows, err := c.QueryStrings(ctx, fmt.Sprintf("SELECT toString(maxMerge(epoch)) FROM %s WHERE _topic = %s AND _partition = %d",
		table, quoteString(topic), partition))
	if err != nil {
		return 0, fmt.Errorf("read fence of %s/%d: %w", topic, partition, err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseUint(rows[0][0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("fence of %s/%d: %w", topic, partition, err)
	}
	return n, nil
}

func (c *Conn) writeFence(ctx context.Context, table, topic string, partition int32, epoch uint64) error {
	err := c.Exec(ctx, fmt.Sprintf("INSERT INTO %s (_topic, _partition, epoch) SELECT %s, toInt32(%d), maxState(toUInt64(%d))",
		table, quoteString(topic), partition, epoch))
	if err != nil {
		return fmt.Errorf("record fence %d of %s/%d: %w", epoch, topic, partition, err)
	}
	return nil
}

// Fences returns the current fence of topic/partition (0: none); on a
// cluster, the highest any server holds. For checks and tests.
func (c *Conn) Fences(ctx context.Context, topic string, partition int32) (uint64, error) {
	if c.opts.Cluster == "" {
		return c.fence(ctx, "ingest_fences", topic, partition)
	}
	var out uint64
	err := c.eachServer(ctx, func(ctx context.Context, s *Conn) error {
		n, err := s.fence(ctx, "ingest_fences_local", topic, partition)
		out = max(out, n)
		return err
	})
	return out, err
}

// fenced reports whether err is the fence views refusing a batch.
func fenced(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	// Through a Distributed table the shard's error may arrive wrapped.
	return ex.Code == fenceThrowCode || strings.Contains(ex.Message, "passed to 'throwIf'")
}
