package chclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// penalty is how long a server that timed out or refused a connection is
// tried after the others when a new connection is opened.
const penalty = 30 * time.Second

// hungAfter is how long a read must have waited, before its deadline or
// its abandonment, for the server to count as not answering.
const hungAfter = time.Second

// dialer opens the pool's connections. clickhouse-go on its own tries the
// addresses in order within one DialTimeout: a first server that accepts
// TCP connections and never answers (hung, stopped with SIGSTOP, a
// half-open path) takes the whole budget of every new connection, so the
// other replicas are never reached. dialer instead
//
//   - gives each address a share of the budget and abandons a connection
//     whose handshake does not finish within it;
//   - tries last, for a while, the servers that timed out or refused;
//   - when a read from a server times out, closes that server's idle
//     connections, so that retries do not pick up one hung connection
//     after another from the pool.
type dialer struct {
	timeout time.Duration
	tls     *tls.Config

	mu     sync.Mutex
	failed map[string]time.Time // address -> last failure
	conns  map[string]map[*trackedConn]struct{}
}

func newDialer(timeout time.Duration, tlsCfg *tls.Config) *dialer {
	return &dialer{timeout: timeout, tls: tlsCfg, failed: map[string]time.Time{}, conns: map[string]map[*trackedConn]struct{}{}}
}

// order returns addrs with the ones that failed within the penalty last
// (the most recent failure last), keeping the configured order otherwise.
func (d *dialer) order(addrs []string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var good, bad []string
	for _, a := range addrs {
		if t, ok := d.failed[a]; ok && now.Sub(t) < penalty {
			bad = append(bad, a)
		} else {
			good = append(good, a)
		}
	}
	for i := 1; i < len(bad); i++ { // insertion sort by failure time
		for j := i; j > 0 && d.failed[bad[j]].Before(d.failed[bad[j-1]]); j-- {
			bad[j], bad[j-1] = bad[j-1], bad[j]
		}
	}
	return append(good, bad...)
}

func (d *dialer) markFailed(addr string) {
	d.mu.Lock()
	d.failed[addr] = time.Now()
	d.mu.Unlock()
}

// hung records that a read from addr timed out and closes the idle
// connections to it (those not inside a read or write).
func (d *dialer) hung(addr string) {
	d.mu.Lock()
	d.failed[addr] = time.Now()
	var idle []*trackedConn
	for c := range d.conns[addr] {
		if c.active.Load() == 0 {
			idle = append(idle, c)
		}
	}
	d.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

type handleKey struct{}

// handle is the connection being opened for one address, so that the
// strategy can abandon a handshake that outlives its share.
type handle struct {
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (h *handle) set(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn = c
	if h.closed {
		c.Close()
	}
}

func (h *handle) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.conn != nil {
		h.conn.Close()
	}
}

// strategy is the clickhouse.Options.DialStrategy.
func (d *dialer) strategy(ctx context.Context, connID int, opt *clickhouse.Options, dial clickhouse.Dial) (clickhouse.DialResult, error) {
	addrs := d.order(opt.Addr)
	var errs []error
	for i, addr := range addrs {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok && i < len(addrs)-1 {
			actx, cancel = context.WithTimeout(ctx, time.Until(deadline)/time.Duration(len(addrs)-i))
		}
		h := &handle{}
		actx = context.WithValue(actx, handleKey{}, h)
		stop := context.AfterFunc(actx, h.close) // a handshake the server never answers
		r, err := dial(actx, addr, opt)
		abandoned := !stop()
		cancel()
		if err == nil && !abandoned {
			return r, nil
		}
		if err == nil {
			err = fmt.Errorf("handshake not finished within %s", d.timeout)
		}
		if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("no answer within its share of the dial timeout: %w", err)
		}
		d.markFailed(addr)
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return clickhouse.DialResult{}, errors.New("no address to connect to")
	}
	return clickhouse.DialResult{}, &ConnectError{Err: errors.Join(errs...)}
}

// ConnectError is the error of opening a connection: no address
// answered the TCP connect, the TLS or the protocol handshake in time.
// KindOf counts it Transient unless it carries a ClickHouse exception
// (a refused login).
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return e.Err.Error() }
func (e *ConnectError) Unwrap() error { return e.Err }

// dialContext is the clickhouse.Options.DialContext: TCP (and TLS), the
// connection tracked by address.
func (d *dialer) dialContext(ctx context.Context, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: d.timeout}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		cfg := d.tls
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	tc := &trackedConn{Conn: c, addr: addr, d: d}
	d.mu.Lock()
	if d.conns[addr] == nil {
		d.conns[addr] = map[*trackedConn]struct{}{}
	}
	d.conns[addr][tc] = struct{}{}
	d.mu.Unlock()
	if h, ok := ctx.Value(handleKey{}).(*handle); ok {
		h.set(tc)
	}
	return tc, nil
}

// trackedConn is a pooled connection to one address.
type trackedConn struct {
	net.Conn
	addr   string
	d      *dialer
	active atomic.Int32 // reads and writes under way
	once   sync.Once
}

func (c *trackedConn) Read(b []byte) (int, error) {
	c.active.Add(1)
	began := time.Now()
	n, err := c.Conn.Read(b)
	c.active.Add(-1)
	// A read that waited and then hit its deadline, or was cut by the
	// caller closing the connection (clickhouse-go does that when the
	// context ends): the server did not answer in time.
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed)) && time.Since(began) >= hungAfter {
		c.d.hung(c.addr)
	}
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.active.Add(1)
	defer c.active.Add(-1)
	return c.Conn.Write(b)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		delete(c.d.conns[c.addr], c)
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

// SyscallConn lets clickhouse-go check a pooled connection for a server
// that went away before reusing it.
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	inner := c.Conn
	if t, ok := inner.(*tls.Conn); ok {
		inner = t.NetConn()
	}
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no file descriptor")
	}
	return sc.SyscallConn()
}
