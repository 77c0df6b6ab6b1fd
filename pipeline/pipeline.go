// Package pipeline wires the stages together: records of a claimed Kafka
// partition (partition.Claim, implemented by ingest) are parsed and
// enriched by transform and stored through an Inserter (sink), one
// partition at a time, and a partition's offset is committed only after
// every row built from the records before it is stored. A Checkpointer
// fences a partition when it is claimed and tells how far each table got.
//
// The pipeline imports neither the Kafka nor the ClickHouse side: cmd
// wires the real implementations, and unit tests use fakes held in memory.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/logpipe/logpipe/partition"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// Stream maps one topic to a format.
type Stream struct {
	Name   string
	Topic  string
	Format string
	Vendor string
	// Options configure formats that need it (log_format, fields,
	// field_map).
	Options transform.ParserOptions
}

// Limits bound a partition's batches.
type Limits struct {
	MaxRows        int
	MaxBytes       int
	MaxAge         time.Duration
	MaxRecordBytes int
}

// Config configures a Pipeline.
type Config struct {
	Streams []Stream
	Limits  Limits
	Enrich  transform.EnrichConfig
	// AttemptTimeout bounds one attempt at fencing a claimed partition,
	// waiting for its earlier owners' inserts and reading its
	// watermarks; attempts are repeated until one succeeds or the claim
	// ends. Default 150s (30s plus two insert timeouts of 60s).
	AttemptTimeout time.Duration
	// Hooks are told what the pipeline does (hooks.go).
	Hooks []Hook
}

// Batch is the rows of one table waiting for one INSERT (package tables'
// batches): what an Inserter needs of it.
type Batch interface {
	tables.Batch // Table, Len, Columns, Input, Values
	// Bytes is the size of the input the rows were made from.
	Bytes() int
	// Span returns the Kafka topic and partition of the rows and their
	// highest offset; ok is false when the rows come from several
	// partitions or there are none.
	Span() (topic string, partition int32, last int64, ok bool)
	// Reset empties the batch, keeping its memory.
	Reset()
}

// Inserter stores batches (sink.Writer's InsertAt).
type Inserter interface {
	// InsertAt stores b, whose rows all come from topic/partition and were
	// built from the records at firstOffset and after, as one INSERT that
	// the server accepts only while epoch is the partition's fence
	// (Checkpointer.Fence). The insert's identity derives from b's table,
	// the partition and firstOffset, so that the same rows built again
	// after a restart are recognised. It retries retryable errors until
	// ctx is done. An insert refused because the partition has a newer
	// owner fails at once with an error wrapping partition.ErrNotOwner.
	InsertAt(ctx context.Context, b Batch, topic string, partition int32, firstOffset int64, epoch uint64) error
}

// Checkpointer keeps what makes the pipeline's writes exactly-once:
// fences, and how far each table got (checkpoint.Store).
type Checkpointer interface {
	// Fence makes the caller the partition's only writer: from now on
	// inserts carrying an earlier epoch are refused. It returns the new
	// epoch.
	Fence(ctx context.Context, topic string, partition int32) (epoch uint64, err error)
	// WaitInserts waits until no insert of the partition by an earlier
	// owner is still running (killing them after timeout).
	WaitInserts(ctx context.Context, topic string, partition int32, timeout time.Duration) error
	// Watermarks returns, per table, the highest offset of the partition
	// stored there.
	Watermarks(ctx context.Context, topic string, partition int32) (map[string]int64, error)
}

// Stats counts what the pipeline has done, for the demo, tests and
// metrics. All fields are updated atomically.
type Stats struct {
	Records  atomic.Int64 // Kafka records consumed
	Lines    atomic.Int64 // lines parsed (a record may hold several)
	Rows     atomic.Int64 // rows inserted into data tables
	Rejected atomic.Int64 // lines sent to ingest_errors
	Batches  atomic.Int64 // INSERTs that succeeded
	Commits  atomic.Int64 // offset commits that succeeded
	Skipped  atomic.Int64 // rows not inserted again: already stored (watermark)
	Fenced   atomic.Int64 // batches dropped: the partition has a newer owner (fence, or generation over)
}

// Pipeline implements partition.Handler.
type Pipeline struct {
	cfg     Config
	streams map[string]stream
	ins     Inserter
	cp      Checkpointer
	log     *slog.Logger
	fatal   chan error
	Stats   Stats
	hooks   hooks
	owned   partitions // progress of the partitions owned (progress.go)
	// enrichers are shared by every partition, one per CPU: a partition
	// borrows one for each record. An Enricher's caches (up to 65,536
	// entries each) are the largest fixed memory of the transform, and
	// the garbage collector scans them at every cycle; one per partition
	// made memory and CPU per record grow with the partition count.
	enrichers chan *transform.Enricher
}

// hooks are the Config.Hooks of each interface (the RecordHooks are
// their stream's rows').
type hooks struct {
	batches []BatchHook
	commits []CommitHook
}

type stream struct {
	Stream
	// newRows returns a partition's buffer of the stream's records
	// (rows.go).
	newRows func(w *worker) kindRows
	cov     *fieldCoverage // CDN streams only
}

// New checks cfg (formats exist, enrichment is valid) and returns a
// Pipeline storing through ins and cp.
func New(cfg Config, ins Inserter, cp Checkpointer, log *slog.Logger) (*Pipeline, error) {
	if cfg.Limits.MaxRows <= 0 || cfg.Limits.MaxBytes <= 0 || cfg.Limits.MaxAge <= 0 || cfg.Limits.MaxRecordBytes <= 0 {
		return nil, errors.New("pipeline: batch limits must be positive")
	}
	if ins == nil || cp == nil {
		return nil, errors.New("pipeline: an inserter and a checkpointer are required")
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 150 * time.Second
	}
	enrichers, err := newEnrichers(cfg.Enrich, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	p := &Pipeline{cfg: cfg, streams: map[string]stream{}, ins: ins, cp: cp, log: log, fatal: make(chan error, 1), enrichers: enrichers}
	p.hooks = hooks{
		batches: hooksOf[BatchHook](cfg.Hooks),
		commits: hooksOf[CommitHook](cfg.Hooks),
	}
	for _, s := range cfg.Streams {
		parser, err := transform.NewParserWith(s.Format, s.Options)
		if err != nil {
			return nil, fmt.Errorf("pipeline: stream %s: %w", s.Name, err)
		}
		st := stream{Stream: s}
		switch parser.Kind() {
		case transform.KindJob:
			mk, err := rowsOf(parser, s.Vendor, tables.NewJobEvents, cfg.Hooks)
			if err != nil {
				return nil, fmt.Errorf("pipeline: stream %s: %w", s.Name, err)
			}
			st.newRows = func(*worker) kindRows { return mk() }
		case transform.KindCDN:
			mk, err := rowsOf(parser, s.Vendor, tables.NewCDNRequests, cfg.Hooks)
			if err != nil {
				return nil, fmt.Errorf("pipeline: stream %s: %w", s.Name, err)
			}
			st.cov = &fieldCoverage{}
			// The stream's field coverage is counted as a hook would.
			st.newRows = func(w *worker) kindRows { return mk(&w.cov) }
		default:
			return nil, fmt.Errorf("pipeline: stream %s: format %s makes records of kind %s, which the pipeline does not store", s.Name, s.Format, parser.Kind())
		}
		p.streams[s.Topic] = st
	}
	return p, nil
}

// newEnrichers returns a pool of n enrichers.
func newEnrichers(cfg transform.EnrichConfig, n int) (chan *transform.Enricher, error) {
	pool := make(chan *transform.Enricher, n)
	for range n {
		e, err := transform.NewEnricher(cfg)
		if err != nil {
			return nil, err
		}
		pool <- e
	}
	return pool, nil
}

// Topics lists the topics the pipeline reads.
func (p *Pipeline) Topics() []string {
	var ts []string
	for _, s := range p.cfg.Streams {
		ts = append(ts, s.Topic)
	}
	return ts
}

// Fatal delivers the first error that stopped a partition for good (a
// non-retryable insert error such as a schema mismatch). The process
// should stop: going on would skip or lose data.
func (p *Pipeline) Fatal() <-chan error { return p.fatal }

func (p *Pipeline) fail(err error) {
	select {
	case p.fatal <- err:
	default:
	}
}

// ConsumePartition implements partition.Handler.
func (p *Pipeline) ConsumePartition(ctx context.Context, c partition.Claim) {
	info := c.Info()
	st, ok := p.streams[info.Topic]
	if !ok {
		p.fail(fmt.Errorf("pipeline: assigned topic %s has no stream", info.Topic))
		waitEnd(ctx, c)
		return
	}
	w, err := newWorker(p, st, c, info)
	if err != nil {
		p.fail(err)
		waitEnd(ctx, c)
		return
	}
	log := p.log.With("topic", info.Topic, "partition", info.Partition)
	log.Debug("partition assigned", "start_offset", info.StartOffset, "generation", info.Generation)
	w.progress = p.owned.track(info.Topic, info.Partition)
	defer p.owned.untrack(w.progress)
	defer w.putEnricher()
	if err := w.loadWatermarks(ctx); err != nil {
		return // revoked before ClickHouse answered
	}
	log.Debug("partition fenced", "epoch", w.epoch)
	w.progress.idle()
	tick := time.NewTicker(min(p.cfg.Limits.MaxAge/4, 250*time.Millisecond))
	defer tick.Stop()
	// flush stores the pending rows and commits; false means stop.
	lost := false
	flush := func() bool {
		if err := w.flush(ctx); err != nil {
			if errors.Is(err, partition.ErrNotOwner) || ctx.Err() != nil {
				// Another member owns the partition now (or will): drop
				// what is buffered, commit nothing, return at once (which
				// ends this member's generation if it is still running,
				// so that it joins again and is given a fresh fence).
				p.Stats.Fenced.Add(1)
				log.Warn("partition lost: buffered records dropped, nothing committed; its owner reads them again",
					"generation", info.Generation, "epoch", w.epoch, "dropped_records", w.pending(), "err", err)
				lost = true
				return false
			}
			p.fail(err)
			log.Error("partition stopped: insert failed for good", "err", err)
			return false
		}
		return true
	}
	for {
		select {
		case rec, ok := <-c.Records():
			if !ok {
				// Fetching ended (an error, or the claim is over): keep
				// what was read, then hand the partition back.
				flush()
				if err := c.Err(); err != nil {
					log.Warn("partition fetch ended", "err", err)
				}
				return
			}
			w.add(rec)
			if w.full() && !flush() {
				if !lost {
					waitEnd(ctx, c)
				}
				return
			}
		case <-c.Pressure():
			// The memory budget is full and this partition holds the
			// most: store what is buffered so its bytes are released.
			if w.pending() > 0 && !flush() {
				if !lost {
					waitEnd(ctx, c)
				}
				return
			}
		case <-tick.C:
			if w.due(len(c.Records()) > 0) && !flush() {
				if !lost {
					waitEnd(ctx, c)
				}
				return
			}
		case <-c.Stopping():
			flush()
			return
		case <-ctx.Done():
			// Revoked: drop what is buffered; it is not committed, so the
			// partition's next owner reads it again.
			if w.pending() > 0 {
				p.Stats.Fenced.Add(1)
			}
			log.Debug("partition revoked", "dropped_records", w.pending())
			return
		}
	}
}

// worker holds one partition's batches.
type worker struct {
	p        *Pipeline
	st       stream
	claim    partition.Claim
	info     partition.Info
	enricher *transform.Enricher // borrowed from p.enrichers during add (and between adds, see add)
	turn     int                 // records parsed with it since it was borrowed
	rows     kindRows            // the stream's records, parsed and enriched
	errs     *tables.IngestErrors
	next     int64     // offset to commit after the next flush; -1 = nothing read
	firstOff int64     // offset of the oldest pending record
	first    time.Time // when the oldest pending record arrived
	// wm is, per table, the highest offset of this partition already
	// stored there: rows at or below it are not inserted again.
	wm map[string]int64
	// epoch is this claim's fence (checkpoint.Store.Fence): every insert
	// carries it, and the server refuses it once a newer owner fenced.
	epoch   uint64
	records int
	bytes   int
	// peak is the most budget bytes a batch was charged since its
	// columns were made (see shrink).
	peak int64
	cost int64          // memory-budget bytes of the pending records
	cov  coverageCounts // field coverage since the last flush (CDN streams)

	progress *progress // nil outside ConsumePartition
}

func newWorker(p *Pipeline, st stream, c partition.Claim, info partition.Info) (*worker, error) {
	w := &worker{p: p, st: st, claim: c, info: info, errs: tables.NewIngestErrors(), next: -1}
	w.newBatch()
	return w, nil
}

// newBatch gives the worker empty rows of its stream, with new columns.
func (w *worker) newBatch() { w.rows = w.st.newRows(w) }

// shrink runs after a flush of a batch that was charged cost bytes of
// the memory budget. A batch's columns keep their capacity from one batch
// to the next, outside the budget (which is charged for the records
// pending, not for the column slots kept): a partition that once held a
// large batch (at start, or while the others were idle) would keep that
// memory for ever, and with many partitions the slots kept grew to many
// times the budget. So a partition whose largest batch was more than
// twice its share of the budget makes its columns again: the slots kept
// by all partitions together stay within about twice the budget's worth
// of records.
func (w *worker) shrink(cost int64) {
	w.peak = max(w.peak, cost)
	if share := w.claim.Share(); share > 0 && w.peak > 2*share {
		w.newBatch()
		w.peak = 0
	}
}

func (w *worker) pending() int { return w.records }

func (w *worker) full() bool {
	l := w.p.cfg.Limits
	return w.records >= l.MaxRows || w.bytes >= l.MaxBytes
}

// catchUpAge is how many times MaxAge a batch may wait while records
// are queued behind it.
const catchUpAge = 5

// due reports whether the batch is old enough to be flushed. While the
// partition is behind (records queued: a backlog being caught up), its
// batch grows until catchUpAge × MaxAge, its size limits or the memory
// budget flushes it: the records are old already, and every INSERT costs
// the server a fixed part (the fence check, a part of each table and
// view fed, their merges), so small ones are what bounded the catch-up
// rate. Up to date, it is flushed at MaxAge as before.
func (w *worker) due(behind bool) bool {
	if w.records == 0 {
		return false
	}
	age := time.Since(w.first)
	if behind {
		return age >= catchUpAge*w.p.cfg.Limits.MaxAge
	}
	return age >= w.p.cfg.Limits.MaxAge
}

// enricherTurn is how many records in a row a partition may parse with
// the enricher it borrowed before it hands it back.
const enricherTurn = 64

// putEnricher hands the borrowed enricher back, if any.
func (w *worker) putEnricher() {
	if w.enricher != nil {
		w.p.enrichers <- w.enricher
		w.enricher = nil
	}
	w.turn = 0
}

// add parses one record (one or more lines) into the batches.
func (w *worker) add(rec partition.Record) {
	if w.enricher == nil {
		w.enricher = <-w.p.enrichers
	}
	defer func() {
		// Kept for the next record only while one is already queued,
		// and for at most enricherTurn records: never across a wait.
		w.turn++
		if w.turn >= enricherTurn || w.claim == nil || len(w.claim.Records()) == 0 {
			w.putEnricher()
		}
	}()
	if w.records == 0 {
		w.first = time.Now()
		w.firstOff = rec.Offset
		w.progress.busy(w.first)
	}
	w.records++
	w.bytes += len(rec.Value)
	w.cost += rec.Cost
	w.next = rec.Offset + 1
	w.p.Stats.Records.Add(1)
	meta := tables.Meta{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	now := time.Now().UTC().Truncate(time.Second)
	limit := w.p.cfg.Limits.MaxRecordBytes
	if len(rec.Value) > limit {
		w.reject(meta, 0, fmt.Sprintf("record of %d bytes exceeds max_record_bytes %d", len(rec.Value), limit), rec.Value, now)
		return
	}
	lines := 0
	transform.EachLine(rec.Value, func(n int, line []byte) {
		lines++
		w.p.Stats.Lines.Add(1)
		if err := w.parse(line, meta, now); err != nil {
			if errors.Is(err, transform.ErrSkip) {
				return
			}
			w.reject(meta, n, err.Error(), line, now)
		}
	})
	if lines == 0 {
		w.reject(meta, 0, "empty record", rec.Value, now)
	}
}

func (w *worker) parse(line []byte, meta tables.Meta, now time.Time) (err error) {
	defer func() {
		// A bug in parsing or enriching must cost one line, never the
		// partition.
		if r := recover(); r != nil {
			err = fmt.Errorf("parser panic: %v", r)
		}
	}()
	return w.rows.add(w, line, meta, now)
}

// maxRawError is how much of a rejected line ingest_errors keeps.
const maxRawError = 64 << 10

func (w *worker) reject(meta tables.Meta, line int, reason string, raw []byte, now time.Time) {
	if w.stored(w.errs.Table(), meta.Offset) {
		return
	}
	w.p.Stats.Rejected.Add(1)
	size := len(raw)
	reason = w.enricher.RedactReason(reason, raw) // parser errors quote the line
	raw = w.enricher.DeadLetter(raw, maxRawError) // redacted, or only its hash
	w.errs.Append(w.st.Name, w.st.Format, line, reason, raw, size, meta, now)
	w.p.log.Debug("line rejected", "topic", meta.Topic, "partition", meta.Partition, "offset", meta.Offset, "line", line, "reason", reason)
}

// flush inserts the pending batches, then commits the offset after the
// last record read. Nothing is committed unless every insert succeeded.
func (w *worker) flush(ctx context.Context) error {
	w.putEnricher() // not held through an INSERT: other partitions parse meanwhile
	if w.records == 0 {
		return nil
	}
	// A member whose generation is over no longer owns the partition:
	// nothing it buffered may be stored or committed.
	if ctx.Err() != nil {
		return fmt.Errorf("%s/%d offsets up to %d: %w", w.info.Topic, w.info.Partition, w.next-1, partition.ErrNotOwner)
	}
	if w.st.cov != nil {
		w.cov.addTo(w.st.cov)
		w.st.cov.warnMissing(w.p.log, w.st.Stream)
	}
	for _, b := range []Batch{w.dataBatch(), w.errs} {
		if b == nil || b.Len() == 0 {
			continue
		}
		if err := w.p.ins.InsertAt(ctx, b, w.info.Topic, w.info.Partition, w.firstOff, w.epoch); err != nil {
			return fmt.Errorf("%s/%d offsets up to %d: %w", w.info.Topic, w.info.Partition, w.next-1, err)
		}
		w.p.Stats.Batches.Add(1)
		if b != Batch(w.errs) {
			w.p.Stats.Rows.Add(int64(b.Len()))
		}
		for _, h := range w.p.hooks.batches {
			h.OnBatchInserted(b.Table(), w.info.Topic, w.info.Partition, b.Len())
		}
		b.Reset()
	}
	if err := w.claim.Commit(w.next); err != nil {
		// The rows are stored; the partition moved on. Its next owner
		// starts from the last commit that succeeded.
		w.p.log.Warn("commit failed", "err", err)
		if errors.Is(err, partition.ErrNotOwner) {
			return err
		}
	} else {
		w.p.Stats.Commits.Add(1)
		for _, h := range w.p.hooks.commits {
			h.OnCommit(w.info.Topic, w.info.Partition, w.next)
		}
	}
	w.shrink(w.cost)
	w.records, w.bytes = 0, 0
	w.progress.stored(time.Now())
	w.claim.Release(w.cost)
	w.cost = 0
	return nil
}

// stored reports whether the row of offset for table is already in
// ClickHouse (re-delivered after a crash or a rebalance).
func (w *worker) stored(table string, offset int64) bool {
	if wm, ok := w.wm[table]; ok && offset <= wm {
		w.p.Stats.Skipped.Add(1)
		return true
	}
	return false
}

// loadWatermarks fences the partition (from now on, inserts of its earlier
// owners are refused), waits until no INSERT of this partition by an
// earlier owner is still running on the server, then reads how far each
// table got. It retries while ClickHouse is unreachable, until ctx is done.
func (w *worker) loadWatermarks(ctx context.Context) error {
	cp, topic, part := w.p.cp, w.info.Topic, w.info.Partition
	pause := 100 * time.Millisecond
	for {
		// Each attempt is bounded: a server that hangs mid-check must not
		// hold the partition without a word.
		actx, cancel := context.WithTimeout(ctx, w.p.cfg.AttemptTimeout)
		var err error
		if w.epoch == 0 {
			w.epoch, err = cp.Fence(actx, topic, part)
		}
		if err == nil {
			err = cp.WaitInserts(actx, topic, part, 30*time.Second)
		}
		if err == nil {
			w.wm, err = cp.Watermarks(actx, topic, part)
		}
		cancel()
		if err == nil {
			return nil
		}
		w.p.log.Warn("reading watermarks failed, will retry", "topic", topic, "partition", part, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(pause*2, 10*time.Second)
	}
}

func (w *worker) dataBatch() Batch { return w.rows.batch() }
