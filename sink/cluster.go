package sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// server is one ClickHouse server of a cluster, as system.clusters names
// it, with its own small pool.
type server struct {
	shard  int
	weight int
	addr   string
	conn   *Conn
}

// servers opens, once, a pool to every server of c's cluster.
func (c *Conn) servers(ctx context.Context) ([]server, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cluster != nil {
		return c.cluster, nil
	}
	rows, err := c.QueryStrings(ctx, "SELECT toString(shard_num), host_name, toString(port), toString(shard_weight) FROM system.clusters WHERE cluster = "+quoteString(c.opts.Cluster)+" ORDER BY shard_num, replica_num")
	if err != nil {
		return nil, fmt.Errorf("list servers of cluster %s: %w", c.opts.Cluster, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("cluster %s is not in system.clusters of %v (remote_servers in the server config)", c.opts.Cluster, c.opts.Addr)
	}
	var out []server
	for _, r := range rows {
		shard, _ := strconv.Atoi(r[0])
		weight, _ := strconv.Atoi(r[3])
		o := c.opts
		// Fenced inserts go to their shard's servers directly (see
		// shardOf): as many connections as the main pool.
		o.Addr, o.Cluster = []string{net.JoinHostPort(r[1], r[2])}, ""
		out = append(out, server{shard: shard, weight: weight, addr: o.Addr[0], conn: &Conn{database: o.Database, opts: o}})
	}
	c.cluster = out
	return out, nil
}

// eachServer runs fn against every server of the cluster. A server that
// cannot be reached is skipped if another replica of its shard answers;
// fn's own errors and a shard with no server answering are returned.
func (c *Conn) eachServer(ctx context.Context, fn func(context.Context, *Conn) error) error {
	ss, err := c.servers(ctx)
	if err != nil {
		return err
	}
	answered := map[int]bool{}
	down := map[int][]string{}
	for i, s := range ss {
		conn, err := c.openServer(ctx, i)
		if err != nil {
			down[s.shard] = append(down[s.shard], fmt.Sprintf("%s: %v", s.addr, err))
			continue
		}
		if err := fn(ctx, conn); err != nil {
			if Retryable(err) {
				down[s.shard] = append(down[s.shard], fmt.Sprintf("%s: %v", s.addr, err))
				continue
			}
			return fmt.Errorf("%s: %w", s.addr, err)
		}
		answered[s.shard] = true
	}
	var missing []string
	for shard, errs := range down {
		if !answered[shard] {
			missing = append(missing, fmt.Sprintf("shard %d (%s)", shard, strings.Join(errs, "; ")))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return errors.New("no server answers for " + strings.Join(missing, ", "))
	}
	return nil
}

// openServer returns the pool of server i, connecting it first if needed.
func (c *Conn) openServer(ctx context.Context, i int) (*Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.cluster[i]
	if s.conn.conn == nil {
		conn, err := Open(ctx, s.conn.opts)
		if err != nil {
			return nil, err
		}
		s.conn = conn
	}
	return s.conn, nil
}

// shardOf returns the indexes (in servers) of the replicas of the shard
// that holds topic/partition: the shard the Distributed tables pick for
// the sharding key cityHash64(_topic, _partition) (schemas.Target), the
// key's value modulo the sum of the shard weights, each shard taking as
// many slots as its weight, in shard order.
func (c *Conn) shardOf(ctx context.Context, topic string, partition int32) ([]int, error) {
	ss, err := c.servers(ctx)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s/%d", topic, partition)
	c.mu.Lock()
	h, ok := c.hashes[key]
	c.mu.Unlock()
	if !ok {
		rows, err := c.QueryStrings(ctx, fmt.Sprintf("SELECT toString(cityHash64(%s, toInt32(%d)))", quoteString(topic), partition))
		if err != nil {
			return nil, fmt.Errorf("shard of %s: %w", key, err)
		}
		h, err = strconv.ParseUint(rows[0][0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("shard of %s: %w", key, err)
		}
		c.mu.Lock()
		if c.hashes == nil {
			c.hashes = map[string]uint64{}
		}
		c.hashes[key] = h
		c.mu.Unlock()
	}
	var shards []int // shard numbers in order, one entry per shard
	weights := map[int]int{}
	for _, s := range ss {
		if _, seen := weights[s.shard]; !seen {
			shards = append(shards, s.shard)
			weights[s.shard] = max(s.weight, 0)
		}
	}
	total := 0
	for _, sh := range shards {
		total += weights[sh]
	}
	if total == 0 {
		return nil, fmt.Errorf("cluster %s: every shard has weight 0", c.opts.Cluster)
	}
	slot := int(h % uint64(total))
	shard := shards[len(shards)-1]
	for _, sh := range shards {
		if slot < weights[sh] {
			shard = sh
			break
		}
		slot -= weights[sh]
	}
	var out []int
	for i, s := range ss {
		if s.shard == shard {
			out = append(out, i)
		}
	}
	return out, nil
}

// closeServers closes the per-server pools.
func (c *Conn) closeServers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.cluster {
		if s.conn.conn != nil {
			s.conn.Close()
		}
	}
	c.cluster = nil
}

// EachServer runs fn against every server of the connection's cluster
// (servers that cannot be reached are skipped while another replica of
// their shard answers), or against the connection itself when it names
// no cluster.
func (c *Conn) EachServer(ctx context.Context, fn func(context.Context, *Conn) error) error {
	if c.opts.Cluster == "" {
		return fn(ctx, c)
	}
	return c.eachServer(ctx, fn)
}
