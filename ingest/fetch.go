package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"
)

// readTimeout bounds each read from a partition's leader once a fetch
// has been answered: a broker that stops answering mid-response fails the
// fetch (and the connection), which is then sent again.
const readTimeout = 10 * time.Second

// dialAttempts is how many times in a row a partition's leader may fail to
// be reached before the claim ends with the error (the group then
// rebalances, or the member stops).
const dialAttempts = 3

// fetchTokens bounds the partitions that hold a fetched batch at once.
// A fetch response is read as a stream, but each compressed record batch
// in it is decompressed whole before its first record can be read, and
// held until its last record is handed over, which waits while the
// memory budget is full. Without a bound, every partition may hold one
// decompressed batch outside the budget, so that memory grew with the
// partition count; with it, at most cap(fetchTokens) batches are held.
type fetchTokens chan struct{}

func newFetchTokens(n int) fetchTokens {
	t := make(fetchTokens, max(n, 1))
	for range cap(t) {
		t <- struct{}{}
	}
	return t
}

func (t fetchTokens) acquire(ctx context.Context) error {
	select {
	case <-t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t fetchTokens) release() { t <- struct{}{} }

// partitionFetcher reads one partition from its leader, one fetch at a
// time, each under a fetch token.
type partitionFetcher struct {
	c         *Consumer
	topic     string
	partition int
	maxBytes  int
	conn      *kafka.Conn
}

// run fetches from offset (or kafka-go's FirstOffset/LastOffset) until
// ctx is done, handing each record to deliver in offset order. It returns
// ctx's error, the error of deliver, or the error that ended fetching for
// good (the leader could not be reached dialAttempts times in a row, or
// the broker refused the fetch in a way a retry cannot mend).
func (f *partitionFetcher) run(ctx context.Context, offset int64, deliver func(kafka.Message) error) error {
	defer f.closeConn()
	failures := 0
	for {
		if failures > 0 {
			pause := min(100*time.Millisecond<<min(failures-1, 6), 5*time.Second)
			pause = pause/2 + rand.N(pause/2+1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
		if f.conn == nil {
			next, err := f.dial(ctx, offset)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				failures++
				if failures >= dialAttempts {
					return err
				}
				f.c.log.Warn("kafka: reaching the partition's leader failed, will retry", "topic", f.topic, "partition", f.partition, "offset", offset, "err", err)
				continue
			}
			offset = next
		}
		next, err := f.fetch(ctx, offset, deliver)
		offset = next
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errDeliver):
			return errors.Unwrap(err)
		case errors.Is(err, kafka.OffsetOutOfRange):
			first, last, oerr := f.offsets()
			switch {
			case oerr != nil:
				f.closeConn()
				failures++
			case offset < first:
				f.c.log.Warn("kafka: records removed by retention before they were read, skipped",
					"topic", f.topic, "partition", f.partition, "from", offset, "to", first, "skipped", first-offset)
				offset, failures = first, 0
			case offset < last:
				failures = 0
			default:
				// Past the end (the log was truncated): wait for records.
				failures = min(failures+1, dialAttempts)
			}
		case errors.Is(err, kafka.RequestTimedOut):
			failures = 0
		default:
			var kerr kafka.Error
			if errors.As(err, &kerr) && !kerr.Temporary() && !errors.Is(err, kafka.NotLeaderForPartition) && !errors.Is(err, kafka.UnknownTopicOrPartition) {
				return err
			}
			f.c.log.Warn("kafka: fetch failed, will retry", "topic", f.topic, "partition", f.partition, "offset", offset, "err", err)
			f.closeConn()
			failures++
		}
	}
}

// errDeliver wraps the error of deliver.
var errDeliver = errors.New("deliver")

// fetch sends one fetch from offset under a fetch token and hands over
// its records. It returns the offset to fetch next.
func (f *partitionFetcher) fetch(ctx context.Context, offset int64, deliver func(kafka.Message) error) (int64, error) {
	tokens := f.c.tokens
	if err := tokens.acquire(ctx); err != nil {
		return offset, err
	}
	defer tokens.release()
	conn := f.conn
	if _, err := conn.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
		return offset, err
	}
	wait := f.c.cfg.FetchMaxWait
	conn.SetReadDeadline(time.Now().Add(wait + readTimeout))
	batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: f.maxBytes, MaxWait: wait})
	// The read deadline bounds the broker, not the handler: it is set
	// again before a read once a quarter of it has passed (deliver may
	// have waited long), not around every record (each setting re-arms
	// a runtime timer under a lock).
	var armed time.Time
	for {
		if now := time.Now(); now.Sub(armed) > readTimeout/4 {
			conn.SetReadDeadline(now.Add(readTimeout))
			armed = now
		}
		m, err := batch.ReadMessage()
		if err != nil {
			break
		}
		if err := deliver(m); err != nil {
			batch.Close()
			return offset, fmt.Errorf("%w: %w", errDeliver, err)
		}
		offset = m.Offset + 1
	}
	// Close reports the error that ended the batch (io.EOF, its normal
	// end, is nil); a broken connection is closed by it.
	err := batch.Close()
	conn.SetReadDeadline(time.Time{})
	if err != nil && !errors.As(err, new(kafka.Error)) {
		f.closeConn()
	}
	if errors.Is(err, io.ErrShortBuffer) {
		// A record larger than the fetch size: ask for more next time.
		f.maxBytes = min(f.maxBytes*2, 1<<30)
	}
	return offset, err
}

// dial connects to the partition's leader, trying each broker in turn,
// and resolves FirstOffset/LastOffset (and an offset before the first,
// removed by retention) to an absolute offset.
func (f *partitionFetcher) dial(ctx context.Context, offset int64) (int64, error) {
	dialer := f.c.cfg.Dialer
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	var err error
	for _, broker := range f.c.cfg.Brokers {
		var conn *kafka.Conn
		conn, err = dialer.DialLeader(ctx, "tcp", broker, f.topic, f.partition)
		if err != nil {
			continue
		}
		f.conn = conn
		first, last, oerr := f.offsets()
		if oerr != nil {
			f.closeConn()
			err = oerr
			continue
		}
		switch {
		case offset == kafka.FirstOffset:
			offset = first
		case offset == kafka.LastOffset:
			offset = last
		case offset < first:
			f.c.log.Warn("kafka: records removed by retention before they were read, skipped",
				"topic", f.topic, "partition", f.partition, "from", offset, "to", first, "skipped", first-offset)
			offset = first
		}
		return offset, nil
	}
	return offset, fmt.Errorf("reach leader of %s/%d: %w", f.topic, f.partition, err)
}

func (f *partitionFetcher) offsets() (first, last int64, err error) {
	f.conn.SetDeadline(time.Now().Add(readTimeout))
	defer f.conn.SetDeadline(time.Time{})
	return f.conn.ReadOffsets()
}

func (f *partitionFetcher) closeConn() {
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}
