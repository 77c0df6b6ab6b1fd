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
	shard int
	addr  string
	conn  *Conn
}

// servers opens, once, a pool to every server of c's cluster.
func (c *Conn) servers(ctx context.Context) ([]server, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cluster != nil {
		return c.cluster, nil
	}
	rows, err := c.QueryStrings(ctx, "SELECT toString(shard_num), host_name, toString(port) FROM system.clusters WHERE cluster = "+quoteString(c.opts.Cluster)+" ORDER BY shard_num, replica_num")
	if err != nil {
		return nil, fmt.Errorf("list servers of cluster %s: %w", c.opts.Cluster, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("cluster %s is not in system.clusters of %v (remote_servers in the server config)", c.opts.Cluster, c.opts.Addr)
	}
	var out []server
	for _, r := range rows {
		shard, _ := strconv.Atoi(r[0])
		o := c.opts
		o.Addr, o.Cluster, o.MaxOpenConns = []string{net.JoinHostPort(r[1], r[2])}, "", 2
		out = append(out, server{shard: shard, addr: o.Addr[0], conn: &Conn{database: o.Database, opts: o}})
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
