package checkpoint

import (
	"context"
	"time"
)

// settle is how long Landed waits, once the server answers again, before
// looking whether the earlier attempt is running: an attempt sent to a
// server that hung sits in its socket buffer and starts only when the
// server resumes.
const settle = time.Second

// Landed reports whether an earlier attempt at inserting rows of
// topic/partition up to offset last into table, whose outcome is unknown
// (it timed out, or the connection broke after the data was sent), stored
// them. It first waits until no INSERT of the partition is running on the
// server (killing one still running after timeout), twice, settle apart;
// then the rows landed if the partition's watermark in table reaches last.
// A retry that skipped this check would store the rows twice on a table
// that does not de-duplicate (MergeTree, unlike ReplicatedMergeTree, keeps
// identical blocks). MaxLandedWait bounds it.
func (s *Store) Landed(ctx context.Context, table, topic string, partition int32, last int64, timeout time.Duration) (bool, error) {
	for range 2 {
		if err := s.WaitInserts(ctx, topic, partition, timeout); err != nil {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(settle):
		}
	}
	wm, err := s.Watermarks(ctx, topic, partition)
	if err != nil {
		return false, err
	}
	n, ok := wm[table]
	return ok && n >= last, nil
}

// MaxLandedWait is how long Landed may take with a given insert timeout
// when the server answers: two waits for running inserts, each up to
// timeout, and the pauses between them.
func MaxLandedWait(timeout time.Duration) time.Duration { return 2*timeout + 3*settle }
