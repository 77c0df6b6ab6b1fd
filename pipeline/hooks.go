package pipeline

import "github.com/logpipe/logpipe/tables"

// Hook is a value that implements any of the hook interfaces of this
// package: RecordHook[R] for a record kind R, BatchHook, CommitHook
// (the style of franz-go's kgo.Hook). Config.Hooks lists them; every hook
// is called, in order, none replaces another. Hooks are called from the
// partitions' goroutines, concurrently: they must be safe for that and
// quick, as they hold up the partition.
type Hook any

// RecordHook sees every record of kind R (transform.JobEvent,
// transform.CDNRequest) once parsed and enriched, as it is buffered;
// records already stored (skipped by the watermark) are not seen. It must
// not keep r.
type RecordHook[R any] interface {
	OnRecord(r *R, m tables.Meta)
}

// RecordFunc is a function used as a RecordHook.
type RecordFunc[R any] func(r *R, m tables.Meta)

// OnRecord implements RecordHook.
func (f RecordFunc[R]) OnRecord(r *R, m tables.Meta) { f(r, m) }

// BatchHook is told of every batch stored: its table, the partition its
// rows come from, and how many there are.
type BatchHook interface {
	OnBatchInserted(table, topic string, partition int32, rows int)
}

// CommitHook is told of every offset committed: every record of the
// partition before next is stored.
type CommitHook interface {
	OnCommit(topic string, partition int32, next int64)
}

// hooksOf returns the hooks of hs that implement H, in order.
func hooksOf[H any](hs []Hook) []H {
	var out []H
	for _, h := range hs {
		if h, ok := h.(H); ok {
			out = append(out, h)
		}
	}
	return out
}
