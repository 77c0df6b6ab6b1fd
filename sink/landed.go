package sink

import (
	"context"
	"fmt"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
)

// outcomeUnknown reports whether an attempt that failed with err may have
// been stored anyway: the server did not answer with an exception (the
// attempt timed out, or the connection broke after the data was sent).
func outcomeUnknown(err error) bool {
	_, isException := chclient.Exception(err)
	return err != nil && !isException
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

// checkLanded reports whether an earlier attempt at b, whose outcome is
// unknown, stored it (checkpoint.Store.Landed), bounded by the writer's
// timeout.
func (w *Writer) checkLanded(ctx context.Context, b Batch) (bool, error) {
	topic, partition, last, ok := span(b)
	if !ok {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkpoint.MaxLandedWait(w.Timeout))
	defer cancel()
	ok, err := checkpoint.New(w.conn).Landed(ctx, b.Table(), topic, partition, last, w.Timeout)
	if err != nil {
		return false, fmt.Errorf("check whether the previous attempt was stored: %w", err)
	}
	return ok, nil
}
