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
//
// On a cluster it asks every server for its local watermarks and keeps the
// highest. A replica that is down may hold parts the others have not
// fetched yet; the answer is final only if, for every shard, every replica
// answered or one that answered has fetched everything the shard's
// replication log names (system.replicas). Otherwise it fails and the
// caller retries: reading a short watermark would store those records
// again once the replica is back.
func (c *Conn) Watermarks(ctx context.Context, topic string, partition int32) (map[string]int64, error) {
	if c.opts.Cluster == "" {
		return c.watermarks(ctx, "ingest_watermarks", topic, partition)
	}
	ss, err := c.servers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	replicas, answered, complete := map[int]int{}, map[int]int{}, map[int]bool{}
	var downs []string
	for i, s := range ss {
		replicas[s.shard]++
		conn, err := c.openServer(ctx, i)
		var wm map[string]int64
		if err == nil {
			wm, err = conn.watermarks(ctx, "ingest_watermarks_local", topic, partition)
		}
		if err != nil {
			if !Retryable(err) {
				return nil, fmt.Errorf("%s: %w", s.addr, err)
			}
			downs = append(downs, fmt.Sprintf("%s (shard %d): %v", s.addr, s.shard, err))
			continue
		}
		answered[s.shard]++
		for t, n := range wm {
			if cur, ok := out[t]; !ok || n > cur {
				out[t] = n
			}
		}
		if !complete[s.shard] {
			ok, err := conn.replicaComplete(ctx, "ingest_watermarks_local")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.addr, err)
			}
			complete[s.shard] = ok
		}
	}
	for shard, n := range replicas {
		if answered[shard] < n && !complete[shard] {
			return nil, fmt.Errorf("read watermarks of %s/%d: shard %d: %d of %d replicas answer and none has fetched every part yet, waiting for the others (%s)",
				topic, partition, shard, answered[shard], n, strings.Join(downs, "; "))
		}
	}
	return out, nil
}

// replicaComplete reports whether this server's replica of table has
// fetched every part its shard's replication log names.
func (c *Conn) replicaComplete(ctx context.Context, table string) (bool, error) {
	rows, err := c.QueryStrings(ctx, "SELECT toString(inserts_in_queue), toString(log_max_index), toString(log_pointer), zookeeper_path FROM system.replicas WHERE database = currentDatabase() AND table = "+quoteString(table))
	if err != nil {
		return false, fmt.Errorf("replication state of %s: %w", table, err)
	}
	if len(rows) == 0 {
		return true, nil // not replicated: nothing to fetch
	}
	queued, _ := strconv.ParseUint(rows[0][0], 10, 64)
	maxIndex, _ := strconv.ParseUint(rows[0][1], 10, 64)
	pointer, _ := strconv.ParseUint(rows[0][2], 10, 64)
	if queued > 0 {
		return false, nil
	}
	if pointer > maxIndex {
		return true, nil
	}
	if pointer > 0 {
		return false, nil
	}
	// log_pointer 0 and log_max_index 0: an empty log, or one entry not
	// copied yet; the log itself tells.
	entries, err := c.QueryStrings(ctx, "SELECT toString(count()) FROM system.zookeeper WHERE path = "+quoteString(rows[0][3]+"/log"))
	if err != nil {
		return false, fmt.Errorf("replication log of %s: %w", table, err)
	}
	return entries[0][0] == "0", nil
}

func (c *Conn) watermarks(ctx context.Context, table, topic string, partition int32) (map[string]int64, error) {
	rows, err := c.QueryStrings(ctx, fmt.Sprintf(
		"SELECT target, toString(maxMerge(max_offset)) FROM %s WHERE _topic = %s AND _partition = %d GROUP BY target",
		table, quoteString(topic), partition))
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
// process is running on the server (on a cluster: on any server, the
// shards' parts of a Distributed insert included), so that the watermarks
// read next are final. After timeout it kills such inserts and waits for
// them to end.
func (c *Conn) WaitInserts(ctx context.Context, topic string, partition int32, timeout time.Duration) error {
	like := quoteString(strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(insertIDPrefix(topic, partition)) + "%")
	where := "query_id LIKE " + like + " OR initial_query_id LIKE " + like
	deadline := time.Now().Add(timeout)
	killed := false
	for {
		running := 0
		check := func(ctx context.Context, s *Conn) error {
			rows, err := s.QueryStrings(ctx, "SELECT toString(count()) FROM system.processes WHERE "+where)
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(rows[0][0])
			running += n
			if n > 0 && killed {
				return nil
			}
			if n > 0 && time.Now().After(deadline) {
				kctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				if err := s.Exec(kctx, "KILL QUERY WHERE "+where+" ASYNC"); err != nil {
					return fmt.Errorf("kill stale inserts: %w", err)
				}
			}
			return nil
		}
		var err error
		if c.opts.Cluster == "" {
			err = check(ctx, c)
		} else {
			err = c.eachServer(ctx, check)
		}
		if err != nil {
			return fmt.Errorf("check running inserts of %s/%d: %w", topic, partition, err)
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
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
