package pipeline

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipe/logpipe/partition"
)

// PartitionProgress is where one partition owned by this process stands,
// for metrics and readiness: a partition that has work it cannot finish
// (an INSERT that keeps failing or hanging, watermarks that cannot be
// read) shows a Waiting that grows, and so does SinceInsert.
type PartitionProgress struct {
	Topic     string
	Partition int32
	// SinceInsert is the time since the partition's rows were last
	// stored (or, before its first insert, since it was assigned).
	SinceInsert time.Duration
	// Waiting is how long the partition has had work it has not finished:
	// records read but not yet stored, or, right after assignment, the
	// watermarks not read yet. Zero when it is idle, caught up.
	Waiting time.Duration
}

// progress is one owned partition's state; its methods are safe on nil
// (a worker built outside ConsumePartition, as in the fuzz test).
type progress struct {
	topic      string
	partition  int32
	lastInsert atomic.Int64 // unix nanoseconds
	busySince  atomic.Int64 // unix nanoseconds; 0 = idle
}

// busy records that the partition has work from t on, unless it already
// had.
func (p *progress) busy(t time.Time) {
	if p != nil {
		p.busySince.CompareAndSwap(0, t.UnixNano())
	}
}

// idle records that the partition has caught up without an insert.
func (p *progress) idle() {
	if p != nil {
		p.busySince.Store(0)
	}
}

// stored records a successful flush at t: everything read is stored.
func (p *progress) stored(t time.Time) {
	if p != nil {
		p.lastInsert.Store(t.UnixNano())
		p.busySince.Store(0)
	}
}

// partitions holds the progress of the partitions this process owns.
type partitions struct {
	mu    sync.Mutex
	owned map[*progress]struct{}
}

// track starts tracking a partition just assigned: it is busy until its
// watermarks are read.
func (ps *partitions) track(topic string, partition int32) *progress {
	now := time.Now()
	p := &progress{topic: topic, partition: partition}
	p.lastInsert.Store(now.UnixNano())
	p.busySince.Store(now.UnixNano())
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.owned == nil {
		ps.owned = map[*progress]struct{}{}
	}
	ps.owned[p] = struct{}{}
	return p
}

// untrack forgets a partition that is no longer owned.
func (ps *partitions) untrack(p *progress) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.owned, p)
}

// Progress reports, for every partition this process currently owns,
// how long since its rows were last stored and how long it has had work
// waiting, sorted by topic and partition.
func (p *Pipeline) Progress() []PartitionProgress {
	now := time.Now().UnixNano()
	type key struct {
		topic     string
		partition int32
	}
	// A partition assigned again to this process can be tracked twice
	// for a moment (the old handler still returning): report it once.
	byKey := map[key]int{}
	var out []PartitionProgress
	p.owned.mu.Lock()
	for pp := range p.owned.owned {
		pr := PartitionProgress{Topic: pp.topic, Partition: pp.partition, SinceInsert: time.Duration(now - pp.lastInsert.Load())}
		if b := pp.busySince.Load(); b != 0 {
			pr.Waiting = time.Duration(now - b)
		}
		k := key{pp.topic, pp.partition}
		if i, ok := byKey[k]; ok {
			out[i].SinceInsert = min(out[i].SinceInsert, pr.SinceInsert)
			out[i].Waiting = max(out[i].Waiting, pr.Waiting)
			continue
		}
		byKey[k] = len(out)
		out = append(out, pr)
	}
	p.owned.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// waitEnd holds a partition that cannot go on (a fatal error was
// reported) until it is revoked or the process stops gracefully: a
// graceful stop then does not wait its whole drain timeout for it.
func waitEnd(ctx context.Context, c partition.Claim) {
	select {
	case <-ctx.Done():
	case <-c.Stopping():
	}
}
