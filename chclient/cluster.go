package chclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Server is one ClickHouse server of a cluster, as system.clusters names
// it.
type Server struct {
	Shard  int
	Weight int
	Addr   string // host:port of its native protocol
}

// server is a Server with its own small pool, opened on first use.
type server struct {
	Server
	conn *Conn
}

// Servers returns the servers of the connection's cluster, in shard and
// replica order (nil without a cluster).
func (c *Conn) Servers(ctx context.Context) ([]Server, error) {
	if c.opts.Cluster == "" {
		return nil, nil
	}
	ss, err := c.servers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Server, len(ss))
	for i, s := range ss {
		out[i] = s.Server
	}
	return out, nil
}

// servers opens, once, a pool to every server of c's cluster.
func (c *Conn) servers(ctx context.Context) ([]server, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cluster != nil {
		return c.cluster, nil
	}
	rows, err := c.Rows(ctx, "SELECT toInt64(shard_num), host_name, toUInt16(port), toInt64(shard_weight) FROM system.clusters WHERE cluster = "+String(c.opts.Cluster)+" ORDER BY shard_num, replica_num")
	if err != nil {
		return nil, fmt.Errorf("list servers of cluster %s: %w", c.opts.Cluster, err)
	}
	defer rows.Close()
	var out []server
	for rows.Next() {
		var (
			shard, weight int64
			host          string
			port          uint16
		)
		if err := rows.Scan(&shard, &host, &port, &weight); err != nil {
			return nil, fmt.Errorf("list servers of cluster %s: %w", c.opts.Cluster, err)
		}
		o := c.opts
		// Fenced inserts go to their shard's servers directly (see
		// ShardOf): as many connections as the main pool.
		o.Addr, o.Cluster = []string{net.JoinHostPort(host, strconv.Itoa(int(port)))}, ""
		out = append(out, server{Server: Server{Shard: int(shard), Weight: int(weight), Addr: o.Addr[0]}, conn: &Conn{database: o.Database, opts: o}})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list servers of cluster %s: %w", c.opts.Cluster, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cluster %s is not in system.clusters of %v (remote_servers in the server config)", c.opts.Cluster, c.opts.Addr)
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
		conn, err := c.ServerConn(ctx, i)
		if err != nil {
			down[s.Shard] = append(down[s.Shard], fmt.Sprintf("%s: %v", s.Addr, err))
			continue
		}
		if err := fn(ctx, conn); err != nil {
			if Retryable(err) {
				down[s.Shard] = append(down[s.Shard], fmt.Sprintf("%s: %v", s.Addr, err))
				continue
			}
			return fmt.Errorf("%s: %w", s.Addr, err)
		}
		answered[s.Shard] = true
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

// ServerConn returns the pool of server i of Servers, connecting it first
// if needed. The pool is closed with c.
func (c *Conn) ServerConn(ctx context.Context, i int) (*Conn, error) {
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

// ShardOf returns the indexes (in Servers) of the replicas of the shard
// a Distributed table picks for a row whose sharding key is key (an SQL
// expression of a UInt64 value, such as cityHash64('t', toInt32(0))): the
// key's value modulo the sum of the shard weights, each shard taking as
// many slots as its weight, in shard order. The key's value is asked of
// the server once and remembered.
func (c *Conn) ShardOf(ctx context.Context, key string) ([]int, error) {
	ss, err := c.servers(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	h, ok := c.hashes[key]
	c.mu.Unlock()
	if !ok {
		var err error
		h, err = Value[uint64](ctx, c, "SELECT toUInt64("+key+")")
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
		if _, seen := weights[s.Shard]; !seen {
			shards = append(shards, s.Shard)
			weights[s.Shard] = max(s.Weight, 0)
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
		if s.Shard == shard {
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
