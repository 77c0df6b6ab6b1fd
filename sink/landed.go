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

// checkLanded reports whether an earlier attempt at b, whose outcome is
// unknown, stored it (checkpoint.Store.Landed), bounded by the writer's
// timeout.
func (w *Writer) checkLanded(ctx context.Context, b Batch) (bool, error) {
	topic, partition, last, ok := b.Span()
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
