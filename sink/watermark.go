package sink

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Watermarks returns, per table, the highest offset of topic/partition
// stored in it (from ingest_watermarks, kept by materialized views inside
// each INSERT). A table with nothing from the partition is absent.
func (c *Conn) Watermarks(ctx context.Context, topic string, partition int32) (map[string]int64, error) {
	rows, err := c.QueryStrings(ctx, fmt.Sprintf(
		"SELECT target, toString(maxMerge(max_offset)) FROM ingest_watermarks WHERE _topic = %s AND _partition = %d GROUP BY target",
		quoteString(topic), partition))
	if err != nil {
		return nil, fmt.Errorf("read watermarks of %s/%d: %w", topic, partition, err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		n, err := strconv.ParseInt(r[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("watermark of %s in %s/%d: %w", r[0], topic, partition, err)
		}
		out[r[0]] = n
	}
	return out, nil
}

// InsertID is the query id logpipe gives the INSERT of a partition's
// batch: it names the topic and partition, so that a new owner can find
// inserts of a previous owner that are still running on the server.
func InsertID(table, topic string, partition int32, firstOffset int64) string {
	return fmt.Sprintf("logpipe:%s:%d:%s:%d", topic, partition, table, firstOffset)
}

func insertIDPrefix(topic string, partition int32) string {
	return fmt.Sprintf("logpipe:%s:%d:", topic, partition)
}

// WaitInserts waits until no INSERT of topic/partition from any logpipe
// process is running on the server, so that the watermarks read next are
// final. After timeout it kills such inserts and waits for them to end.
func (c *Conn) WaitInserts(ctx context.Context, topic string, partition int32, timeout time.Duration) error {
	like := quoteString(strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(insertIDPrefix(topic, partition)) + "%")
	deadline := time.Now().Add(timeout)
	killed := false
	for {
		rows, err := c.QueryStrings(ctx, "SELECT toString(count()) FROM system.processes WHERE query_id LIKE "+like)
		if err != nil {
			return fmt.Errorf("check running inserts of %s/%d: %w", topic, partition, err)
		}
		if rows[0][0] == "0" {
			return nil
		}
		if time.Now().After(deadline) && !killed {
			if err := c.Exec(ctx, "KILL QUERY WHERE query_id LIKE "+like+" ASYNC"); err != nil {
				return fmt.Errorf("kill stale inserts of %s/%d: %w", topic, partition, err)
			}
			killed = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func withQueryID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithQueryID(id))
}

func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
