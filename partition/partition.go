// Package partition is the contract between the package that owns Kafka
// partitions as a consumer-group member (ingest) and the one that stores
// their records (pipeline): a record, a claim on one partition for one
// generation, and the handler a claim is given to. It imports nothing but
// the standard library, so that neither side imports the other and tests
// drive the pipeline with claims held in memory.
package partition

import (
	"context"
	"errors"
	"time"
)

// Record is one Kafka record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Time      time.Time
	// Cost is the bytes charged to the memory budget for this record
	// (0 without a budget); the handler releases it with Claim.Release
	// once the record's rows are stored.
	Cost int64
}

// Info identifies a claim.
type Info struct {
	Topic     string
	Partition int32
	// StartOffset is where reading starts: the committed offset, or
	// Kafka's first (-2) or last (-1) offset when none is.
	StartOffset int64
	// Generation is the ID of the consumer-group generation the claim
	// belongs to (for logs: IDs may start again at 1 when a group is
	// deleted or a broker loses its state).
	Generation int32
}

// ErrNotOwner means the partition is no longer this member's: its
// generation is over, or a newer owner fenced it. Nothing buffered for it
// may be stored or committed; its owner reads it again from the last
// commit.
var ErrNotOwner = errors.New("partition no longer assigned to this member")

// Claim is one partition assigned to this member for one generation.
type Claim interface {
	Info() Info
	// Records delivers the partition's records in offset order. It is
	// closed when the claim ends or fetching fails (see Err).
	Records() <-chan Record
	// Pressure receives when the memory budget is full and this
	// partition holds the most of it: flush early. Nil without a budget.
	Pressure() <-chan struct{}
	// Stopping is closed when the process stops gracefully: flush what is
	// buffered, commit, and return.
	Stopping() <-chan struct{}
	// Share is this partition's fair share of the memory budget in bytes
	// (the budget divided by the partitions of the generation), 0 without
	// a budget.
	Share() int64
	// Release gives back to the memory budget the cost of records whose
	// rows are stored (the sum of their Record.Cost).
	Release(cost int64)
	// Commit records that every record before next has been stored. It
	// fails with an error wrapping ErrNotOwner once the partition is no
	// longer assigned to this member.
	Commit(next int64) error
	// Err is the error that ended fetching, if any.
	Err() error
}

// Handler consumes the partitions assigned to a member.
type Handler interface {
	// ConsumePartition runs in its own goroutine for each partition of
	// each generation. It reads records from c in offset order. It must
	// return soon after ctx is done (the partition was revoked: what is
	// not committed will be read again by its next owner) or after
	// c.Stopping() is closed (a graceful stop: flush, commit, return).
	ConsumePartition(ctx context.Context, c Claim)
}
