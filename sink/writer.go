// Package sink writes records to ClickHouse in columnar batches over the
// native protocol, retrying the failures worth retrying (chclient.KindOf),
// and through the fence of the partition the rows come from
// (checkpoint.Fence) when asked. The connection is a chclient.Conn; what a
// partition has stored (insert ids, fences, watermarks) is package
// checkpoint's.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/partition"
)

// Writer inserts batches, retrying retryable failures with capped
// exponential backoff and jitter. A retry sends the identical block, so a
// replicated table de-duplicates a retry of an insert that did succeed.
type Writer struct {
	conn *chclient.Conn
	log  *slog.Logger
	// Timeout bounds one attempt.
	Timeout time.Duration
	// RetryMin and RetryMax bound the pause between attempts.
	RetryMin, RetryMax time.Duration
	// Hooks are told what the writer does (for metrics): each value
	// implements any of InsertHook and RetryHook, and every one is
	// called, in order. Set them before the first insert.
	Hooks []any
}

// InsertHook is a Writer hook called after each INSERT attempt with its
// duration and outcome (nil error = stored).
type InsertHook interface {
	OnInsert(table string, rows int, d time.Duration, err error)
}

// RetryHook is a Writer hook called before each pause between attempts.
type RetryHook interface {
	OnRetry(table string, attempt int, err error)
}

// InsertFunc is a function used as an InsertHook.
type InsertFunc func(table string, rows int, d time.Duration, err error)

// OnInsert implements InsertHook.
func (f InsertFunc) OnInsert(table string, rows int, d time.Duration, err error) {
	f(table, rows, d, err)
}

// NewWriter returns a Writer on conn.
func NewWriter(conn *chclient.Conn, log *slog.Logger) *Writer {
	return &Writer{
		conn:     conn,
		log:      log,
		Timeout:  60 * time.Second,
		RetryMin: 100 * time.Millisecond,
		RetryMax: 30 * time.Second,
	}
}

// Conn is the connection the writer inserts through.
func (w *Writer) Conn() *chclient.Conn { return w.conn }

// Insert sends b as one INSERT. It retries retryable errors until ctx is
// done, and returns at once on any other error. It does not reset b.
func (w *Writer) Insert(ctx context.Context, b Batch) error {
	return w.InsertAs(ctx, b, "")
}

// InsertAs is Insert with a query id (see checkpoint.InsertID). A retry reuses it, so
// the server refuses a retry while an earlier attempt is still running
// instead of running both.
func (w *Writer) InsertAs(ctx context.Context, b Batch, queryID string) error {
	return w.insert(ctx, b, queryID, nil)
}

// InsertFenced is InsertAs through the fence (migration 0019_fences): the
// rows, all of partition f.Topic/f.Partition, go to the table's entry
// table (NAME_in) with f.Epoch, and the server stores them only if that
// is the partition's current fence (see checkpoint.Store.Fence). A refused
// batch stores nothing and fails with an error that wraps
// checkpoint.ErrFenced, at once
// (it is not retried).
//
// On a cluster the batch goes straight to NAME_in_local on a replica of
// the partition's shard (the one the Distributed tables would pick):
// ClickHouse 18.16 fails a view with a subquery, as the fence's is, when
// a Distributed table inserts into its own server's shard.
func (w *Writer) InsertFenced(ctx context.Context, b Batch, queryID string, f checkpoint.Fence) error {
	return w.insert(ctx, b, queryID, &f)
}

// InsertAt is InsertFenced for the rows of topic/partition built from the
// records at firstOffset and after, under the query id checkpoint.InsertID gives
// them (it implements pipeline.Inserter). A refused batch fails with an
// error wrapping both checkpoint.ErrFenced and partition.ErrNotOwner.
func (w *Writer) InsertAt(ctx context.Context, b Batch, topic string, part int32, firstOffset int64, epoch uint64) error {
	err := w.InsertFenced(ctx, b, checkpoint.InsertID(b.Table(), topic, part, firstOffset), checkpoint.Fence{Topic: topic, Partition: part, Epoch: epoch})
	if errors.Is(err, checkpoint.ErrFenced) {
		return fmt.Errorf("%w: %w", partition.ErrNotOwner, err)
	}
	return err
}

func (w *Writer) insert(ctx context.Context, b Batch, queryID string, fence *checkpoint.Fence) error {
	if b.Len() == 0 {
		return nil
	}
	pause := w.RetryMin
	unknown := false // an earlier attempt may have been stored (landed.go)
	for attempt := 1; ; attempt++ {
		began := time.Now()
		var err error
		checking := unknown && queryID != "" && w.conn.Cluster() == ""
		if checking {
			// On a cluster the tables are replicated, and a replica drops
			// a block identical to one already stored: no check needed
			// (it could not conclude while a replica is down anyway).
			var stored bool
			if stored, err = w.checkLanded(ctx, b); stored {
				w.log.Info("insert: the previous attempt was stored, not sending again", "table", b.Table(), "rows", b.Len(), "attempt", attempt)
				return nil
			}
		}
		if err == nil {
			checking = false
			err = w.send(ctx, b, queryID, fence)
			unknown = unknown || outcomeUnknown(err)
		}
		if len(w.Hooks) > 0 {
			d := time.Since(began)
			for _, h := range w.Hooks {
				if h, ok := h.(InsertHook); ok {
					h.OnInsert(b.Table(), b.Len(), d, err)
				}
			}
		}
		if err == nil {
			return nil
		}
		if fence != nil && checkpoint.IsFenced(err) {
			return fmt.Errorf("insert %d rows into %s (epoch %d): %w (%v)", b.Len(), b.Table(), fence.Epoch, checkpoint.ErrFenced, err)
		}
		// A check that failed is tried again like an attempt: the batch
		// is not sent before the check concludes.
		if (!checking && !chclient.Retryable(err)) || ctx.Err() != nil {
			return fmt.Errorf("insert %d rows into %s: %w", b.Len(), b.Table(), err)
		}
		for _, h := range w.Hooks {
			if h, ok := h.(RetryHook); ok {
				h.OnRetry(b.Table(), attempt, err)
			}
		}
		// Full jitter over an exponentially growing cap.
		sleep := time.Duration(rand.Int64N(int64(pause))) + pause/2
		w.log.Warn("insert failed, will retry", "table", b.Table(), "rows", b.Len(), "attempt", attempt, "pause", sleep.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("insert %d rows into %s: gave up after %d attempts: %w", b.Len(), b.Table(), attempt, err)
		case <-time.After(sleep):
		}
		pause = min(pause*2, w.RetryMax)
	}
}

func (w *Writer) send(ctx context.Context, b Batch, queryID string, fence *checkpoint.Fence) error {
	// An attempt under way is not abandoned when ctx is cancelled (a
	// revoked partition): cutting an INSERT midway leaves it unknown
	// whether it was stored. The timeout still bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.Timeout)
	defer cancel()
	if fence == nil {
		return sendTo(ctx, w.conn, insertQuery(b), b, queryID, nil)
	}
	if w.conn.Cluster() == "" {
		return sendTo(ctx, w.conn, fencedInsertQuery(b, ""), b, queryID, fence)
	}
	// The shard the Distributed tables pick: their sharding key is
	// cityHash64(_topic, _partition) (schemas.Target).
	replicas, err := w.conn.ShardOf(ctx, fmt.Sprintf("cityHash64(%s, toInt32(%d))", chclient.String(fence.Topic), fence.Partition))
	if err != nil {
		return err
	}
	// The first replica that takes it; the shard's others fetch it.
	for _, i := range replicas {
		var conn *chclient.Conn
		conn, err = w.conn.ServerConn(ctx, i)
		if err == nil {
			err = sendTo(ctx, conn, fencedInsertQuery(b, LocalSuffix), b, queryID, fence)
		}
		if err == nil || !chclient.Retryable(err) {
			return err
		}
	}
	return err
}

// LocalSuffix names a table's part on each server of a cluster
// (schemas.LocalSuffix).
const LocalSuffix = "_local"

// sendTo sends b to conn as query (an INSERT with its column list), with
// the fence's epoch as the last column if fence is set: through the native
// INSERT path (chclient.Conn.InsertInput), or clickhouse-go's batch when that path is off
// for conn, when the table's column types differ from the batch's, and for
// a cluster's Distributed tables (which need the insert settings only the
// driver sends).
func sendTo(ctx context.Context, conn *chclient.Conn, query string, b Batch, queryID string, fence *checkpoint.Fence) error {
	if fence != nil || conn.Cluster() == "" {
		input := b.Input()
		if fence != nil {
			input = append(input[:len(input):len(input)], proto.InputColumn{Name: "_epoch", Data: epochs(fence.Epoch, b.Len())})
		}
		err := conn.InsertInput(ctx, query+" VALUES", queryID, input, b.Len())
		if !errors.Is(err, chclient.ErrNativeOff) && !errors.Is(err, chclient.ErrTypes) {
			return err
		}
	}
	batch, err := conn.PrepareBatch(withQueryID(ctx, queryID), query)
	if err != nil {
		return err
	}
	defer batch.Abort()
	cols := b.Columns()
	for i, name := range cols {
		if err := batch.Column(i).Append(b.Values(i)); err != nil {
			return fmt.Errorf("column %s: %w", name, err)
		}
	}
	if fence != nil {
		if err := batch.Column(len(cols)).Append([]uint64(*epochs(fence.Epoch, b.Len()))); err != nil {
			return fmt.Errorf("column _epoch: %w", err)
		}
	}
	return batch.Send()
}

func epochs(epoch uint64, n int) *proto.ColUInt64 {
	c := make(proto.ColUInt64, n)
	for i := range c {
		c[i] = epoch
	}
	return &c
}

func withQueryID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithQueryID(id))
}
