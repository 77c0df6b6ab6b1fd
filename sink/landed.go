package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// settle is how long a retry of an INSERT whose outcome is unknown waits,
// once the server answers again, before looking whether the earlier
// attempt is running: an attempt sent to a server that hung sits in its
// socket buffer and starts only when the server resumes.
const settle = time.Second

// outcomeUnknown reports whether an attempt that failed with err may have
// been stored anyway: the server did not answer with an exception (the
// attempt timed out, or the connection broke after the data was sent).
func outcomeUnknown(err error) bool {
	var ex *clickhouse.Exception
	return err != nil && !errors.As(err, &ex)
}

// landed reports whether an earlier attempt at b, whose outcome is
// unknown, stored it. It first waits until no INSERT of b's partition is
// running on the server (killing one still running after the writer's
// timeout), twice, settle apart; then b landed if the partition's
// watermark in b's table reaches b's last offset. A retry that skipped
// this check would store b twice on a table that does not de-duplicate
// (MergeTree, unlike ReplicatedMergeTree, keeps identical blocks).
func (w *Writer) landed(ctx context.Context, b Batch) (bool, error) {
	topic, partition, last, ok := b.Span()
	if !ok {
		return false, nil
	}
	for range 2 {
		if err := w.conn.WaitInserts(ctx, topic, partition, w.Timeout); err != nil {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(settle):
		}
	}
	wm, err := w.conn.Watermarks(ctx, topic, partition)
	if err != nil {
		return false, err
	}
	n, ok := wm[b.Table()]
	return ok && n >= last, nil
}

// checkLanded bounds landed by the writer's timeout.
func (w *Writer) checkLanded(ctx context.Context, b Batch) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*w.Timeout+3*settle)
	defer cancel()
	ok, err := w.landed(ctx, b)
	if err != nil {
		return false, fmt.Errorf("check whether the previous attempt was stored: %w", err)
	}
	return ok, nil
}
