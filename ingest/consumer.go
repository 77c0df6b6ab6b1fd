// Package ingest consumes Kafka topics as a member of a consumer group
// (segmentio/kafka-go's ConsumerGroup and Generation API) and hands each
// assigned partition to a Handler, with the means to commit offsets for
// that partition only while it is still assigned. Each partition is
// fetched from its leader over a kafka-go Conn of its own (fetch.go),
// under a process-wide bound on the fetches that run at once.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/budget"
	"github.com/logpipe/logpipe/partition"
)

// Config configures a Consumer.
type Config struct {
	Brokers []string
	Group   string
	Topics  []string
	// StartEarliest starts partitions without a committed offset at the
	// first offset (true) or at the end (false).
	StartEarliest bool
	// FetchMaxBytes bounds one fetch response of one partition.
	FetchMaxBytes int
	// Fetches bounds the partitions that fetch at once, process-wide:
	// each holds at most one decompressed record batch (see fetchTokens)
	// until its records are handed over. 0 means 4.
	Fetches int
	// FetchMaxWait bounds how long the broker holds a fetch for data.
	FetchMaxWait time.Duration
	// QueueRecords bounds the records fetched ahead of the handler, per
	// partition (with a Budget, it is also kept to the reader's queue,
	// see readerSizes: the garbage collector scans every slot of a
	// queue at each cycle, filled or not).
	QueueRecords int
	// Dialer sets TLS and SASL; nil means plain TCP.
	Dialer *kafka.Dialer
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout tune the
	// group membership; zero keeps kafka-go's defaults.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration
	// DrainTimeout bounds how long a graceful stop waits for handlers to
	// flush and commit.
	DrainTimeout time.Duration
	// Budget, when set, is the process's memory budget: each record is
	// charged (budget.RecordCost) before it is queued, fetching waits
	// while the budget is full, and kafka-go's own buffers are sized from
	// it (see readerSizes).
	Budget *budget.Budget
}

// Record is one Kafka record.
type Record = partition.Record

// Handler consumes the partitions assigned to this member: it is given
// each one as a *Claim.
type Handler = partition.Handler

// Consumer is one member of a consumer group.
type Consumer struct {
	cfg    Config
	log    *slog.Logger
	tokens fetchTokens // process-wide: see fetchTokens
	// generation is the ID of the generation this member is in, -1 while
	// it is in none (joining, rebalancing, stopped).
	generation atomic.Int64
}

// Generation returns the ID of the consumer-group generation this member
// currently belongs to, and false while it belongs to none (not yet
// joined, rebalancing, or stopped). Readiness checks use it.
func (c *Consumer) Generation() (int32, bool) {
	g := c.generation.Load()
	return int32(g), g >= 0
}

// NewConsumer checks cfg and returns a Consumer.
func NewConsumer(cfg Config, log *slog.Logger) (*Consumer, error) {
	if len(cfg.Brokers) == 0 || cfg.Group == "" || len(cfg.Topics) == 0 {
		return nil, errors.New("ingest: brokers, group and topics are required")
	}
	if cfg.FetchMaxBytes == 0 {
		cfg.FetchMaxBytes = 16 << 20
	}
	if cfg.FetchMaxWait == 0 {
		cfg.FetchMaxWait = 500 * time.Millisecond
	}
	if cfg.QueueRecords == 0 {
		cfg.QueueRecords = 1024
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Fetches == 0 {
		cfg.Fetches = 4
	}
	c := &Consumer{cfg: cfg, log: log, tokens: newFetchTokens(cfg.Fetches)}
	c.generation.Store(-1)
	return c, nil
}

// Run joins the group and consumes until ctx is done, then stops
// gracefully: handlers are told to flush and commit, and the member leaves
// the group. It returns nil after a graceful stop.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	start := kafka.LastOffset
	if c.cfg.StartEarliest {
		start = kafka.FirstOffset
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                c.cfg.Group,
		Brokers:           c.cfg.Brokers,
		Dialer:            c.cfg.Dialer,
		Topics:            c.cfg.Topics,
		StartOffset:       start,
		SessionTimeout:    c.cfg.SessionTimeout,
		HeartbeatInterval: c.cfg.HeartbeatInterval,
		RebalanceTimeout:  c.cfg.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		// Every request to the group coordinator (join, sync, heartbeat,
		// commit, leave) is bounded: a broker that hangs fails the call
		// instead of holding the member.
		Timeout:     5 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) { c.log.Debug("kafka: " + fmt.Sprintf(msg, args...)) }),
	})
	if err != nil {
		return fmt.Errorf("ingest: consumer group %s: %w", c.cfg.Group, err)
	}
	stopping := make(chan struct{})
	var handlers sync.WaitGroup
	defer c.generation.Store(-1)
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.log.Warn("consumer group: joining failed, will retry", "group", c.cfg.Group, "err", err)
			continue
		}
		genID := int64(gen.ID)
		c.generation.Store(genID)
		gen.Start(func(gctx context.Context) {
			<-gctx.Done()
			c.generation.CompareAndSwap(genID, -1)
		})
		n := 0
		for _, parts := range gen.Assignments {
			n += len(parts)
		}
		for topic, parts := range gen.Assignments {
			for _, p := range parts {
				claim := &Claim{
					Topic:       topic,
					Partition:   int32(p.ID),
					StartOffset: p.Offset,
					Generation:  gen.ID,
					gen:         gen,
					stopping:    stopping,
				}
				handlers.Add(1)
				gen.Start(func(gctx context.Context) {
					c.consume(gctx, claim, h, n)
					handlers.Done()
					// Returning ends the generation for every partition:
					// after a graceful drain, wait until the group closes.
					<-gctx.Done()
				})
			}
		}
		c.log.Info("consumer group: generation started", "group", c.cfg.Group, "generation", gen.ID, "member", gen.MemberID, "partitions", n)
	}
	close(stopping)
	drained := make(chan struct{})
	go func() { handlers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(c.cfg.DrainTimeout):
		c.log.Error("graceful stop: handlers did not drain in time; uncommitted records will be read again", "timeout", c.cfg.DrainTimeout)
	}
	return group.Close()
}

// readerSizes sizes one partition's fetches and queue, for one of
// partitions partitions. The queue holds records already charged to the
// budget, but its slots are memory of their own (and the garbage
// collector scans them all at each cycle): all the queues together are
// kept to about 1/16 of the budget for records up to assumedRecord bytes.
// The fetches that run at once (at most c.cfg.Fetches) are kept to 1/4 of
// the budget.
func (c *Consumer) readerSizes(partitions int) (fetchMaxBytes, queueCapacity int) {
	fetchMaxBytes, queueCapacity = c.cfg.FetchMaxBytes, c.cfg.QueueRecords
	if c.cfg.Budget == nil {
		return
	}
	const assumedRecord = 1 << 10
	partitions = max(partitions, 1)
	limit := c.cfg.Budget.Limit()
	queueCapacity = int(min(max(limit/16/int64(partitions)/assumedRecord, 16), int64(queueCapacity)))
	fetchMaxBytes = int(min(max(limit/4/int64(min(partitions, c.cfg.Fetches)), 64<<10), int64(fetchMaxBytes)))
	return
}

// consume runs one claim: a reader for its partition feeding h.
func (c *Consumer) consume(gctx context.Context, claim *Claim, h Handler, partitions int) {
	fetchMaxBytes, queueCapacity := c.readerSizes(partitions)
	f := &partitionFetcher{c: c, topic: claim.Topic, partition: int(claim.Partition), maxBytes: fetchMaxBytes}
	fctx, cancel := context.WithCancel(gctx)
	defer cancel()
	if c.cfg.Budget != nil {
		claim.account = c.cfg.Budget.Account()
		claim.share = c.cfg.Budget.Limit() / int64(max(partitions, 1))
		// Whatever the partition still holds when it ends (revoked:
		// dropped, read again by its next owner) goes back.
		defer claim.account.Close()
	}
	records := make(chan Record, queueCapacity)
	claim.records = records
	claim.reading = make(chan struct{})
	fetchDone := make(chan struct{})
	go func() {
		defer close(fetchDone)
		defer close(records)
		// Fetch once the handler reads (it first fences the partition and
		// reads its watermarks, which may take long): a fetch waiting on
		// a full queue would hold a fetch token for nothing.
		select {
		case <-claim.reading:
		case <-fctx.Done():
			return
		}
		err := f.run(fctx, claim.StartOffset, func(m kafka.Message) error {
			rec := Record{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value, Time: m.Time}
			if claim.account != nil {
				rec.Cost = budget.RecordCost(len(m.Key) + len(m.Value))
				if err := claim.account.Acquire(fctx, rec.Cost); err != nil {
					return err // revoked or stopped while the budget was full
				}
			}
			select {
			case records <- rec:
				return nil
			case <-fctx.Done():
				return fctx.Err()
			}
		})
		if err != nil && fctx.Err() == nil {
			c.log.Error("fetch failed", "topic", claim.Topic, "partition", claim.Partition, "err", err)
			claim.setErr(err)
		}
	}()
	claim.gctx = gctx
	h.ConsumePartition(gctx, claim)
	cancel()
	<-fetchDone
}

// Claim is one partition assigned to this member for one generation.
type Claim struct {
	Topic     string
	Partition int32
	// StartOffset is where reading starts: the committed offset, or
	// kafka-go's FirstOffset (-2) / LastOffset (-1) when none is.
	StartOffset int64
	// Generation is the ID of the consumer-group generation the claim
	// belongs to (for logs: IDs may start again at 1 when a group is
	// deleted or a broker loses its state).
	Generation int32

	gctx     context.Context
	gen      *kafka.Generation
	account  *budget.Account // nil without a budget
	share    int64
	records  chan Record
	reading  chan struct{} // closed by the first call of Records
	readOnce sync.Once
	stopping chan struct{}
	mu       sync.Mutex
	err      error
}

// Info implements partition.Claim.
func (c *Claim) Info() partition.Info {
	return partition.Info{Topic: c.Topic, Partition: c.Partition, StartOffset: c.StartOffset, Generation: c.Generation}
}

// Records delivers the partition's records in offset order. It is closed
// when the claim ends or fetching fails (see Err).
func (c *Claim) Records() <-chan Record {
	if c.reading != nil {
		c.readOnce.Do(func() { close(c.reading) })
	}
	return c.records
}

// Release gives back to the memory budget the cost of records whose rows
// are stored (the sum of their Record.Cost).
func (c *Claim) Release(cost int64) {
	if c.account != nil && cost > 0 {
		c.account.Release(cost)
	}
}

// Share is this partition's fair share of the memory budget (the budget
// divided by the partitions of the generation), 0 without a budget.
func (c *Claim) Share() int64 { return c.share }

// Pressure receives when the memory budget is full and this partition
// holds the most of it: flush early. Nil (never ready) without a budget.
func (c *Claim) Pressure() <-chan struct{} {
	if c.account == nil {
		return nil
	}
	return c.account.Pressure()
}

// Stopping is closed when the process stops gracefully: flush what is
// buffered, commit, and return from ConsumePartition.
func (c *Claim) Stopping() <-chan struct{} { return c.stopping }

// ErrNotOwner is returned by Commit once the claim's generation is over:
// the partition may belong to another member, which reads it again from
// the last commit.
var ErrNotOwner = partition.ErrNotOwner

// Commit records that every record before next has been stored. It fails
// when the partition is no longer assigned to this member: it sends
// nothing once the generation is over, and the broker refuses a commit
// for a generation that ended while it was on its way.
func (c *Claim) Commit(next int64) error {
	if c.gctx != nil && c.gctx.Err() != nil {
		return fmt.Errorf("commit %s/%d offset %d (generation %d): %w", c.Topic, c.Partition, next, c.Generation, ErrNotOwner)
	}
	err := c.gen.CommitOffsets(map[string]map[int]int64{c.Topic: {int(c.Partition): next}})
	if err != nil {
		return fmt.Errorf("commit %s/%d offset %d: %w", c.Topic, c.Partition, next, err)
	}
	return nil
}

// Err is the error that ended fetching, if any.
func (c *Claim) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Claim) setErr(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// BudgetStats returns the memory budget's size and the most bytes ever
// charged to it (0, 0 without a budget).
func (c *Consumer) BudgetStats() (limit, peak int64) {
	if c.cfg.Budget == nil {
		return 0, 0
	}
	s := c.cfg.Budget.Stats()
	return s.Limit, s.Peak
}
