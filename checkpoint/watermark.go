package checkpoint

import (
	"context"
	"fmt"
	"strings"

	"github.com/logpipe/logpipe/chclient"
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
func (s *Store) Watermarks(ctx context.Context, topic string, partition int32) (map[string]int64, error) {
	c := s.conn
	if c.Cluster() == "" {
		return watermarks(ctx, c, watermarksTable, topic, partition)
	}
	ss, err := c.Servers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	replicas, answered, complete := map[int]int{}, map[int]int{}, map[int]bool{}
	var downs []string
	for i, sv := range ss {
		replicas[sv.Shard]++
		conn, err := c.ServerConn(ctx, i)
		var wm map[string]int64
		if err == nil {
			wm, err = watermarks(ctx, conn, watermarksTable+localSuffix, topic, partition)
		}
		if err != nil {
			if !chclient.Retryable(err) {
				return nil, fmt.Errorf("%s: %w", sv.Addr, err)
			}
			downs = append(downs, fmt.Sprintf("%s (shard %d): %v", sv.Addr, sv.Shard, err))
			continue
		}
		answered[sv.Shard]++
		for t, n := range wm {
			if cur, ok := out[t]; !ok || n > cur {
				out[t] = n
			}
		}
		if !complete[sv.Shard] {
			ok, err := replicaComplete(ctx, conn, watermarksTable+localSuffix)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sv.Addr, err)
			}
			complete[sv.Shard] = ok
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
func replicaComplete(ctx context.Context, c *chclient.Conn, table string) (bool, error) {
	rows, err := c.Rows(ctx, fmt.Sprintf(sqlReplica, chclient.String(table)))
	if err != nil {
		return false, fmt.Errorf("replication state of %s: %w", table, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("replication state of %s: %w", table, err)
		}
		return true, nil // not replicated: nothing to fetch
	}
	var queued, maxIndex, pointer uint64
	var path string
	if err := rows.Scan(&queued, &maxIndex, &pointer, &path); err != nil {
		return false, fmt.Errorf("replication state of %s: %w", table, err)
	}
	rows.Close()
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
	n, err := chclient.Value[uint64](ctx, c, fmt.Sprintf(sqlLogEntries, chclient.String(path+"/log")))
	if err != nil {
		return false, fmt.Errorf("replication log of %s: %w", table, err)
	}
	return n == 0, nil
}

func watermarks(ctx context.Context, c *chclient.Conn, table, topic string, partition int32) (map[string]int64, error) {
	rows, err := c.Rows(ctx, fmt.Sprintf(sqlWatermarks, chclient.Ident(table), chclient.String(topic), partition))
	if err != nil {
		return nil, fmt.Errorf("read watermarks of %s/%d: %w", topic, partition, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var target string
		var n int64
		if err := rows.Scan(&target, &n); err != nil {
			return nil, fmt.Errorf("read watermarks of %s/%d: %w", topic, partition, err)
		}
		out[target] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read watermarks of %s/%d: %w", topic, partition, err)
	}
	return out, nil
}
