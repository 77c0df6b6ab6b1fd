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

// span returns the Kafka topic and partition of b's rows and their highest
// offset; ok is false when b holds rows of several partitions or none.
func span(b Batch) (topic string, partition int32, last int64, ok bool) {
	var ts []string
	var ps []int32
	var os []int64
	for _, c := range b.columns() {
		switch c.name() {
		case "_topic":
			ts, _ = c.values().([]string)
		case "_partition":
			ps, _ = c.values().([]int32)
		case "_offset":
			os, _ = c.values().([]int64)
		}
	}
	if len(os) == 0 || len(ts) != len(os) || len(ps) != len(os) {
		return "", 0, 0, false
	}
	last = os[0]
	for i := range os {
		if ts[i] != ts[0] || ps[i] != ps[0] {
			return "", 0, 0, false
		}
		last = max(last, os[i])
	}
	return ts[0], ps[0], last, true
}

// landed reports whether an earlier attempt at b, whose outcome is
// unknown, stored it. It first waits until no INSERT of b's partition is
// running on the server (killing one still running after the writer's
// timeout), twice, settle apart; then b landed if the partition's
// watermark in b's table reaches b's last offset. A retry that skipped
// this check would store b twice on a table that does not de-duplicate
// (MergeTree, unlike ReplicatedMergeTree, keeps identical blocks).
func (w *Writer) landed(ctx context.Context, b Batch) (bool, error) {
	topic, partition, last, ok := span(b)
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
